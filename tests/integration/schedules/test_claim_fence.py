"""Claims fenced by time: a claim records when it expires, and its holder acts only before then."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from batchk8s.deadline import Deadline
from batchk8s.schedules import reconcile as reconcile_module
from batchk8s.schedules.reconcile import TickReport, reconcile
from batchk8s.settings import Settings
from tests.fakes.arm import FakeARM
from tests.fakes.batch import FakeClock
from tests.integration.schedules.conftest import RG
from tests.integration.schedules.test_reconcile import BERLIN_OFFICE, MON_0800, actions, results, stored

pytestmark = pytest.mark.azurite

KEY = "vmss/rg-hpc/vmss-a"


def test_a_claim_records_when_it_expires(arm: FakeARM, make_settings: Callable[..., Settings],
                                         monkeypatch: pytest.MonkeyPatch):
    arm.add_scale_set(RG, "vmss-a", {"0": "deallocated"})
    settings = make_settings(BERLIN_OFFICE)
    seen: list[dict[str, Any]] = []
    dispatch = arm.dispatch

    def look_when_acting(request: Any) -> Any:
        if request.method == "POST":
            seen.append(stored(settings, KEY))
        return dispatch(request)

    monkeypatch.setattr(arm, "dispatch", look_when_acting)
    reconcile(settings, now=MON_0800, claim_lease=timedelta(minutes=2))

    [claim] = seen
    assert claim["status"] == "claimed"
    assert datetime.fromisoformat(claim["claimedUntil"]) == MON_0800 + timedelta(minutes=2)
    assert stored(settings, KEY)["claimedUntil"] is None  # released with the outcome


def test_calls_end_with_the_claim(arm: FakeARM, make_settings: Callable[..., Settings]):
    """ARM is slow to answer the instance holding a 3 s claim: its calls end a margin before the claim
    does (not after the SDK's 300 s read timeout), the firing is recorded as failed, and nothing is sent
    once the claim could be someone else's."""
    arm.add_scale_set(RG, "vmss-a", {"0": "deallocated"})
    settings = make_settings(BERLIN_OFFICE)
    arm.inject(method="GET", path=r"/virtualMachineScaleSets/vmss-a$", status=200, delay=5.0,
               body={"error": "never read: the caller gave up first"})
    started = time.monotonic()

    report = reconcile(settings, now=MON_0800, claim_lease=timedelta(seconds=3))

    assert time.monotonic() - started < 3.0  # the claim ends at 3 s; the fence a tenth of it earlier
    [outcome] = report.outcomes
    assert outcome.result == "failed"
    assert "Azure Resource Manager did not answer in time" in (outcome.detail or "")
    assert arm.count("POST") == 0
    assert stored(settings, KEY)["status"] == "failed"


def test_a_slow_instance_cannot_act_after_a_newer_claim(arm: FakeARM, make_settings: Callable[..., Settings],
                                                        monkeypatch: pytest.MonkeyPatch):
    """Instance A claims with a 3 s lease and then stalls (a paused host) before acting. Its claim
    expires; instance B claims the same firing and acts. When A resumes it finds its claim spent and
    does not act: the scale set is started exactly once, by B, and A's late outcome is not recorded
    over B's."""
    arm.add_scale_set(RG, "vmss-a", {"0": "deallocated"})
    settings = make_settings(BERLIN_OFFICE)
    lease = timedelta(seconds=3)
    newer_done = threading.Event()
    original = reconcile_module._ClaimFence.for_acting
    main = threading.current_thread()

    def stall_first_instance(self: Any) -> Any:
        if threading.current_thread() is not main:
            newer_done.wait(timeout=30)
            time.sleep(max(0.0, self.started + self.lease.total_seconds() - self.deadline.clock()))
        return original(self)

    monkeypatch.setattr(reconcile_module._ClaimFence, "for_acting", stall_first_instance)
    first: list[TickReport] = []
    slow = threading.Thread(target=lambda: first.append(reconcile(settings, now=MON_0800, claim_lease=lease)))
    slow.start()
    while stored_or_none(settings) is None or stored(settings, KEY)["status"] != "claimed":
        time.sleep(0.05)  # A has claimed

    newer = reconcile(settings, now=MON_0800 + timedelta(seconds=4), claim_lease=lease)  # A's claim has expired
    newer_done.set()
    slow.join(timeout=30)

    assert results(newer) == {KEY: "applied"}
    [older] = first
    [outcome] = older.outcomes
    assert (outcome.result, outcome.reason) == ("failed", "claim-expiring")
    assert actions(arm) == [("start", "vmss-a")]  # B's; A sent none
    assert stored(settings, KEY)["status"] == "done"  # B's outcome stands: A's write lost on the ETag


def stored_or_none(settings: Settings) -> dict[str, Any] | None:
    from batchk8s.errors import NotFoundError

    try:
        return stored(settings, KEY)
    except NotFoundError:
        return None


def test_no_action_starts_on_a_claim_about_to_expire():
    clock = FakeClock(speed=0)
    fence = reconcile_module._ClaimFence(Deadline.after(600, clock.now), clock.now(), timedelta(seconds=100))
    acting = fence.for_acting()
    assert acting is not None and acting.remaining() == pytest.approx(90)  # a tenth of the lease kept back

    clock.advance(85)  # the listing and the claims took 85 s: 5 s left before the margin, less than the margin
    assert fence.for_acting() is None

    short_tick = reconcile_module._ClaimFence(Deadline.after(30, clock.now), clock.now(), timedelta(minutes=5))
    assert short_tick.for_acting() is not None
    assert short_tick.for_acting().remaining() == pytest.approx(30)  # the tick's own deadline comes first


def test_a_claim_too_close_to_expiry_is_recorded_and_not_acted_on(
        arm: FakeARM, make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch):
    arm.add_scale_set(RG, "vmss-a", {"0": "deallocated"})
    settings = make_settings(BERLIN_OFFICE)
    monkeypatch.setattr(reconcile_module._ClaimFence, "for_acting", lambda self: None)

    report = reconcile(settings, now=MON_0800)

    [outcome] = report.outcomes
    assert (outcome.result, outcome.reason) == ("failed", "claim-expiring")
    assert arm.count("POST") == 0
    assert stored(settings, KEY)["status"] == "failed"  # retried on a later tick with a fresh claim


def test_claims_written_before_claimed_until_existed_expire_after_the_lease():
    from batchk8s.schedules.planner import CLAIM_LEASE, TargetState

    at = datetime(2025, 6, 2, 6, 0, tzinfo=UTC)
    assert TargetState(status="claimed", claimed_at=at).claim_expires == at + CLAIM_LEASE
    assert TargetState(status="claimed", claimed_at=at, claimed_until=at + timedelta(seconds=9)).claim_expires \
        == at + timedelta(seconds=9)
