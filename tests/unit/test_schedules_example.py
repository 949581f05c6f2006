"""examples/schedules.json, docs/scheduling.md's example document: valid, and firing as it says."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from batchk8s.schedules.planner import format_hold
from batchk8s.schedules.service import upcoming
from batchk8s.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = (ROOT / "examples" / "schedules.json").read_text()
FRIDAY = datetime(2026, 7, 3, 0, 0, tzinfo=UTC)  # summer time in Berlin (UTC+2) and New York (UTC-4)


def firings(plan: dict, label: str) -> list[tuple[str, str, str]]:
    [entry] = [entry for entry in plan["targets"] if entry["label"] == label]
    return [(f["utc"], f["local"], f["rule"]) for f in entry["firings"]]


def test_office_hours_in_two_zones_weekend_shutdown_and_nightly_pool_scale_to_zero():
    plan = upcoming(load_settings({}), 72, now=FRIDAY, text=EXAMPLE, source="examples/schedules.json")
    eu = firings(plan, "scale sets tagged schedule=office-hours-eu")
    assert eu == [("2026-07-03T06:00:00+00:00", "2026-07-03T08:00:00+02:00", "eu-open"),
                  ("2026-07-03T17:00:00+00:00", "2026-07-03T19:00:00+02:00", "eu-close")]  # nothing on the weekend
    assert firings(plan, "scale set rg-us/vmss-us") == [
        ("2026-07-03T12:00:00+00:00", "2026-07-03T08:00:00-04:00", "us-open"),
        ("2026-07-03T22:00:00+00:00", "2026-07-03T18:00:00-04:00", "us-close")]
    assert firings(plan, "scale set rg-hpc/vmss-render") == [
        ("2026-07-03T18:00:00+00:00", "2026-07-03T20:00:00+02:00", "weekend-off")]
    assert firings(plan, "pool k8s-pool") == [
        ("2026-07-03T05:00:00+00:00", "2026-07-03T07:00:00+02:00", "pool-day"),
        ("2026-07-03T18:00:00+00:00", "2026-07-03T20:00:00+02:00", "pool-night"),
        ("2026-07-04T18:00:00+00:00", "2026-07-04T20:00:00+02:00", "pool-night"),
        ("2026-07-05T18:00:00+00:00", "2026-07-05T20:00:00+02:00", "pool-night")]
    [hold] = plan["holds"]
    assert format_hold(hold) == ("scale set rg-hpc/vmss-render held until 2027-01-08T07:00:00+00:00 "
                                 "(year-end rendering run)")


@pytest.mark.clock  # --after is checked against the current instant (within a century of it)
def test_the_readme_example_is_what_schedules_plan_prints(capsys: pytest.CaptureFixture[str]):
    """docs/scheduling.md shows a command and its output: run the command, get exactly that output."""
    import re
    import shlex

    from batchk8s.cli import main

    readme = (ROOT / "docs" / "scheduling.md").read_text(encoding="utf-8")
    match = re.search(r"^`(schedules plan [^`]*--after [^`]*)`[^\n]*:\n\n```text\n(.*?)```", readme, re.M | re.S)
    assert match, "docs/scheduling.md's schedules plan example with --after and its output"
    command, shown = match.groups()
    argv = [*shlex.split(command), "--settings", str(ROOT / "tests" / "data" / "empty.settings.json")]
    assert main(argv) == 0
    assert capsys.readouterr().out == shown


@pytest.mark.clock
def test_schedules_plan_window_starts_after_the_given_time(capsys: pytest.CaptureFixture[str]):
    from batchk8s.cli import main

    base = ["schedules", "plan", "--file", str(ROOT / "examples" / "schedules.json"), "--json", "--settings",
            str(ROOT / "tests" / "data" / "empty.settings.json")]
    assert main([*base, "--hours", "1", "--after", "2026-07-03T05:30:00+02:00"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert (plan["from"], plan["to"]) == ("2026-07-03T03:30:00+00:00", "2026-07-03T04:30:00+00:00")
    assert main([*base, "--hours", "2", "--after", "2026-07-03T04:00:00"]) == 0  # no offset: UTC
    plan = json.loads(capsys.readouterr().out)
    assert plan["from"] == "2026-07-03T04:00:00+00:00"
    assert firings(plan, "pool k8s-pool") == [("2026-07-03T05:00:00+00:00", "2026-07-03T07:00:00+02:00", "pool-day")]


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01T00:00:00Z", "9999-12-31T00:00:00Z"])
@pytest.mark.clock
def test_a_bad_after_is_exit_2_naming_the_option(value: str, capsys: pytest.CaptureFixture[str]):
    from batchk8s.cli import main

    assert main(["schedules", "plan", "--file", str(ROOT / "examples" / "schedules.json"), "--after", value]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: --after: ") and "Traceback" not in captured.err
    assert captured.out == ""
