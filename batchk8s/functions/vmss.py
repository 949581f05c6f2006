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
from batchk8s.settings import VMSS_ACTIONS, Settings, current_settings
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


@bp.function_name("vmss_schedule")
@bp.timer_trigger(schedule="%VmssTriggerSchedule%", arg_name="timer", run_on_startup=False, use_monitor=True)
def vmss_schedule(timer: func.TimerRequest) -> None:
    """Run AZURE_VMSS_ACTION on the configured scale sets and follow the operations to their outcome
    within the function's budget (what still runs is reported by the next firing); a bad configuration
    is logged, not thrown, so the log says what to fix instead of showing a stack trace every firing."""
    if timer.past_due:
        log.warning("vmss_schedule: this firing is past due (the host was down or busy at the scheduled time)")
    from batchk8s.schedules.followup import scheduled_action
    from batchk8s.timer_budget import function_budget

    budget = function_budget()
    settings = current_settings()
    try:
        reports = scheduled_action(settings, budget, Deadline.for_timer())
    except BatchK8sError as error:
        from batchk8s.notify import run_failed

        log.error("vmss_schedule: not run: %s", error.message)
        for detail in error.details:
            log.error("vmss_schedule:   %s: %s", detail.get("field", "?"), detail.get("message", ""))
        run_failed(settings, "vmss_schedule", error, settings.vmss_action)
        return
    for report in reports:
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
    problems = [{"field": key, "message": f"unknown field; allowed: {', '.join(BODY_FIELDS)}"}
                for key in body if key not in BODY_FIELDS]
    names = body.get("names")
    if "names" in body and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
        problems.append({"field": "names", "message": "must be an array of scale set names"})
        names = None
    dry_run = body.get("dryRun", False)
    if not isinstance(dry_run, bool):
        problems.append({"field": "dryRun", "message": "must be true or false"})
    wait_seconds = body.get("waitSeconds", 0)
    if isinstance(wait_seconds, bool) or not isinstance(wait_seconds, int) or not 0 <= wait_seconds <= MAX_WAIT_SECONDS:
        problems.append({"field": "waitSeconds", "message": f"must be a whole number from 0 to {MAX_WAIT_SECONDS}"})
    if names is not None:
        try:
            validate_names(names)
        except InputError as error:
            problems += error.details
    if problems:
        raise InputError.from_problems(problems, "invalid request body")
    return names, dry_run, wait_seconds


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
