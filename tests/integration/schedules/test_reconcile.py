"""Reconcile ticks end to end: real compute/Batch SDK clients against the fakes, state blobs in Azurite."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from batchk8s import storage
from batchk8s.errors import ConfigError
from batchk8s.schedules import reconcile as reconcile_module
from batchk8s.schedules.history import PREFIX as HISTORY_PREFIX
from batchk8s.schedules.history import parse_lines
from batchk8s.schedules.planner import TargetState
from batchk8s.schedules.reconcile import TickReport, reconcile
from batchk8s.schedules.state import StateStore, Stored, blob_name
from batchk8s.settings import Settings
from tests.fakes.arm import FakeARM
from tests.fakes.batch import FakeBatch
from tests.integration.schedules.conftest import RG

pytestmark = pytest.mark.azurite

BERLIN_OFFICE = [
    {"name": "office-start", "schedule": "0 0 8 * * *", "timeZone": "Europe/Berlin", "action": "start",
     "targets": [{"name": "vmss-a"}]},
    {"name": "office-stop", "schedule": "0 0 19 * * *", "timeZone": "Europe/Berlin", "action": "deallocate",
     "targets": [{"name": "vmss-a"}]},
]
# 2025-06-02 is a Monday; Berlin is UTC+2 in June: 08:00 local = 06:00 UTC, 19:00 local = 17:00 UTC.
MON_0800 = datetime(2025, 6, 2, 6, 0, tzinfo=UTC)
MON_1900 = datetime(2025, 6, 2, 17, 0, tzinfo=UTC)


def results(report: TickReport) -> dict[str, str]:
    return {outcome.decision.target.key: outcome.result for outcome in report.outcomes}


def stored(settings: Settings, key: str) -> dict[str, Any]:
    return json.loads(storage.read_blob_text(settings, settings.state_container, blob_name(key)))


def history(settings: Settings, key: str) -> list[dict[str, Any]]:
    """The target's history lines in the order they were appended (months in order)."""
    client = storage.blob_service(settings).get_container_client(settings.state_container)
    names = sorted(blob.name for blob in client.list_blobs(name_starts_with=f"{HISTORY_PREFIX}{key}/"))
    entries = [entry for name in names
               for entry in parse_lines(storage.read_blob_text(settings, settings.state_container, name))]
    assert all(entry["key"] == key for entry in entries)
    return entries


def actions(arm: FakeARM) -> list[tuple[str, str]]:
    return [(action, name) for action, _, name, _ in arm.actions]


def office_fleet(arm: FakeARM, make_settings: Callable[..., Settings], count: int) -> tuple[list[str], Settings]:
    """`count` deallocated scale sets under the Berlin office-hours rules."""
    names = [f"vmss-{i}" for i in range(count)]
    for name in names:
        arm.add_scale_set(RG, name, {"0": "deallocated"})
    return names, make_settings([{**rule, "targets": [{"name": n} for n in names]} for rule in BERLIN_OFFICE])


def test_a_firing_is_applied_once_and_a_manual_change_is_left_alone_until_the_next(
        arm: FakeARM, make_settings: Callable[..., Settings]):
    arm.add_scale_set(RG, "vmss-a", {"0": "deallocated", "1": "deallocated"})
    settings = make_settings(BERLIN_OFFICE)

    first = reconcile(settings, now=MON_0800 + timedelta(seconds=5))
    assert results(first) == {"vmss/rg-hpc/vmss-a": "applied"}
    assert actions(arm) == [("start", "vmss-a")]
    state = stored(settings, "vmss/rg-hpc/vmss-a")
    assert (state["firing"], state["status"], state["rule"]) == ("2025-06-02T06:00:00+00:00", "done", "office-start")
    assert "history" not in state and state["schema"] == 2
    [entry] = history(settings, "vmss/rg-hpc/vmss-a")
    assert (entry["result"], entry["reason"], entry["target"]) == (
        "applied", "completed", {"kind": "vmss", "resourceGroup": RG, "name": "vmss-a"})

    # Every later tick until 19:00 leaves the scale set alone, whatever someone did to it meanwhile.
    for minutes in (1, 2, 90, 600):
        assert results(reconcile(settings, now=MON_0800 + timedelta(minutes=minutes))) == {
            "vmss/rg-hpc/vmss-a": "up-to-date"}
    assert len(arm.actions) == 1
    assert results(reconcile(settings, now=MON_1900)) == {"vmss/rg-hpc/vmss-a": "applied"}
    assert actions(arm) == [("start", "vmss-a"), ("deallocate", "vmss-a")]


