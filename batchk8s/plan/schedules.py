"""The `plan` section for the schedule document: the next day of firings, computed offline.

Only a document given inline (BATCHK8S_SCHEDULES) can be shown without a request; a document in a
blob is read by `schedules plan`, which is allowed to reach storage.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from batchk8s.plan.section import Section
from batchk8s.settings import Settings

PLAN_HOURS = 24


def schedules_section(settings: Settings, *, now: datetime, **_: Any) -> Section:
    from batchk8s.schedules.document import DocumentError, parse_text
    from batchk8s.schedules.planner import format_firing, format_hold, window

    title = "schedule document"
    if settings.schedules_blob and not settings.schedules_json:
        return Section(title, {"source": f"blob {settings.schedules_blob}"},
                       [f"read from blob {settings.schedules_blob} at run time: "
                        "`python -m batchk8s schedules plan` shows its firings"])
    if not settings.schedules_json:
        return Section(title, None, ["BATCHK8S_SCHEDULES is not set: the schedule document is off"])
    try:
        document = parse_text(settings.schedules_json, now=now, default_resource_group=settings.resource_group,
                              source="BATCHK8S_SCHEDULES")
    except DocumentError as error:
        return Section(title, error.to_dict(), [f"PROBLEM {p['field']}: {p['message']}" for p in error.details])
    end = now + timedelta(hours=PLAN_HOURS)
    targets = window(document, now, end)
    lines = [f"{len(document.rules)} rule(s); firings in the next {PLAN_HOURS} hours:"]
    for entry in targets:
        lines.append(f"{entry['label']}:")
        lines += [f"  {format_firing(f)}" for f in entry["firings"]] or ["  (none)"]
    holds = [hold.to_dict() for hold in document.holds if hold.until > now]
    lines += [format_hold(hold) for hold in holds]
    if settings.schedules_blob:
        lines.append("PROBLEM BATCHK8S_SCHEDULES_BLOB: set only one of BATCHK8S_SCHEDULES and BATCHK8S_SCHEDULES_BLOB")
    return Section(title, {"source": "BATCHK8S_SCHEDULES", "hours": PLAN_HOURS, "targets": targets,
                           "holds": holds}, lines)
