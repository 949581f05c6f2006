"""Scale sets: the scheduled timer, the schedule preview, power state, and start / deallocate over HTTP."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import azure.functions as func

from batchk8s import clock
from batchk8s.deadline import Deadline
from batchk8s.errors import BatchK8sError, ConfigError, InputError, NotFoundError, UpstreamError
from batchk8s.functions.http import (
    accepted,
    base_url,
    deprecated,
    endpoint,
    int_param,
    json_response,
    query_values,
    read_json,
)
from batchk8s.functions.timers import timer_job
from batchk8s.problems import Problems
from batchk8s.settings import VMSS_ACTIONS, Settings
from batchk8s.timer_budget import function_budget
from batchk8s.vmss import (
    MAX_WAIT_SECONDS,
    TargetReport,
    apply_action,
    configured_targets,
    power_states,
    summary_line,
    validate_names,
)

bp = func.Blueprint()
log = logging.getLogger("batchk8s.vmss")

BODY_FIELDS = ("names", "dryRun", "waitSeconds")


def _post_not_run(settings: Settings, name: str, error: BatchK8sError) -> None:
    """A firing that could not run at all is one webhook event naming what to fix (docs/notifications.md)."""
    from batchk8s.notify import run_failed

    run_failed(settings, name, error, settings.vmss_action)


@bp.function_name("vmss_schedule")
@bp.timer_trigger(schedule="%VmssTriggerSchedule%", arg_name="timer", run_on_startup=False, use_monitor=True)
@timer_job(budget=function_budget, on_failure=_post_not_run, logger=log)
def vmss_schedule(timer: func.TimerRequest, settings: Settings, deadline: Deadline, budget: Deadline) -> None:
    """Run AZURE_VMSS_ACTION on the configured scale sets and follow the operations to their outcome
    within `budget` (what still runs is reported by the next firing); a bad configuration is logged
    with every problem and posted to the webhook, not thrown (functions/timers.py)."""
    from batchk8s.schedules.followup import scheduled_action

    for report in scheduled_action(settings, budget, deadline):
        (log.warning if report.failed else log.info)("vmss_schedule: %s", summary_line(report))


@bp.function_name("vmss_timer")
@bp.route(route="vmss/timer", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@endpoint
def vmss_timer(req: func.HttpRequest, settings: Settings) -> func.HttpResponse:
    """The next firings of VmssTriggerSchedule, in UTC and the configured zone, with action and targets."""
    return _timer_firings(req, settings)


@bp.function_name("schedule")
@bp.route(route="schedule", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@deprecated(successor="/api/vmss/timer")
@endpoint
def schedule(req: func.HttpRequest, settings: Settings) -> func.HttpResponse:
    """The old name of GET /api/vmss/timer, kept for one release."""
    return _timer_firings(req, settings)


def _timer_firings(req: func.HttpRequest, settings: Settings) -> func.HttpResponse:
    from batchk8s.vmss_timer import upcoming_firings

    count = int_param(req, "count", 5, 1, 100)
    if settings.vmss_timer_disabled:
        raise ConfigError("vmss_schedule is switched off (AzureWebJobs.vmss_schedule.Disabled=true): it never fires",
                          code="TimerDisabled",
                          details=[{"field": "AzureWebJobs.vmss_schedule.Disabled", "message": "is true"}])
    if not settings.vmss_schedule:
        problems = [p.to_dict() for p in (*settings.problems, *settings.binding_problems())
                    if p.setting == "VmssTriggerSchedule"]
        raise ConfigError(f"VmssTriggerSchedule: {problems[0]['message']}", details=problems)
    return json_response(upcoming_firings(settings, clock.now(), count))


@bp.function_name("vmss_status")
@bp.route(route="vmss", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@endpoint
def vmss_status(req: func.HttpRequest, settings: Settings, deadline: Deadline) -> func.HttpResponse:
    """Power state per scale set and instance; `?name=` (repeated or comma-separated) picks scale sets."""
    targets = configured_targets(settings, _query_names(req))
    reports = power_states(settings, targets, deadline=deadline)
    _raise_if_nothing_succeeded(reports)
    return json_response({"scaleSets": [report.to_dict() for report in reports]})


@bp.function_name("vmss_action")
@bp.route(route="vmss/{action}", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@endpoint
def vmss_action(req: func.HttpRequest, settings: Settings, deadline: Deadline) -> func.HttpResponse:
    """Start or deallocate: 202 while operations run (Location: GET /api/vmss), 200 when nothing is left to run."""
    action = (req.route_params.get("action") or "").lower()
    if action not in VMSS_ACTIONS:
        raise InputError.for_field("action", f"must be one of {', '.join(VMSS_ACTIONS)}")
    names, dry_run, wait_seconds = parse_action_body(read_json(req))
    targets = configured_targets(settings, names)
    reports = apply_action(settings, action, targets, dry_run=dry_run, wait_seconds=wait_seconds,
                           deadline=deadline)
    _raise_if_nothing_succeeded(reports)
    summary: dict[str, int] = {}
    for report in reports:
        summary[report.outcome] = summary.get(report.outcome, 0) + 1
    body = {"action": action, "dryRun": dry_run, "summary": summary,
            "targets": [report.to_dict() for report in reports]}
    if any(report.outcome == "accepted" for report in reports):
        names_query = quote(",".join(target.resource_id if target.subscription else target.name
                                     for target in targets), safe=",/")
        return accepted(body, f"{base_url(req)}/api/vmss?name={names_query}")
    return json_response(body)


def parse_action_body(body: dict[str, Any]) -> tuple[list[str] | None, bool, int]:
    """`{"names": [...], "dryRun": bool, "waitSeconds": 0-200}`, every problem reported at once."""
    problems = Problems()
    problems.unknown_fields(body, BODY_FIELDS)
    names = body.get("names")
    if "names" in body and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
        problems.add("names", "must be an array of scale set names")
        names = None
    dry_run = problems.boolean("dryRun", body.get("dryRun", False))
    wait_seconds = problems.whole_number("waitSeconds", body.get("waitSeconds", 0), 0, MAX_WAIT_SECONDS)
    if names is not None:
        try:
            validate_names(names)
        except InputError as error:
            problems.extend(error.details)
    problems.raise_if_any("invalid request body")
    return names, bool(dry_run), wait_seconds or 0


def _query_names(req: func.HttpRequest) -> list[str] | None:
    names = [part.strip() for value in query_values(req, "name") for part in value.split(",") if part.strip()]
    return names or None


def _raise_if_nothing_succeeded(reports: list[TargetReport]) -> None:
    """A lone target's failure is the request's failure (404, 409, 502...); so is every target failing."""
    failed = [report for report in reports if report.failed]
    if not reports or len(failed) < len(reports):
        return
    if len(reports) == 1 and failed[0].problem is not None:
        raise failed[0].problem
    details = [report.to_dict() for report in failed]
    if all(report.outcome == "not-found" for report in failed):
        raise NotFoundError(f"none of the {len(failed)} scale sets was found", details=details)
    raise UpstreamError(f"all {len(failed)} scale sets failed", details=details)