def test_a_flexible_scale_set_is_started_and_deallocated_vm_by_vm(
        arm: FakeARM, make_settings: Callable[..., Settings]):
    arm.add_scale_set(RG, "vmss-a", {"vmss-a_0": "deallocated", "vmss-a_1": "running"}, orchestration="Flexible")
    settings = make_settings(BERLIN_OFFICE)

    assert results(reconcile(settings, now=MON_0800)) == {"vmss/rg-hpc/vmss-a": "applied"}
    assert arm.actions == [("start", RG, "vmss-a", ["vmss-a_0"])]
    assert arm.count("POST", r"/virtualMachineScaleSets/") == 0  # Flexible: no set-level calls
    assert results(reconcile(settings, now=MON_1900)) == {"vmss/rg-hpc/vmss-a": "applied"}
    assert sorted(arm.actions[1:]) == [("deallocate", RG, "vmss-a", ["vmss-a_0"]),
                                       ("deallocate", RG, "vmss-a", ["vmss-a_1"])]
    assert arm.states(RG, "vmss-a") == {"vmss-a_0": "deallocated", "vmss-a_1": "deallocated"}
    assert [(e["result"], e["reason"]) for e in history(settings, "vmss/rg-hpc/vmss-a")] == [
        ("applied", "completed"), ("applied", "completed")]


def test_catch_up_across_one_firing_applies_it_once(arm: FakeARM, make_settings: Callable[..., Settings]):
    arm.add_scale_set(RG, "vmss-a", {"0": "deallocated"})
    settings = make_settings(BERLIN_OFFICE)
    reconcile(settings, now=MON_0800)
    # Down from 08:01 to 21:30: the 19:00 deallocate is applied when the app is back, then not again.
    back = reconcile(settings, now=MON_1900 + timedelta(hours=2, minutes=30))
    assert results(back) == {"vmss/rg-hpc/vmss-a": "applied"}
    assert back.outcomes[0].decision.missed_total == 0
    assert results(reconcile(settings, now=MON_1900 + timedelta(hours=2, minutes=31))) == {
        "vmss/rg-hpc/vmss-a": "up-to-date"}
    assert actions(arm) == [("start", "vmss-a"), ("deallocate", "vmss-a")]


def test_catch_up_across_several_firings_applies_the_newest_and_records_the_others_as_missed(
        arm: FakeARM, make_settings: Callable[..., Settings]):
    arm.add_scale_set(RG, "vmss-a", {"0": "deallocated"})
    settings = make_settings(BERLIN_OFFICE)
    reconcile(settings, now=MON_0800)
    back = reconcile(settings, now=MON_1900 + timedelta(days=2, hours=1))  # Wednesday 20:00 local
    assert results(back) == {"vmss/rg-hpc/vmss-a": "applied"}
    assert actions(arm) == [("start", "vmss-a"), ("deallocate", "vmss-a")]
    assert [(e["result"], e.get("reason"), e["local"]) for e in history(settings, "vmss/rg-hpc/vmss-a")] == [
        ("applied", "completed", "2025-06-02T08:00:00+02:00"),
        ("skipped", "missed", "2025-06-02T19:00:00+02:00"),
        ("skipped", "missed", "2025-06-03T08:00:00+02:00"),
        ("skipped", "missed", "2025-06-03T19:00:00+02:00"),
        ("skipped", "missed", "2025-06-04T08:00:00+02:00"),
        ("applied", "completed", "2025-06-04T19:00:00+02:00"),
    ]


