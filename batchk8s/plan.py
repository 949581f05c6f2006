"""`plan`: everything the app would do with these settings, computed offline.

Each area contributes a section builder `(settings) -> Section` listed in SECTIONS. Builders are
pure: they validate and build requests but send nothing to Azure, so `make run` works with no
account, and a user can review a change before it touches a subscription.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from batchk8s import clock
from batchk8s.settings import Settings, written

SECTIONS = (
    "batchk8s.plan:settings_section",
    "batchk8s.plan:vmss_schedule_section",
    "batchk8s.schedules.plan_section:schedules_section",
    "batchk8s.batch.plan_section:pool_section",
    "batchk8s.batch.plan_section:workflows_section",
    "batchk8s.tes.plan_section:tes_section",
)


@dataclass
class Section:
    title: str
    data: Any
    lines: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        """The section's JSON key, camelCase like every other key batchk8s emits: "vmss schedule" -> vmssSchedule."""
        first, *rest = self.title.split()
        return first + "".join(word[:1].upper() + word[1:] for word in rest)

    @property
    def has_problems(self) -> bool:
        """Whether the section prints a PROBLEM line (then `plan` exits 2)."""
        return any(line.lstrip().startswith("PROBLEM ") for line in self.lines)


def build_plan(settings: Settings, now: datetime | None = None, count: int = 5) -> list[Section]:
    now = now or clock.now()
    sections = []
    for ref in SECTIONS:
        module, name = ref.split(":")
        sections.append(getattr(importlib.import_module(module), name)(settings, now=now, count=count))
    return sections


def settings_section(settings: Settings, **_: Any) -> Section:
    report = settings.report()
    invalid = set(report["invalid"])
    lines = [f"{name} = {written(value)}" + (" (invalid)" if name in invalid else "")
             for name, value in report["settings"].items() if value not in (None, [])]
    lines += [f"PROBLEM {p['field']}: {p['message']}" for p in report["problems"]]
    lines += [f"WARNING {warning}" for warning in report["warnings"]]
    return Section("settings", report, lines)


def vmss_schedule_section(settings: Settings, *, now: datetime, count: int, **_: Any) -> Section:
    from batchk8s.timer_plan import upcoming_firings

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
