"""Operations still running at the end of a tick's budget are recorded, then reported by the next tick."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import pytest

from batchk8s import storage
from batchk8s.deadline import Deadline
from batchk8s.schedules.followup import pending_name
from batchk8s.schedules.reconcile import reconcile
from batchk8s.settings import Settings
from tests.fakes.arm import FakeARM
from tests.integration.schedules.conftest import RG
from tests.integration.schedules.test_reconcile import BERLIN_OFFICE, MON_0800, history, results

pytestmark = pytest.mark.azurite
KEY = "vmss/rg-hpc/vmss-a"


def pending_exists(settings: Settings) -> bool:
    client = storage.blob_service(settings).get_blob_client(settings.state_container, pending_name(KEY))
    return client.exists()


@pytest.mark.parametrize(("orchestration", "instances"), [
    ("Uniform", {"0": "deallocated", "1": "deallocated"}),
    ("Flexible", {"vmss-a_0": "deallocated", "vmss-a_1": "deallocated"}),
])
def test_still_running_at_the_end_of_the_budget_is_reported_by_the_next_tick(
        arm: FakeARM, make_settings: Callable[..., Settings], orchestration: str, instances: dict[str, str]):
    arm.operation_delay = 1.0
    arm.add_scale_set(RG, "vmss-a", instances, orchestration=orchestration)
    settings = make_settings(BERLIN_OFFICE)

    first = reconcile(settings, now=MON_0800, budget=Deadline.after(0.2))

    assert results(first) == {KEY: "applied"}
    assert first.outcomes[0].reason == "still-running"
    assert pending_exists(settings)
    [entry] = history(settings, KEY)
    assert (entry["result"], entry["reason"]) == ("applied", "still-running")

    quiet = reconcile(settings, now=MON_0800 + timedelta(minutes=1), budget=Deadline.after(0.2))
    assert quiet.follow_ups[0]["outcome"] == "accepted"  # still running: kept, said so, not yet in history
    assert pending_exists(settings) and len(history(settings, KEY)) == 1

    time.sleep(1.0)
    later = reconcile(settings, now=MON_0800 + timedelta(minutes=2), budget=Deadline.after(0.2))

    assert results(later) == {KEY: "up-to-date"}
    [followed] = later.follow_ups
    assert (followed["key"], followed["outcome"], followed["rule"]) == (KEY, "completed", "office-start")
    assert (followed["firing"], followed["orchestrationMode"]) == ("2025-06-02T06:00:00+00:00", orchestration)
    assert not pending_exists(settings)
    last = history(settings, KEY)[-1]
    assert (last["result"], last["reason"], last["followUp"], last["firing"], last["rule"]) == (
        "applied", "completed", True, "2025-06-02T06:00:00+00:00", "office-start")
    # Operation status reads: one per operation (one for the Uniform set, one per Flexible VM) per tick.
    polls = arm.count("GET", r"/operations/")
    assert polls >= 2 * (1 if orchestration == "Uniform" else 2)


def test_an_operation_that_fails_after_the_budget_is_reported_failed_with_arms_code(
        arm: FakeARM, make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture):
    arm.operation_delay = 0.5
    arm.add_scale_set(RG, "vmss-a", {"0": "deallocated"})
    arm.fail_next_operation(RG, "vmss-a", "OverconstrainedAllocationRequest", "no capacity in the zone")
    settings = make_settings(BERLIN_OFFICE)
    reconcile(settings, now=MON_0800, budget=Deadline.after(0.1))
    time.sleep(0.6)

    later = reconcile(settings, now=MON_0800 + timedelta(minutes=1), budget=Deadline.after(0.1))

    [followed] = later.follow_ups
    assert followed["outcome"] == "failed"
    assert followed["error"]["code"] == "OverconstrainedAllocationRequest"
    last = history(settings, KEY)[-1]
    assert (last["result"], last["reason"], last["detail"]) == (
        "failed", "failed", "OverconstrainedAllocationRequest: no capacity in the zone")
    assert "followed up vmss/rg-hpc/vmss-a (start at 2025-06-02T06:00:00+00:00, rule 'office-start'): " \
           "start rg-hpc/vmss-a: failed" in caplog.text
    assert not pending_exists(settings)


def test_a_dry_run_neither_follows_up_nor_forgets(arm: FakeARM, make_settings: Callable[..., Settings]):
    arm.operation_delay = 0.3
    arm.add_scale_set(RG, "vmss-a", {"0": "deallocated"})
    settings = make_settings(BERLIN_OFFICE)
    reconcile(settings, now=MON_0800, budget=Deadline.after(0.05))
    time.sleep(0.4)

    dry = reconcile(settings, now=MON_0800 + timedelta(minutes=1), dry_run=True)

    assert dry.follow_ups == [] and pending_exists(settings)


def test_a_status_arm_no_longer_keeps_and_a_foreign_url_are_reported_not_followed_blindly(
        arm: FakeARM, make_settings: Callable[..., Settings]):
    import json

    arm.operation_delay = 5.0
    arm.add_scale_set(RG, "vmss-a", {"0": "deallocated"})
    settings = make_settings(BERLIN_OFFICE)
    reconcile(settings, now=MON_0800, budget=Deadline.after(0.05))
    arm.operations.clear()  # ARM keeps an operation's status for a limited time

    expired = reconcile(settings, now=MON_0800 + timedelta(minutes=1), budget=Deadline.after(0.05))

    [followed] = expired.follow_ups
    assert (followed["outcome"], followed["operation"]) == ("completed", {"status": "Unknown"})
    assert "no longer kept by ARM" in followed["warnings"][0]
    assert not pending_exists(settings)

    record = {"key": KEY, "target": {"kind": "vmss", "resourceGroup": RG, "name": "vmss-a"}, "action": "start",
              "firing": "2025-06-02T06:00:00+00:00", "rule": "office-start", "started": "2025-06-02T06:00:01+00:00",
              "operations": [{"url": "https://attacker.example/operations/1", "instances": ["0"]}]}
    storage.write_blob_if_match(settings, settings.state_container, pending_name(KEY), json.dumps(record), None)

    foreign = reconcile(settings, now=MON_0800 + timedelta(minutes=2), budget=Deadline.after(0.05))

    [followed] = foreign.follow_ups
    assert (followed["outcome"], followed["error"]["code"]) == ("failed", "UntrustedOperationUrl")
    assert history(settings, KEY)[-1]["result"] == "failed"