def test_two_reconcilers_racing_on_the_same_tick_act_exactly_once_per_target(
        arm: FakeARM, make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch):
    names, settings = office_fleet(arm, make_settings, 6)
    # Both instances finish reading the state before either writes: each sees the same blobs (or none).
    barrier = threading.Barrier(2, timeout=30)
    original = StateStore.load
    waited: list[bool] = []

    def load_then_wait(self: StateStore, targets: Any) -> Any:
        loaded = original(self, targets)
        waited.append(barrier.wait() is not None)
        return loaded

    monkeypatch.setattr(StateStore, "load", load_then_wait)

    def race(now: datetime, settings: Settings = settings) -> dict[str, list[str]]:
        waited.clear()
        reports: list[TickReport] = []
        threads = [threading.Thread(target=lambda: reports.append(reconcile(settings, now=now))) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert len(reports) == 2 and waited == [True, True]  # both read before either wrote
        return {name: sorted(results(r)[f"vmss/rg-hpc/{name}"] for r in reports) for name in names}

    first = race(MON_0800)  # no state blobs yet: the claims race on "create if missing"
    assert all(outcome == ["applied", "lost-race"] for outcome in first.values()), first
    second = race(MON_1900)  # existing blobs: the claims race on the ETag both instances listed
    assert all(outcome == ["applied", "lost-race"] for outcome in second.values()), second
    assert sorted(actions(arm)) == sorted([("start", n) for n in names] + [("deallocate", n) for n in names])
    # A recorded skip races the same way: one instance records the hold, the other records nothing.
    held = make_settings({"rules": [{**rule, "targets": [{"name": n} for n in names]} for rule in BERLIN_OFFICE],
                          "holds": [{"name": n, "until": "2099-01-01T00:00:00Z"} for n in names]})
    third = race(MON_0800 + timedelta(days=1), held)
    assert all(outcome == ["lost-race", "skipped"] for outcome in third.values()), third
    for name in names:  # the losers appended nothing: one line per firing
        assert [(e["result"], e["reason"]) for e in history(settings, f"vmss/rg-hpc/{name}")] == [
            ("applied", "completed"), ("applied", "completed"), ("skipped", "hold")]


def test_tag_selectors_pick_the_tagged_scale_sets(arm: FakeARM, make_settings: Callable[..., Settings]):
    arm.add_scale_set(RG, "tagged-1", {"0": "running"}, tags={"Schedule": "nightly"})
    arm.add_scale_set("rg-other", "tagged-2", {"0": "running"}, tags={"schedule": "nightly"})
    arm.add_scale_set(RG, "untagged", {"0": "running"})
    arm.add_scale_set(RG, "other-value", {"0": "running"}, tags={"schedule": "Nightly"})
    everywhere = [{"schedule": "0 0 19 * * *", "timeZone": "Europe/Berlin", "action": "deallocate",
                   "targets": [{"tag": "schedule", "value": "nightly"}]}]
    report = reconcile(make_settings(everywhere), now=MON_1900)
    assert results(report) == {"vmss/rg-hpc/tagged-1": "applied", "vmss/rg-other/tagged-2": "applied"}
    assert report.requests["armListings"] == 1  # one subscription-wide listing

    arm.actions.clear()
    scoped = [{"schedule": "0 0 20 * * *", "timeZone": "Europe/Berlin", "action": "start",
               "targets": [{"tag": "schedule", "value": "nightly", "resourceGroup": "rg-other"}]}]
    report = reconcile(make_settings(scoped), now=MON_1900 + timedelta(hours=1))
    assert results(report) == {"vmss/rg-other/tagged-2": "applied"}
    assert actions(arm) == [("start", "tagged-2")]


def test_holds_from_tags_and_from_the_document_skip_and_say_so(arm: FakeARM, make_settings: Callable[..., Settings]):
    until = (MON_1900 + timedelta(hours=3)).isoformat()
    arm.add_scale_set(RG, "held-by-tag", {"0": "running"}, tags={"batchk8s-hold-until": until})
    arm.add_scale_set(RG, "hold-expired", {"0": "running"}, tags={"batchk8s-hold-until": "2025-06-01T00:00:00Z"})
    arm.add_scale_set(RG, "held-by-document", {"0": "running"})
    arm.add_scale_set(RG, "free", {"0": "running"})
    document = {"rules": [{"schedule": "0 0 19 * * *", "timeZone": "Europe/Berlin", "action": "deallocate",
                           "targets": [{"name": n} for n in ("held-by-tag", "hold-expired", "held-by-document",
                                                             "free")]}],
                "holds": [{"name": "held-by-document", "until": until, "reason": "month-end run"}]}
    settings = make_settings(document)
    report = reconcile(settings, now=MON_1900)
    assert results(report) == {"vmss/rg-hpc/held-by-tag": "skipped", "vmss/rg-hpc/hold-expired": "applied",
                               "vmss/rg-hpc/held-by-document": "skipped", "vmss/rg-hpc/free": "applied"}
    assert sorted(name for _, name in actions(arm)) == ["free", "hold-expired"]
    entry = history(settings, "vmss/rg-hpc/held-by-document")[-1]
    assert (entry["result"], entry["reason"]) == ("skipped", "hold")
    assert "month-end run" in entry["detail"] and "$.holds[0]" in entry["detail"]
    assert "tag batchk8s-hold-until" in history(settings, "vmss/rg-hpc/held-by-tag")[-1]["detail"]
    # The skip is recorded once; after the hold ends nothing happens until the next firing.
    later = reconcile(settings, now=MON_1900 + timedelta(hours=4))
    assert set(results(later).values()) == {"up-to-date"}
    assert len(history(settings, "vmss/rg-hpc/held-by-tag")) == 1


def test_one_failing_target_does_not_stop_the_others_and_is_retried_with_backoff(
        arm: FakeARM, make_settings: Callable[..., Settings]):
    arm.add_scale_set(RG, "fails-once", {"0": "running"})
    arm.add_scale_set(RG, "fine", {"0": "running"})
    arm.add_scale_set(RG, "already", {"0": "deallocated"})
    arm.fail_next_operation(RG, "fails-once", "AllocationFailed", "capacity")
    arm.add_resource_group("rg-empty")
    document = [{"schedule": "0 0 19 * * *", "timeZone": "Europe/Berlin", "action": "deallocate",
                 "targets": [{"name": "fails-once"}, {"name": "fine"}, {"name": "missing"}, {"name": "already"}]}]
    arm.operation_delay = 0.0
    settings = make_settings(document)
    first = reconcile(settings, now=MON_1900)
    assert results(first)["vmss/rg-hpc/fine"] == "applied"
    assert results(first)["vmss/rg-hpc/missing"] == "failed"
    assert results(first)["vmss/rg-hpc/already"] == "skipped"
    already = history(settings, "vmss/rg-hpc/already")[-1]
    assert already["reason"] == "already-in-state"
    missing = stored(settings, "vmss/rg-hpc/missing")
    assert (missing["status"], missing["attempts"], history(settings, "vmss/rg-hpc/missing")[-1]["reason"]) == (
        "failed", 1, "not-found")
    assert missing["retryAt"] == (MON_1900 + timedelta(minutes=1)).isoformat()
    # fails-once: ARM accepted the operation, which then ended Failed: the tick followed it and says so.
    assert results(first)["vmss/rg-hpc/fails-once"] == "failed"
    failed = history(settings, "vmss/rg-hpc/fails-once")[-1]
    assert (failed["result"], failed["detail"]) == ("failed", "AllocationFailed: capacity")
    assert stored(settings, "vmss/rg-hpc/fails-once")["status"] == "failed"
    assert results(reconcile(settings, now=MON_1900 + timedelta(seconds=30)))["vmss/rg-hpc/missing"] == \
        "waiting-retry"
    arm.add_scale_set(RG, "missing", {"0": "running"})  # created meanwhile: the retry succeeds
    retried = reconcile(settings, now=MON_1900 + timedelta(minutes=1))
    assert results(retried)["vmss/rg-hpc/missing"] == "applied"
    assert results(retried)["vmss/rg-hpc/fails-once"] == "applied"  # retried too, and this time it worked
    assert results(retried)["vmss/rg-hpc/fine"] == "up-to-date"
    assert stored(settings, "vmss/rg-hpc/missing")["attempts"] == 2


def test_a_failing_request_is_given_up_after_the_last_attempt(arm: FakeARM, make_settings: Callable[..., Settings]):
    settings = make_settings([{"schedule": "0 0 19 * * *", "timeZone": "Europe/Berlin", "action": "deallocate",
                               "targets": [{"name": "gone"}]}])
    arm.add_resource_group(RG)
    now = MON_1900
    for attempt in range(1, 6):
        assert results(reconcile(settings, now=now)) == {"vmss/rg-hpc/gone": "failed"}, attempt
        now += timedelta(minutes=2 ** (attempt - 1))
    assert results(reconcile(settings, now=now + timedelta(hours=1))) == {"vmss/rg-hpc/gone": "up-to-date"}
    last = history(settings, "vmss/rg-hpc/gone")[-1]
    assert "left for the next firing" in last["detail"] and last["attempt"] == 5


def test_a_scale_set_selected_twice_with_different_actions_at_once_is_a_recorded_conflict(
        arm: FakeARM, make_settings: Callable[..., Settings]):
    arm.add_scale_set(RG, "vmss-a", {"0": "running"}, tags={"team": "x"})
    document = [{"name": "direct", "schedule": "0 0 19 * * *", "timeZone": "Europe/Berlin", "action": "start",
                 "targets": [{"name": "vmss-a"}]},
                {"name": "by-tag", "schedule": "0 0 19 * * *", "timeZone": "Europe/Berlin", "action": "deallocate",
                 "targets": [{"tag": "team", "value": "x"}]}]
    settings = make_settings(document)
    report = reconcile(settings, now=MON_1900)
    assert results(report) == {"vmss/rg-hpc/vmss-a": "failed"}
    assert report.outcomes[0].reason == "conflict" and arm.actions == []
    assert results(reconcile(settings, now=MON_1900 + timedelta(minutes=5))) == {"vmss/rg-hpc/vmss-a": "up-to-date"}


def test_resize_rules_scale_batch_pools(batch: FakeBatch, env: dict[str, str], make_settings: Callable[..., Settings]):
    from azure.batch import models as m

    from batchk8s.batch.client import batch_client
    from batchk8s.batch.pools import resize_pool

    document = {"rules": [
        {"name": "night", "schedule": "0 0 20 * * *", "action": "resize", "dedicated": 0, "spot": 0,
         "targets": [{"pool": "k8s-pool"}, {"pool": "absent"}, {"pool": "held"}]},
        {"name": "morning", "schedule": "0 0 7 * * *", "action": "resize", "dedicated": 2, "spot": 1,
         "targets": [{"pool": "k8s-pool"}]}],
        "holds": [{"pool": "held", "until": "2099-01-01T00:00:00Z"}]}
    settings = make_settings(document, AZURE_BATCH_ACCOUNT_URL=batch.url)
    for pool_id in ("k8s-pool", "held"):
        batch_client(settings).create_pool(m.BatchPoolCreateOptions(
            id=pool_id, vm_size="STANDARD_D2_V3", target_dedicated_nodes=2,
            virtual_machine_configuration=m.VirtualMachineConfiguration(
                image_reference=m.BatchVmImageReference(publisher="canonical", offer="ubuntu-24_04-lts", sku="server",
                                                        version="latest"),
                node_agent_sku_id="batch.node.ubuntu 24.04")))
    night = datetime(2025, 6, 2, 20, 0, tzinfo=UTC)
    report = reconcile(settings, now=night)
    assert results(report) == {"pool/k8s-pool": "applied", "pool/absent": "failed", "pool/held": "skipped"}
    assert batch.pools["k8s-pool"]["target"] == (0, 0) and batch.pools["held"]["target"] == (2, 0)
    morning = reconcile(settings, now=night + timedelta(hours=11))
    assert results(morning)["pool/k8s-pool"] == "applied"
    assert batch.pools["k8s-pool"]["target"] == (2, 1)
    # Already at the wanted size (someone resized by hand before the firing): skipped, no resize sent.
    resize_pool(settings, "k8s-pool", {"dedicatedNodes": 0, "spotNodes": 0})
    resizes = batch.count("POST", r"/pools/k8s-pool/resize")
    again = reconcile(settings, now=night + timedelta(days=1))
    assert results(again)["pool/k8s-pool"] == "skipped" and again.outcomes[0].reason == "already-in-state"
    assert batch.count("POST", r"/pools/k8s-pool/resize") == resizes


def test_dry_run_decides_and_reports_but_changes_nothing(arm: FakeARM, make_settings: Callable[..., Settings]):
    arm.add_scale_set(RG, "vmss-a", {"0": "deallocated"})
    settings = make_settings(BERLIN_OFFICE)
    report = reconcile(settings, now=MON_0800, dry_run=True)
    assert results(report) == {"vmss/rg-hpc/vmss-a": "dry-run"}
    assert arm.actions == [] and report.requests.get("write", 0) == 0
    assert StateStore(settings).list_blobs() == {}


def test_an_invalid_document_is_refused_before_anything_is_read_or_changed(
        arm: FakeARM, make_settings: Callable[..., Settings]):
    arm.add_scale_set(RG, "vmss-a", {"0": "deallocated"})
    settings = make_settings([{**BERLIN_OFFICE[0]}, {**BERLIN_OFFICE[1], "timeZone": "Berlin"}])
    with pytest.raises(ConfigError) as caught:
        reconcile(settings, now=MON_0800)
    assert [d["field"] for d in caught.value.details] == ["$[1].timeZone"]
    assert arm.log == [] and StateStore(settings).list_blobs() == {}


class AzuriteLog:
    """Every HTTP request the storage SDK sends to Azurite (the fakes' requests are left out)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        import requests

        self.requests: list[tuple[str, str]] = []
        original = requests.Session.send

        def send(session: requests.Session, request: requests.PreparedRequest, **kwargs: Any) -> Any:
            if "/devstoreaccount1" in (request.url or ""):
                self.requests.append((request.method or "", request.url or ""))
            return original(session, request, **kwargs)

        monkeypatch.setattr(requests.Session, "send", send)

    def reads(self) -> list[str]:
        """GET and HEAD requests for state and history: a listing is `GET ...?comp=list`, a blob read a
        plain GET. Left out: the access policy read once when the first write creates the container."""
        return ["list" if "comp=list" in url else "read" for method, url in self.requests
                if method in ("GET", "HEAD") and "comp=acl" not in url]


def state_requests(report: TickReport) -> dict[str, int]:
    return {kind: count for kind, count in report.requests.items() if kind != "armListings"}


def test_a_tick_reads_state_with_one_listing_cold_or_warm_nothing_due_or_all_due(
        arm: FakeARM, make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch):
    _, settings = office_fleet(arm, make_settings, 5)
    log = AzuriteLog(monkeypatch)

    def tick(now: datetime) -> TickReport:
        log.requests.clear()
        storage.clear_cache()  # a cold instance: a new client, nothing remembered (nothing is, either way)
        report = reconcile(settings, now=now)
        assert log.reads() == ["list"], log.requests  # the tick's only read, whatever is due
        return report

    first = tick(MON_0800)  # no blobs yet, every target due
    assert set(results(first).values()) == {"applied"}
    assert state_requests(first) == {"list": 1, "write": 10, "append": 5}  # claim + outcome, one append each
    quiet = tick(MON_0800 + timedelta(minutes=30))
    assert set(results(quiet).values()) == {"up-to-date"} and state_requests(quiet) == {"list": 1}
    due = tick(MON_1900)  # existing blobs, every target due
    assert set(results(due).values()) == {"applied"}
    assert state_requests(due) == {"list": 1, "write": 10, "append": 5}
    log.requests.clear()
    again = reconcile(settings, now=MON_0800 + timedelta(days=1))  # warm: same client, open connections
    assert set(results(again).values()) == {"applied"} and log.reads() == ["list"]
    assert [e["local"] for e in history(settings, "vmss/rg-hpc/vmss-0")] == [
        "2025-06-02T08:00:00+02:00", "2025-06-02T19:00:00+02:00", "2025-06-03T08:00:00+02:00"]


def test_a_blob_changed_since_the_listing_loses_the_claim_and_records_nothing(
        arm: FakeARM, make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch):
    arm.add_scale_set(RG, "vmss-a", {"0": "deallocated"})
    settings = make_settings(BERLIN_OFFICE)
    reconcile(settings, now=MON_0800)
    original = StateStore.load

    def load_then_change(self: StateStore, targets: Any) -> Any:
        loaded = original(self, targets)  # someone else writes after this instance listed
        StateStore(settings).write(loaded["vmss/rg-hpc/vmss-a"], TargetState(firing=MON_1900), MON_1900)
        return loaded

    monkeypatch.setattr(StateStore, "load", load_then_change)
    report = reconcile(settings, now=MON_1900)
    assert results(report) == {"vmss/rg-hpc/vmss-a": "lost-race"}
    assert actions(arm) == [("start", "vmss-a")] and len(history(settings, "vmss/rg-hpc/vmss-a")) == 1


def test_state_blobs_with_history_inside_keep_working_and_move_it_on_their_next_write(
        arm: FakeARM, make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch):
    from batchk8s.schedules.service import history as history_view

    arm.add_scale_set(RG, "old", {"0": "deallocated"})
    arm.add_scale_set(RG, "bare", {"0": "deallocated"})
    settings = make_settings([{**rule, "targets": [{"name": "old"}, {"name": "bare"}]} for rule in BERLIN_OFFICE])
    earlier = [{"at": "2025-05-30T17:00:01+00:00", "firing": "2025-05-30T17:00:00+00:00", "rule": "office-stop",
                "action": "deallocate", "result": "applied", "reason": "accepted"}]
    # As the previous version wrote them: schema 1 with history inside and the summary as metadata ...
    old = {"schema": 1, "key": "vmss/rg-hpc/old", "target": {"kind": "vmss", "resourceGroup": RG, "name": "old"},
           "firing": "2025-05-30T17:00:00+00:00", "status": "done", "attempts": 0, "history": earlier}
    storage.write_blob_if_match(settings, settings.state_container, blob_name("vmss/rg-hpc/old"), json.dumps(old),
                                None, metadata={"batchk8sstate": "1", "firing": old["firing"], "status": "done",
                                                "attempts": "0"})
    # ... and one without any summary (written before summaries, or by hand): read in full to decide.
    storage.write_blob_if_match(settings, settings.state_container, blob_name("vmss/rg-hpc/bare"),
                                json.dumps({**old, "key": "vmss/rg-hpc/bare", "history": []}), None)
    view = history_view(settings, 10)
    assert [(e["key"], e["rule"]) for e in view["entries"]] == [("vmss/rg-hpc/old", "office-stop")]

    log = AzuriteLog(monkeypatch)
    due = reconcile(settings, now=MON_0800)
    assert results(due) == {"vmss/rg-hpc/old": "applied", "vmss/rg-hpc/bare": "applied"}
    assert due.outcomes[0].decision.missed_total == 4  # decided from the schema-1 summary: 31 May, 1-2 June
    # One read each, once: the summary-less blob to decide, the schema-1 blob to move its history.
    assert sorted(log.reads()) == ["list", "read", "read"]
    assert all("history" not in stored(settings, f"vmss/rg-hpc/{n}") for n in ("old", "bare"))
    assert [(e["result"], e.get("reason"), e["firing"]) for e in history(settings, "vmss/rg-hpc/old")][::5] == [
        ("applied", "accepted", "2025-05-30T17:00:00+00:00"), ("applied", "completed", "2025-06-02T06:00:00+00:00")]
    assert len(history(settings, "vmss/rg-hpc/old")) == 6  # moved entry, 4 missed, applied
    log.requests.clear()
    reconcile(settings, now=MON_1900)
    assert log.reads() == ["list"]  # migrated: from now on the listing alone
    view = history_view(settings, 3)
    assert {(e["key"], e["firing"]) for e in view["entries"][:2]} == {
        ("vmss/rg-hpc/old", MON_1900.isoformat()), ("vmss/rg-hpc/bare", MON_1900.isoformat())}
    assert view["requests"] == {"list": 1, "read": 2}  # no legacy state blob is left to read


def test_the_history_view_reads_each_targets_newest_months_until_the_limit(
        arm: FakeARM, make_settings: Callable[..., Settings]):
    from batchk8s.schedules.service import history as history_view

    arm.add_scale_set(RG, "vmss-a", {"0": "deallocated"})
    settings = make_settings([{"name": "daily", "schedule": "0 0 8 * * *", "timeZone": "Europe/Berlin",
                               "action": "start", "targets": [{"name": "vmss-a"}]}])
    days = [datetime(2025, 6, 29, 6, 0, tzinfo=UTC) + timedelta(days=n) for n in range(4)]  # 29, 30 June; 1, 2 July
    for day in days:
        assert results(reconcile(settings, now=day)) in ({"vmss/rg-hpc/vmss-a": "applied"},
                                                         {"vmss/rg-hpc/vmss-a": "skipped"})
    two = history_view(settings, 2)
    assert [e["firing"] for e in two["entries"]] == [days[3].isoformat(), days[2].isoformat()]
    assert two["requests"] == {"list": 1, "read": 1} and two["total"] == 2  # July alone holds enough
    three = history_view(settings, 3)
    assert [e["firing"] for e in three["entries"]] == [d.isoformat() for d in reversed(days[1:])]
    assert three["requests"] == {"list": 1, "read": 2} and three["total"] == 4
    assert {e["key"] for e in three["entries"]} == {"vmss/rg-hpc/vmss-a"}


def test_a_claim_names_the_process_that_made_it(arm: FakeARM, make_settings: Callable[..., Settings],
                                                monkeypatch: pytest.MonkeyPatch):
    """While an action runs its claim says which instance holds it: one id per process, another in another."""
    arm.add_scale_set(RG, "vmss-a", {"0": "deallocated"})
    settings = make_settings(BERLIN_OFFICE)
    seen: list[Any] = []
    dispatch = arm.dispatch

    def look_when_acting(request: Any) -> Any:
        if request.method == "POST":
            seen.append(stored(settings, "vmss/rg-hpc/vmss-a")["claimedBy"])
        return dispatch(request)

    monkeypatch.setattr(arm, "dispatch", look_when_acting)
    reconcile(settings, now=MON_0800)
    reconcile(settings, now=MON_1900)
    ours = reconcile_module.instance_id()
    assert ours.startswith(f"{socket.gethostname()}:{os.getpid()}:")
    assert seen == [ours, ours]
    assert stored(settings, "vmss/rg-hpc/vmss-a")["claimedBy"] is None  # released once done
    other = subprocess.run([sys.executable, "-c", "from batchk8s.schedules.reconcile import instance_id as i; "
                            "print(i() == i(), i())"], capture_output=True, text=True, check=True, timeout=60)
    stable, theirs = other.stdout.split()
    assert stable == "True" and theirs != ours and theirs.split(":")[0] == ours.split(":")[0]


def test_load_pairs_each_target_with_its_state_and_description(make_settings: Callable[..., Settings]):
    """One listing: a target with a blob gets the state its summary holds, one without an empty state;
    both carry the description they were asked for, not the one stored with the blob."""
    a = {"kind": "vmss", "resourceGroup": RG, "name": "vmss-a"}
    b = {"kind": "vmss", "resourceGroup": RG, "name": "vmss-b"}
    store = StateStore(make_settings({"rules": []}))
    written = store.write(Stored("a", TargetState(), {"stale": "description"}),
                          TargetState(firing=MON_0800, status="done", attempts=1), MON_0800)

    loaded = store.load({"a": a, "b": b})

    listed_etag = written.etag.strip('"')  # listings give ETags bare, writes quoted
    assert loaded["a"] == Stored("a", TargetState(firing=MON_0800, status="done", attempts=1), a, listed_etag)
    assert loaded["b"] == Stored("b", TargetState(), b)
    assert store.requests["list"] == 1 and store.requests["read"] == 0  # summaries only, no reads


def test_a_blob_gone_between_listing_and_reading_loads_as_empty(make_settings: Callable[..., Settings],
                                                                monkeypatch: pytest.MonkeyPatch):
    settings = make_settings({"rules": []})
    target = {"kind": "vmss", "resourceGroup": RG, "name": "vmss-c"}
    storage.write_blob_if_match(settings, settings.state_container, blob_name("c"), "{}", None, metadata={})
    store = StateStore(settings)
    monkeypatch.setattr(store, "read", lambda key, described: None)  # deleted after the listing

    assert store.load({"c": target}) == {"c": Stored("c", TargetState(), target)}
