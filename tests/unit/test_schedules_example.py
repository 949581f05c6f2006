"""examples/schedules.json, docs/scheduling.md's example document: valid, and firing as it says."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from batchk8s.schedules.planner import format_hold
from batchk8s.schedules.service import upcoming
from batchk8s.settings import load_settings

EXAMPLE = (Path(__file__).resolve().parents[2] / "examples" / "schedules.json").read_text()
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
