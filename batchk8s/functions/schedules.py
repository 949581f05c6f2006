"""The schedule document's timer and views: reconcile every minute, GET /api/schedules and its history.

The timer fires every minute, host-evaluated in UTC (so it behaves the same on Linux Consumption,
where WEBSITE_TIME_ZONE is ignored); each rule's own time zone is applied in code by the planner.
An invalid document is logged with every problem and nothing is done.
"""

from __future__ import annotations

import logging

import azure.functions as func

from batchk8s import clock
from batchk8s.deadline import Deadline
from batchk8s.functions.http import endpoint, int_param, json_response
from batchk8s.functions.timers import timer_job
from batchk8s.settings import RECONCILE_SCHEDULE, Settings
from batchk8s.timer_budget import tick_budget

bp = func.Blueprint()
log = logging.getLogger("batchk8s.schedules")


def _document_configured(settings: Settings) -> bool:
    from batchk8s.schedules.service import configured

    return configured(settings)


@bp.function_name("schedules_reconcile")
@bp.timer_trigger(schedule=RECONCILE_SCHEDULE, arg_name="timer", run_on_startup=False, use_monitor=True)
@timer_job(budget=tick_budget, configured=_document_configured, logger=log)
def schedules_reconcile(timer: func.TimerRequest, settings: Settings, deadline: Deadline, budget: Deadline) -> None:
    """Apply whatever firing of the schedule document is due; a no-op when no document is configured.
    An invalid document arrives at timer_job as one error with every problem in its details."""
    from batchk8s.schedules.reconcile import reconcile

    reconcile(settings, deadline=deadline, budget=budget)


@bp.function_name("schedules")
@bp.route(route="schedules", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@endpoint
def schedules(req: func.HttpRequest, settings: Settings, deadline: Deadline) -> func.HttpResponse:
    """Every firing in the next `hours` (1-168, default 24) per target, local and UTC."""
    from batchk8s.schedules.service import MAX_HOURS, upcoming

    hours = int_param(req, "hours", 24, 1, MAX_HOURS)
    return json_response(upcoming(settings, hours, deadline=deadline))


@bp.function_name("schedules_history")
@bp.route(route="schedules/history", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@endpoint
def schedules_history(req: func.HttpRequest, settings: Settings, deadline: Deadline) -> func.HttpResponse:
    """What was applied, skipped or failed, newest first (`limit` 1-1000, default 100)."""
    from batchk8s.schedules.service import MAX_HISTORY, history

    return json_response(history(settings, int_param(req, "limit", 100, 1, MAX_HISTORY), deadline=deadline))


@bp.function_name("schedules_view")
@bp.route(route="schedules/view", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@endpoint
def schedules_view(req: func.HttpRequest, settings: Settings, deadline: Deadline) -> func.HttpResponse:
    """The timeline page: `days` (1-31, default 7) from `after` (ISO time, default now), on the clock of
    `tz` (IANA, default UTC); one self-contained HTML document under a strict Content-Security-Policy."""
    from batchk8s.schedules import service
    from batchk8s.schedules.timeline_html import HEADERS, render, render_unconfigured

    days = int_param(req, "days", 7, 1, service.MAX_VIEW_DAYS)
    zone = service.view_zone(req.params.get("tz"))
    now = clock.now()
    start = service.view_start(req.params.get("after"), now)
    if not service.configured(settings):
        page = render_unconfigured()
    else:
        page = render(service.timeline(settings, days, zone, start, now, deadline=deadline))
    return func.HttpResponse(page, status_code=200, headers=HEADERS, mimetype="text/html", charset="utf-8")
