"""The planner: per-target latest firing in each rule's zone (DST included), catch-up, retries, holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from batchk8s.schedules.document import Document, ScaleSetTarget, parse_document
from batchk8s.schedules.planner import (
    CLAIM_LEASE,
    MAX_ATTEMPTS,
    MISSED_LISTED,
    STATUS_CLAIMED,
    STATUS_DONE,
    STATUS_FAILED,
    TargetState,
    active_hold,
    decide,
    firings_between,
    format_firing,
    latest_by_rule,
    retry_after,
    rules_for,
    window,
)

TARGET = ScaleSetTarget("rg", "vmss-a")


def doc(*rules: dict[str, object], holds: list[dict[str, object]] | None = None) -> Document:
    full = [{"action": "start", "targets": [{"resourceGroup": "rg", "name": "vmss-a"}], **r} for r in rules]
    return parse_document({"rules": full, "holds": holds or []}, now=datetime(2025, 1, 1, tzinfo=UTC))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def tick(document: Document, now: datetime, state: TargetState | None = None):
    rules = document.by_key[TARGET.key]
    return decide(TARGET, rules, latest_by_rule(rules, now), state, now)


def simulate(document: Document, start: datetime, end: datetime) -> list[datetime]:
    """Run a reconcile tick every minute from start to end, as the timer does; return the acted firings."""
    state: TargetState | None = TargetState(firing=start - timedelta(seconds=1))
    acted = []
    now = start
    while now <= end:
        decision = tick(document, now, state)
        if decision.kind == "due":
            assert decision.firing is not None
            acted.append(decision.firing.utc)
            state = TargetState(firing=decision.firing.utc, status=STATUS_DONE)
        now += timedelta(minutes=1)
    return acted


# --- time zones and daylight saving time ----------------------------------------------------------

DST_CASES = [
    # zone, the DST day, the UTC instant 02:30 local fires at that day, why
    ("Europe/Berlin", "2025-03-30", "2025-03-30T01:30:00+00:00", "spring forward: 02:30 does not exist -> 03:30 CEST"),
    ("Europe/Berlin", "2025-10-26", "2025-10-26T00:30:00+00:00", "fall back: 02:30 twice -> the first (CEST) only"),
    ("America/New_York", "2025-03-09", "2025-03-09T07:30:00+00:00", "spring forward: 02:30 -> 03:30 EDT"),
    ("America/New_York", "2025-11-02", "2025-11-02T07:30:00+00:00", "fall back: 02:30 EST exists once"),
]


@pytest.mark.parametrize(("zone", "day", "instant", "why"), DST_CASES, ids=[f"{c[0]}-{c[1]}" for c in DST_CASES])
def test_0230_fires_exactly_once_on_dst_days_at_the_defined_instant(zone: str, day: str, instant: str, why: str):
    document = doc({"schedule": "0 30 2 * * *", "timeZone": zone})
    midnight = utc(f"{day}T00:00:00+00:00")
    acted = simulate(document, midnight - timedelta(hours=6), midnight + timedelta(hours=30))
    on_the_day = [a for a in acted if a.astimezone(document.rules[0].zone).date().isoformat() == day]
    assert on_the_day == [utc(instant)], why


def test_new_york_fall_back_ambiguous_0130_fires_in_the_first_pass_only():
    document = doc({"schedule": "0 30 1 * * *", "timeZone": "America/New_York"})
    acted = simulate(document, utc("2025-11-02T03:00:00+00:00"), utc("2025-11-02T09:00:00+00:00"))
    assert acted == [utc("2025-11-02T05:30:00+00:00")]  # 01:30 EDT; 01:30 EST (06:30 UTC) does not fire again


def test_asia_kolkata_half_hour_offset():
    document = doc({"schedule": "0 0 8 * * *", "timeZone": "Asia/Kolkata"})
    acted = simulate(document, utc("2025-06-01T00:00:00+00:00"), utc("2025-06-03T00:00:00+00:00"))
    assert acted == [utc("2025-06-01T02:30:00+00:00"), utc("2025-06-02T02:30:00+00:00")]
    firing = tick(document, utc("2025-06-01T02:30:00+00:00")).firing
    assert firing is not None and firing.at.isoformat() == "2025-06-01T08:00:00+05:30"


def test_two_zones_on_one_target_each_fire_at_their_own_local_time():
    document = doc({"name": "eu", "schedule": "0 0 8 * * Mon-Fri", "timeZone": "Europe/Berlin"},
                   {"name": "us", "schedule": "0 0 17 * * Mon-Fri", "timeZone": "America/New_York",
                    "action": "deallocate"})
    acted = simulate(document, utc("2025-07-07T00:00:00+00:00"), utc("2025-07-08T00:00:00+00:00"))  # a Monday
    assert acted == [utc("2025-07-07T06:00:00+00:00"), utc("2025-07-07T21:00:00+00:00")]


# --- catch-up ----------------------------------------------------------------------------------

OFFICE = ({"name": "start", "schedule": "0 0 8 * * *"}, {"name": "stop", "schedule": "0 0 19 * * *",
                                                          "action": "deallocate"})


def test_first_sight_applies_the_newest_past_firing_and_lists_nothing_missed():
    decision = tick(doc(*OFFICE), utc("2025-05-01T21:00:00+00:00"))
    assert decision.kind == "due" and decision.firing is not None
    assert decision.firing.rule.name == "stop" and decision.missed == () and decision.missed_total == 0


def test_down_across_one_firing_applies_the_newest_and_records_the_older_as_missed():
    state = TargetState(firing=utc("2025-05-01T08:00:00+00:00"))
    decision = tick(doc(*OFFICE), utc("2025-05-02T08:05:00+00:00"), state)
    assert decision.kind == "due" and decision.firing is not None
    assert (decision.firing.rule.name, decision.firing.utc) == ("start", utc("2025-05-02T08:00:00+00:00"))
    assert [(f.rule.name, f.utc) for f in decision.missed] == [("stop", utc("2025-05-01T19:00:00+00:00"))]


def test_down_across_several_firings_applies_only_the_newest():
    state = TargetState(firing=utc("2025-05-01T08:00:00+00:00"))
    decision = tick(doc(*OFFICE), utc("2025-05-04T12:00:00+00:00"), state)
    assert decision.firing is not None and decision.firing.utc == utc("2025-05-04T08:00:00+00:00")
    assert decision.missed_total == 5  # 1st 19:00, 2nd 08:00 + 19:00, 3rd 08:00 + 19:00
    assert [f.utc.isoformat() for f in decision.missed] == sorted(f.utc.isoformat() for f in decision.missed)


def test_many_missed_firings_are_counted_and_only_the_newest_listed():
    document = doc({"schedule": "0 */5 * * * *"})
    state = TargetState(firing=utc("2025-05-01T00:00:00+00:00"))
    decision = tick(document, utc("2025-05-02T00:00:00+00:00"), state)
    assert decision.missed_total == 24 * 12 - 1 and len(decision.missed) == MISSED_LISTED
    assert decision.missed[-1].utc == utc("2025-05-01T23:55:00+00:00")
    assert firings_between(document.rules, utc("2025-05-01T00:00:00+00:00"),
                           utc("2025-05-01T00:05:00+00:00")) == ((), 0)


def test_a_manual_change_between_firings_is_left_alone_until_the_next_firing():
    document = doc(*OFFICE)
    state = TargetState(firing=utc("2025-05-01T08:00:00+00:00"))
    for minute in range(0, 11 * 60, 7):  # someone deallocates at 10:00; every tick until 19:00 leaves it
        assert tick(document, utc("2025-05-01T08:00:00+00:00") + timedelta(minutes=minute), state).kind == "up-to-date"
    assert tick(document, utc("2025-05-01T19:00:00+00:00"), state).kind == "due"


def test_state_newer_than_every_rule_is_up_to_date():
    state = TargetState(firing=utc("2025-05-02T00:00:00+00:00"))
    assert tick(doc(*OFFICE), utc("2025-05-01T21:00:00+00:00"), state).kind == "up-to-date"


def test_a_target_whose_rules_never_fired_yet_is_idle():
    document = parse_document({"rules": [{"schedule": "0 0 8 1 1 *", "action": "start",
                                          "targets": [{"resourceGroup": "rg", "name": "vmss-a"}]}]},
                              now=datetime(2025, 1, 1, tzinfo=UTC))
    rules = document.by_key[TARGET.key]
    assert decide(TARGET, rules, {rules[0].index: None}, None, utc("2025-01-01T00:00:00+00:00")).kind == "idle"


# --- claims and retries ----------------------------------------------------------------------------

FIRING = utc("2025-05-01T08:00:00+00:00")
NOW = utc("2025-05-01T08:03:00+00:00")


@pytest.mark.parametrize(("state", "kind", "retry"), [
    (TargetState(firing=FIRING, status=STATUS_DONE), "up-to-date", True),
    (TargetState(firing=FIRING, status=STATUS_CLAIMED, claimed_at=NOW - timedelta(minutes=1)), "in-progress", True),
    (TargetState(firing=FIRING, status=STATUS_CLAIMED, claimed_at=NOW - CLAIM_LEASE), "due", True),
    (TargetState(firing=FIRING, status=STATUS_FAILED, attempts=1, retry_at=NOW + timedelta(seconds=1)),
     "waiting-retry", True),
    (TargetState(firing=FIRING, status=STATUS_FAILED, attempts=2, retry_at=NOW), "due", True),
    (TargetState(firing=FIRING, status=STATUS_FAILED, attempts=MAX_ATTEMPTS, retry_at=None), "up-to-date", True),
    (TargetState(firing=FIRING - timedelta(days=1), status=STATUS_FAILED, attempts=MAX_ATTEMPTS), "due", False),
])
def test_claims_and_retries(state: TargetState, kind: str, retry: bool):
    decision = tick(doc(*OFFICE), NOW, state)
    assert decision.kind == kind
    if kind == "due":
        assert decision.retry is retry


def test_retry_backoff_doubles_then_gives_up():
    delays = [retry_after(attempt, NOW) for attempt in range(1, MAX_ATTEMPTS + 1)]
    assert [d - NOW if d else None for d in delays] == [timedelta(minutes=m) for m in (1, 2, 4, 8)] + [None]


def test_rules_firing_together_with_different_effects_are_a_conflict():
    document = parse_document({"rules": [
        {"schedule": "0 0 8 * * *", "action": "start", "targets": [{"resourceGroup": "rg", "name": "vmss-a"}]},
        {"schedule": "0 0 8 * * *", "action": "deallocate", "targets": [{"tag": "t", "value": "v"}]},
    ]}, now=datetime(2025, 1, 1, tzinfo=UTC))
    rules = rules_for(TARGET, {"T": "v"}, document)
    assert len(rules) == 2 and rules_for(TARGET, None, document) == [document.rules[0]]
    decision = decide(TARGET, rules, latest_by_rule(rules, NOW), None, NOW)
    assert decision.kind == "due" and decision.conflict and len(decision.firings) == 2


# --- holds ---------------------------------------------------------------------------------------


def test_holds_from_the_document_and_from_the_tag():
    document = doc(*OFFICE, holds=[{"resourceGroup": "rg", "name": "vmss-a", "until": "2025-05-01T12:00:00Z",
                                    "reason": "demo"},
                                   {"tag": "team", "value": "genomics", "until": "2025-05-03T00:00:00Z"}])
    hold = active_hold(TARGET, {}, document.holds, NOW)
    assert hold is not None and hold.until == utc("2025-05-01T12:00:00+00:00") and "demo" in hold.describe()
    assert active_hold(TARGET, {}, document.holds, utc("2025-05-01T12:00:00+00:00")) is None  # ended
    longest = active_hold(TARGET, {"Team": "genomics"}, document.holds, NOW)
    assert longest is not None and longest.until == utc("2025-05-03T00:00:00+00:00")
    # 10:00+02:00 is 08:00 UTC: over at 08:03; 10:30+02:00 is not (the tag name is case-insensitive).
    assert active_hold(TARGET, {"BatchK8s-Hold-Until": "2025-05-01T10:00:00+02:00"}, (), NOW) is None
    tagged = active_hold(TARGET, {"BatchK8s-Hold-Until": "2025-05-01T10:30:00+02:00"}, (), NOW)
    assert tagged is not None and tagged.until == utc("2025-05-01T08:30:00+00:00")
    unreadable = active_hold(TARGET, {"batchk8s-hold-until": "next week"}, (), NOW)
    assert unreadable is not None and "not an ISO time" in unreadable.describe()


def test_expired_hold_tag_does_not_hold():
    assert active_hold(TARGET, {"batchk8s-hold-until": "2025-05-01T08:00:00Z"}, (), NOW) is None


# --- windows ---------------------------------------------------------------------------------------


def test_window_lists_every_firing_per_target_sorted_with_local_and_utc_times():
    document = doc(*OFFICE, {"name": "pool", "schedule": "0 0 20 * * *", "action": "resize", "dedicated": 0,
                             "targets": [{"pool": "k8s"}]})
    plan = window(document, utc("2025-05-01T07:00:00+00:00"), utc("2025-05-02T07:00:00+00:00"))
    assert [entry["label"] for entry in plan] == ["scale set rg/vmss-a", "pool k8s"]
    assert [(f["rule"], f["utc"]) for f in plan[0]["firings"]] == [
        ("start", "2025-05-01T08:00:00+00:00"), ("stop", "2025-05-01T19:00:00+00:00")]
    assert plan[1]["firings"][0] == {"utc": "2025-05-01T20:00:00+00:00", "local": "2025-05-01T20:00:00+00:00",
                                     "timeZone": "UTC", "rule": "pool", "action": "resize", "dedicated": 0, "spot": 0}
    assert format_firing(plan[1]["firings"][0]).endswith("resize 0 dedicated + 0 spot  [pool]")


def test_fall_back_interval_rules_fire_in_both_passes_point_in_time_rules_once():
    start, end = utc("2025-10-25T23:45:00+00:00"), utc("2025-10-26T01:45:00+00:00")  # 01:45 CEST to 02:45 CET
    every_half_hour = simulate(doc({"schedule": "0 */30 * * * *", "timeZone": "Europe/Berlin"}), start, end)
    # 02:00 and 02:30 CEST (UTC+2), then 02:00 and 02:30 again in CET (UTC+1): real-time rhythm kept.
    assert every_half_hour == [utc("2025-10-26T00:00:00+00:00"), utc("2025-10-26T00:30:00+00:00"),
                               utc("2025-10-26T01:00:00+00:00"), utc("2025-10-26T01:30:00+00:00")]
    # Fixed hour, gaps in the minutes: point-in-time, so the repeated 02:00 and 02:30 fire once each.
    fixed = simulate(doc({"schedule": "0 0,30 2 * * *", "timeZone": "Europe/Berlin"}), start, end)
    assert fixed == [utc("2025-10-26T00:00:00+00:00"), utc("2025-10-26T00:30:00+00:00")]
