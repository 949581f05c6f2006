"""The `plan` section for the vmss_schedule timer: its next firings in UTC and the configured zone."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from batchk8s.plan.section import Section
from batchk8s.settings import Settings


def vmss_schedule_section(settings: Settings, *, now: datetime, count: int, **_: Any) -> Section:
    from batchk8s.vmss_timer import upcoming_firings

    if settings.vmss_timer_disabled:
        return Section("vmss schedule", {"enabled": False}, [
            "vmss_schedule is switched off (AzureWebJobs.vmss_schedule.Disabled=true): the host never fires it"])
    given = settings.invalid.get("VmssTriggerSchedule")
    if given is not None:
        problems = [p.message for p in settings.problems if p.setting == "VmssTriggerSchedule"]
        return Section("vmss schedule", {"enabled": True, "schedule": given, "invalid": True}, [
            f"PROBLEM VmssTriggerSchedule {problem}: the Functions host does not load vmss_schedule with it"
            for problem in problems])
    if not settings.vmss_schedule:
        return Section("vmss schedule", None, [f"PROBLEM VmssTriggerSchedule {problem.message}"
                                               for problem in settings.binding_problems()])
    data = upcoming_firings(settings, now, count)
    targets = ", ".join(f"{settings.resource_group}/{name}" for name in settings.vmss_names) or "(no scale set)"
    lines = [f"{settings.vmss_action or '(no action)'} {targets} on '{settings.vmss_schedule}'"
             f" (timer time zone: {data['timeZone']})"]
    lines += [f"  {f['utc']}  ({f['local']})" for f in data["firings"]]
    lines += [f"WARNING {warning}" for warning in data["warnings"]]
    return Section("vmss schedule", data, lines)
