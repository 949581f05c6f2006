"""The `plan` section for the settings: every value set (secrets masked), invalid ones as given, problems."""

from __future__ import annotations

from typing import Any

from batchk8s.plan.section import Section
from batchk8s.settings import Settings, written


def settings_section(settings: Settings, **_: Any) -> Section:
    report = settings.report()
    invalid = set(report["invalid"])
    lines = [f"{name} = {written(value)}" + (" (invalid)" if name in invalid else "")
             for name, value in report["settings"].items() if value not in (None, [])]
    lines += [f"PROBLEM {p['field']}: {p['message']}" for p in report["problems"]]
    lines += [f"WARNING {warning}" for warning in report["warnings"]]
    return Section("settings", report, lines)

