"""The timeline's layout maths: time to x, days of 23 and 25 hours, shading, DST marks, holds, history rows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from batchk8s.schedules.document import Document, parse_document
from batchk8s.schedules.timeline import MAX_FIRINGS_PER_RULE, Axis, build, day_list, dst_changes, shades, window_end

BERLIN, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # a Tuesday


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def doc(*rules: dict[str, Any], holds: list[dict[str, Any]] | None = None) -> Document:
    return parse_document({"rules": list(rules), "holds": holds or []}, now=NOW, default_resource_group="rg")


def rule(name: str, schedule: str, action: str = "start", zone: str = "UTC", **extra: Any) -> dict[str, Any]:
    targets = extra.pop("targets", [{"name": "vmss-a"}])
    return {"name": name, "schedule": schedule, "timeZone": zone, "action": action, "targets": targets, **extra}


# --- time to x ---------------------------------------------------------------------------------


def test_time_maps_linearly_onto_the_plot_width():
    axis = Axis(utc("2026-11-30T00:00:00+00:00"), utc("2026-12-07T00:00:00+00:00"), 1120.0)
    assert axis.x(axis.start) == 0.0
    assert axis.x(axis.end) == 1120.0
    assert axis.x(utc("2026-12-03T12:00:00+00:00")) == 560.0
    assert axis.x(utc("2026-11-30T01:00:00+00:00")) == pytest.approx(1120 / 168, abs=0.01)  # one hour


@pytest.mark.parametrize(("start", "hours", "why"), [
    ("2026-03-23T00:00:00+01:00", 167, "Berlin springs forward on Sunday 29 March 2026"),
    ("2026-10-19T00:00:00+02:00", 169, "Berlin falls back on Sunday 25 October 2026"),
    ("2026-06-01T00:00:00+02:00", 168, "no change in June"),
])
def test_a_window_is_calendar_days_on_the_viewers_clock(start: str, hours: int, why: str):
    begin = utc(start)
    end = window_end(begin, 7, BERLIN)
    assert (end - begin) == timedelta(hours=hours), why
    assert end.astimezone(BERLIN).hour == 0


@pytest.mark.parametrize(("start", "day", "hours"), [
    ("2026-03-23T00:00:00+01:00", date(2026, 3, 29), 23),
    ("2026-10-19T00:00:00+02:00", date(2026, 10, 25), 25),
])
def test_dst_days_have_23_and_25_hours_and_their_width_follows(start: str, day: date, hours: int):
    begin = utc(start)
    axis = Axis(begin, window_end(begin, 7, BERLIN), 1000.0)
    days = day_list(axis, BERLIN)
    first = begin.astimezone(BERLIN).date()
    assert [d.day for d in days] == [first + timedelta(days=n) for n in range(7)]
    assert {d.day: d.hours for d in days}[day] == hours
    assert sum(d.hours for d in days) == 6 * 24 + hours
    widths = {d.day: d.x1 - d.x0 for d in days}
    ordinary = widths[first]
    assert widths[day] / ordinary == pytest.approx(hours / 24, abs=0.001)
    assert days[0].x0 == 0.0 and days[-1].x1 == 1000.0  # the days tile the plot
    assert all(a.x1 == b.x0 for a, b in pairwise(days))


def test_a_window_starting_mid_day_clips_the_first_and_last_day():
    begin = utc("2026-12-01T15:30:00+01:00")
    axis = Axis(begin, window_end(begin, 2, BERLIN))
    days = day_list(axis, BERLIN)
    assert [(d.day.isoformat(), d.hours) for d in days] == [("2026-12-01", 8.5), ("2026-12-02", 24),
                                                            ("2026-12-03", 15.5)]


def test_firings_sit_at_their_instant_across_the_spring_forward_day():
    document = doc(rule("open", "0 0 8 * * *", zone="Europe/Berlin"))
    begin = utc("2026-03-28T00:00:00+00:00")
    timeline = build(document, start=begin, days=3, zone=ZoneInfo("UTC"), now=NOW, width=72 * 10)
    marks = timeline.rows[0].marks
    # 08:00 in Berlin is 07:00 UTC before the change and 06:00 UTC after it: 10 px per hour here.
    assert [m.at.isoformat() for m in marks] == ["2026-03-28T07:00:00+00:00", "2026-03-29T06:00:00+00:00",
                                                 "2026-03-30T06:00:00+00:00"]
    assert [m.x for m in marks] == [70.0, 300.0, 540.0]
    assert [m.local[11:16] for m in marks] == ["08:00"] * 3


# --- shading and clock changes -----------------------------------------------------------------


def test_nights_and_weekends_are_shaded_on_the_viewers_clock():
    begin = utc("2026-12-04T00:00:00-05:00")  # Friday, New York
    axis = Axis(begin, window_end(begin, 4, NEW_YORK))
    found = [(s.kind, f"{s.start.astimezone(NEW_YORK):%a %H:%M}", f"{s.end.astimezone(NEW_YORK):%a %H:%M}")
             for s in shades(axis, NEW_YORK, day_list(axis, NEW_YORK))]
    assert found == [("night", "Fri 00:00", "Fri 07:00"), ("night", "Fri 19:00", "Sat 00:00"),
                     ("weekend", "Sat 00:00", "Mon 00:00"), ("night", "Mon 00:00", "Mon 07:00"),
                     ("night", "Mon 19:00", "Tue 00:00")]


def test_weekday_nights_merge_across_midnight():
    begin = utc("2026-12-01T12:00:00+00:00")  # Tuesday noon UTC
    axis = Axis(begin, window_end(begin, 1, ZoneInfo("UTC")))
    found = shades(axis, ZoneInfo("UTC"), day_list(axis, ZoneInfo("UTC")))
    assert [(s.kind, s.start.isoformat(), s.end.isoformat()) for s in found] == [
        ("night", "2026-12-01T19:00:00+00:00", "2026-12-02T07:00:00+00:00")]


def test_dst_changes_of_each_zone_are_found_to_the_minute_with_their_shift():
    begin = utc("2026-03-01T00:00:00+00:00")
    axis = Axis(begin, begin + timedelta(days=31))
    changes = dst_changes(axis, [BERLIN, NEW_YORK, ZoneInfo("Asia/Kolkata")])
    assert [(c.zone, c.at.isoformat(), c.shift) for c in changes] == [
        ("America/New_York", "2026-03-08T07:00:00+00:00", timedelta(hours=1)),
        ("Europe/Berlin", "2026-03-29T01:00:00+00:00", timedelta(hours=1))]
    assert changes[1].label == "Europe/Berlin clocks +1h"
    back = dst_changes(Axis(utc("2026-10-20T00:00:00+00:00"), utc("2026-10-30T00:00:00+00:00")), [BERLIN])
    assert [(c.at.isoformat(), c.label) for c in back] == [("2026-10-25T01:00:00+00:00", "Europe/Berlin clocks -1h")]


def test_the_timeline_marks_changes_of_the_viewers_zone_and_of_each_rule_zone():
    document = doc(rule("open", "0 0 8 * * *", zone="America/New_York"))
    timeline = build(document, start=utc("2026-03-05T00:00:00+00:00"), days=31, zone=BERLIN, now=NOW)
    assert [c.zone for c in timeline.dst] == ["America/New_York", "Europe/Berlin"]


# --- holds -------------------------------------------------------------------------------------


def test_holds_are_clipped_to_the_window_and_mark_the_firings_they_cover():
    begin = utc("2026-11-30T00:00:00+00:00")
    document = doc(
        rule("open", "0 0 8 * * *", targets=[{"name": "a"}, {"name": "b"}, {"name": "c"}]),
        rule("grow", "0 0 8 * * *", "resize", dedicated=1, targets=[{"pool": "p"}]),
        holds=[{"name": "a", "until": "2026-12-02T12:00:00Z", "reason": "inside"},
               {"name": "b", "until": "2027-01-08T08:00:00+01:00", "reason": "beyond the end"},
               {"name": "c", "until": "2026-11-29T12:00:00Z", "reason": "over before the start"},
               {"name": "lonely", "until": "2026-12-01T00:00:00Z"}])
    timeline = build(document, start=begin, days=7, zone=ZoneInfo("UTC"), now=NOW, width=1680)  # 10 px an hour
    rows = {row.key: row for row in timeline.rows}
    [inside] = rows["vmss/rg/a"].holds
    assert (inside.x0, inside.x1, inside.reason) == (0.0, 600.0, "inside")
    assert [m.held for m in rows["vmss/rg/a"].marks] == [True, True, True, False, False, False, False]
    [beyond] = rows["vmss/rg/b"].holds
    assert (beyond.x0, beyond.x1, beyond.end) == (0.0, 1680.0, timeline.axis.end)
    assert beyond.until == utc("2027-01-08T07:00:00+00:00")
    assert all(m.held for m in rows["vmss/rg/b"].marks)
    assert rows["vmss/rg/c"].holds == [] and not any(m.held for m in rows["vmss/rg/c"].marks)
    assert not any(m.held for m in rows["pool/p"].marks)
    # A held target no rule names still gets a row, in a group of its own at the end.
    assert timeline.groups[-1].label == "held, no rule names it"
    assert [r.key for r in timeline.groups[-1].rows] == ["vmss/rg/lonely"]


# --- rows, groups and the history --------------------------------------------------------------


def test_targets_are_grouped_by_the_rules_that_apply_to_them_in_document_order():
    document = doc(rule("eu-open", "0 0 8 * * Mon-Fri", targets=[{"name": "a"}, {"name": "b"}]),
                   rule("eu-close", "0 0 19 * * Mon-Fri", "deallocate", targets=[{"name": "a"}, {"name": "b"}]),
                   rule("pool-night", "0 0 20 * * *", "resize", dedicated=0, targets=[{"pool": "p"}]),
                   rule("only-a", "0 0 12 * * Sat", targets=[{"name": "c"}]))
    timeline = build(document, start=utc("2026-11-30T00:00:00+00:00"), days=7, zone=ZoneInfo("UTC"), now=NOW)
    assert [(g.label, [r.label for r in g.rows]) for g in timeline.groups] == [
        ("eu-open · eu-close", ["scale set rg/a", "scale set rg/b"]),
        ("pool-night", ["pool p"]), ("only-a", ["scale set rg/c"])]
    assert [len(r.marks) for r in timeline.rows] == [10, 10, 7, 1]
    assert timeline.counts() == {"groups": 3, "rows": 4, "marks": 28, "outcomes": 0, "holds": 0}
    pool_mark = timeline.groups[1].rows[0].marks[0]
    assert (pool_mark.action, pool_mark.dedicated, pool_mark.spot, pool_mark.effect) == ("resize", 0, 0,
                                                                                         "resize to 0+0")


def entry(key: str, firing: str, result: str, at: str, rule_name: str = "eu-open", **extra: Any) -> dict[str, Any]:
    _, group, name = key.split("/")
    return {"key": key, "target": {"kind": "vmss", "resourceGroup": group, "name": name}, "at": at,
            "firing": firing, "rule": rule_name, "action": "start", "result": result, **extra}


def test_recorded_outcomes_of_the_past_part_sit_on_their_rows_newest_record_winning():
    document = doc(rule("eu-open", "0 0 8 * * *", targets=[{"name": "a"}, {"tag": "schedule", "value": "eu"}]))
    history = [
        entry("vmss/rg/a", "2026-11-30T08:00:00+00:00", "failed", "2026-11-30T08:00:05+00:00",
              reason="OperationNotAllowed", detail="quota"),
        entry("vmss/rg/a", "2026-11-30T08:00:00+00:00", "applied", "2026-11-30T08:01:05+00:00"),
        entry("vmss/rg/a", "2026-12-01T08:00:00+00:00", "failed", "2026-12-01T08:00:04+00:00",
              reason="AllocationFailed"),
        entry("vmss/rg/tagged", "2026-12-01T08:00:00+00:00", "skipped", "2026-12-01T08:00:02+00:00",
              reason="hold"),
        entry("vmss/rg/a", "2026-11-28T08:00:00+00:00", "applied", "2026-11-28T08:00:01+00:00"),  # before the window
        entry("vmss/rg/a", "2026-12-02T08:00:00+00:00", "applied", "2026-12-02T08:00:01+00:00"),  # after now
        {"key": "vmss/rg/a", "firing": "not a time", "result": "applied"},
        entry("vmss/rg/a", "2026-11-30T19:00:00+00:00", "dry-run", "2026-11-30T19:00:00+00:00"),
    ]
    begin = utc("2026-11-30T00:00:00+00:00")
    timeline = build(document, start=begin, days=7, zone=ZoneInfo("UTC"), now=NOW, history=history, width=1680)
    rows = {row.key: row for row in timeline.rows}
    outcomes = rows["vmss/rg/a"].outcomes
    assert [(o.firing.isoformat(), o.result, o.reason, o.records, o.x) for o in outcomes] == [
        ("2026-11-30T08:00:00+00:00", "applied", None, 2, 80.0),
        ("2026-12-01T08:00:00+00:00", "failed", "AllocationFailed", 1, 320.0)]
    # A scale set only a tag selector matched gets its own row under the rule that fired on it.
    tagged = rows["vmss/rg/tagged"]
    assert (tagged.label, tagged.from_history, [o.result for o in tagged.outcomes]) == (
        "scale set rg/tagged", True, ["skipped"])
    assert [r.key for r in timeline.groups[0].rows] == ["vmss/rg/a", "tag/*/schedule=eu", "vmss/rg/tagged"]
    assert timeline.to_dict()["counts"]["outcomes"] == 3


def test_a_rule_firing_every_minute_is_drawn_up_to_the_limit_with_a_note():
    document = doc(rule("busy", "0 * * * * *"), rule("calm", "0 0 8 * * *", "start", targets=[{"name": "b"}]))
    timeline = build(document, start=utc("2026-11-30T00:00:00+00:00"), days=7, zone=ZoneInfo("UTC"), now=NOW,
                     notes=["first"])
    assert [len(row.marks) for row in timeline.rows] == [MAX_FIRINGS_PER_RULE, 7]
    assert timeline.notes == ["first", f"rule busy fires {MAX_FIRINGS_PER_RULE} times or more in this window: "
                                       f"only its first {MAX_FIRINGS_PER_RULE} firings are drawn"]
