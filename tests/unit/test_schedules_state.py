"""The state blob's formats: its JSON body and the metadata summary a listing reads (no storage needed)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from batchk8s.schedules.planner import TargetState
from batchk8s.schedules.state import PREFIX, Stored, blob_name, decode, encode, from_summary, is_legacy, key_of, summary

FIRING = datetime(2026, 1, 5, 7, 0, tzinfo=UTC)
NOW = datetime(2026, 1, 5, 7, 0, 3, tzinfo=UTC)
TARGET = {"kind": "vmss", "resourceGroup": "rg", "name": "vmss-a"}
CLAIMED = TargetState(firing=FIRING, status="claimed", rule="weekday-start", action="start", attempts=2,
                      retry_at=datetime(2026, 1, 5, 7, 5, tzinfo=UTC), claimed_by="host-1/abc",
                      claimed_at=datetime(2026, 1, 5, 7, 0, 1, tzinfo=UTC),
                      claimed_until=datetime(2026, 1, 5, 7, 5, 1, tzinfo=UTC))


def test_blob_names_and_keys_round_trip():
    assert blob_name("vmss~rg~vmss-a") == "schedules/targets/vmss~rg~vmss-a.json" == PREFIX + "vmss~rg~vmss-a.json"
    assert key_of(blob_name("vmss~rg~vmss-a")) == "vmss~rg~vmss-a"


def test_the_body_holds_every_decision_field_compactly():
    body = encode("k", TARGET, CLAIMED, NOW)
    assert json.loads(body) == {
        "schema": 2, "key": "k", "target": TARGET, "firing": "2026-01-05T07:00:00+00:00", "status": "claimed",
        "rule": "weekday-start", "action": "start", "attempts": 2, "retryAt": "2026-01-05T07:05:00+00:00",
        "claimedBy": "host-1/abc", "claimedAt": "2026-01-05T07:00:01+00:00",
        "claimedUntil": "2026-01-05T07:05:01+00:00", "updatedAt": "2026-01-05T07:00:03+00:00"}
    assert ": " not in body and ", " not in body  # compact: one small blob per target
    assert json.loads(encode("k", TARGET, TargetState(), NOW))["firing"] is None


def test_a_body_reads_back_as_the_state_it_was_written_from():
    stored = decode("k", None, encode("k", TARGET, CLAIMED, NOW), '"0x1"')
    assert stored == Stored("k", CLAIMED, TARGET, '"0x1"', legacy=True, history=())
    assert decode("k", {"other": 1}, encode("k", TARGET, CLAIMED, NOW), None).target == {"other": 1}


def test_a_legacy_body_brings_its_history_and_defaults():
    text = json.dumps({"firing": "2026-01-05T08:00:00+01:00", "history": [{"at": "x"}, "junk", {"at": "y"}]})
    stored = decode("k", None, text, "e")
    assert stored.state == TargetState(firing=FIRING, status="done", attempts=0)
    assert (stored.target, stored.history, stored.legacy) == ({}, ({"at": "x"}, {"at": "y"}), True)


def test_a_damaged_or_foreign_body_reads_as_empty():
    for text in ("not json", "[1, 2]", '{"attempts": "many"}', "null"):
        stored = decode("k", TARGET, text, "e")
        assert stored == Stored("k", TargetState(), TARGET, "e", legacy=True, history=()), text
    assert decode("k", None, "[]", None).target == {}


def test_the_summary_is_the_state_as_ascii_metadata():
    assert summary(CLAIMED) == {"batchk8sstate": "2", "firing": "2026-01-05T07:00:00+00:00", "status": "claimed",
                                "attempts": "2", "retryat": "2026-01-05T07:05:00+00:00",
                                "claimedat": "2026-01-05T07:00:01+00:00", "claimeduntil": "2026-01-05T07:05:01+00:00"}
    assert summary(TargetState()) == {"batchk8sstate": "2", "status": "done", "attempts": "0"}


def test_a_listing_summary_reads_back_whatever_the_case_of_its_names():
    metadata = {name.upper(): value for name, value in summary(CLAIMED).items()}
    stored = from_summary("k", TARGET, metadata, "e")
    assert stored == Stored("k", TargetState(firing=CLAIMED.firing, status="claimed", attempts=2,
                                             retry_at=CLAIMED.retry_at, claimed_at=CLAIMED.claimed_at,
                                             claimed_until=CLAIMED.claimed_until),
                            TARGET, "e", legacy=False)
    assert not is_legacy(metadata) and is_legacy({}) and is_legacy({"batchk8sstate": "1"})


def test_only_our_summaries_are_trusted():
    assert from_summary("k", TARGET, {}, "e") is None
    assert from_summary("k", TARGET, {"batchk8sstate": "3", "status": "done"}, "e") is None
    assert from_summary("k", TARGET, {"batchk8sstate": "2"}, "e") is None  # no status
    assert from_summary("k", TARGET, {"batchk8sstate": "2", "status": "done", "attempts": "x"}, "e") is None
    legacy = from_summary("k", TARGET, {"batchk8sstate": "1", "status": "failed"}, "e")
    assert legacy == Stored("k", TargetState(status="failed"), TARGET, "e", legacy=True)
