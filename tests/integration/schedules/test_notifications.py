"""Webhook notifications of timer runs, posted to a local HTTPS receiver trusted through the fakes' test CA."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import timedelta

import pytest

from batchk8s import notify
from batchk8s.schedules.reconcile import reconcile
from batchk8s.settings import Settings
from tests.fakes.aad import FakeAAD
from tests.fakes.arm import FakeARM
from tests.fakes.https import FakeService
from tests.fakes.webhook import PATH, FakeWebhook
from tests.integration.schedules.conftest import RG
from tests.integration.schedules.test_reconcile import MON_1900, history, results

pytestmark = pytest.mark.azurite


@pytest.fixture
def webhook(fake_service: Callable[..., FakeService]) -> FakeWebhook:
    return fake_service(FakeWebhook)  # type: ignore[return-value]


def evening(arm: FakeARM) -> dict:
    """A deallocate at 19:00 Berlin on four scale sets: one fails after acceptance, one is held, two work."""
    arm.add_scale_set(RG, "fails", {"0": "running"})
    arm.add_scale_set(RG, "held", {"0": "running"})
    arm.add_scale_set(RG, "fine", {"0": "running"})
    arm.add_scale_set(RG, "idle", {"0": "deallocated"})
    arm.fail_next_operation(RG, "fails", "AllocationFailed", "no capacity")
    until = (MON_1900 + timedelta(hours=3)).isoformat()
    return {"rules": [{"name": "evening", "schedule": "0 0 19 * * *", "timeZone": "Europe/Berlin",
                       "action": "deallocate", "targets": [{"name": n} for n in ("fails", "held", "fine", "idle")]}],
            "holds": [{"name": "held", "until": until, "reason": "month-end run"}]}


def test_a_tick_posts_its_problems_once_as_generic_json(arm: FakeARM, aad: FakeAAD, webhook: FakeWebhook,
                                                        make_settings: Callable[..., Settings]):
    settings = make_settings(evening(arm), BATCHK8S_WEBHOOK_URL=webhook.hook_url)

    report = reconcile(settings, now=MON_1900)

    assert results(report)["vmss/rg-hpc/fails"] == "failed"
    [body] = webhook.received
    assert body["summary"] == "batchk8s schedules_reconcile: 1 failed, 1 held"
    assert {e["key"]: (e["kind"], e["detail"]) for e in body["events"]} == {
        "vmss/rg-hpc/fails": ("failed", "AllocationFailed: no capacity"),
        "vmss/rg-hpc/held": ("held", body["events"][1]["detail"])}
    assert "month-end run" in body["events"][1]["detail"]
    assert body["events"][0]["firing"] == "2025-06-02T17:00:00+00:00" and body["events"][0]["rule"] == "evening"
    sent = json.dumps(body)
    assert aad.client_secret not in sent and PATH not in sent  # no secret, not even the webhook's own


def test_every_action_in_slack_format_when_asked(arm: FakeARM, webhook: FakeWebhook,
                                                 make_settings: Callable[..., Settings]):
    settings = make_settings(evening(arm), BATCHK8S_WEBHOOK_URL=webhook.hook_url, BATCHK8S_WEBHOOK_FORMAT="slack",
                             BATCHK8S_WEBHOOK_EVENTS="all")

    reconcile(settings, now=MON_1900)

    [body] = webhook.received
    lines = body["text"].splitlines()
    assert lines[0] == "*batchk8s schedules_reconcile: 1 applied, 1 failed, 1 held, 1 skipped*"
    assert "• scale set rg-hpc/fine: applied (deallocate, rule 'evening'): " not in lines  # completed: no detail
    assert "• scale set rg-hpc/fine: applied (deallocate, rule 'evening')" in lines
    assert "• scale set rg-hpc/idle: skipped (deallocate, rule 'evening'): every instance is already deallocated " \
           "or deallocating" in lines


def test_a_quiet_tick_posts_nothing(arm: FakeARM, webhook: FakeWebhook, make_settings: Callable[..., Settings]):
    settings = make_settings(evening(arm), BATCHK8S_WEBHOOK_URL=webhook.hook_url)
    reconcile(settings, now=MON_1900)

    reconcile(settings, now=MON_1900 + timedelta(minutes=1))  # nothing due: nothing to say

    assert len(webhook.received) == 1


def test_a_failing_webhook_is_retried_a_bounded_number_of_times_and_never_fails_the_tick(
        arm: FakeARM, webhook: FakeWebhook, make_settings: Callable[..., Settings],
        caplog: pytest.LogCaptureFixture):
    webhook.inject(method="POST", status=503, headers={"Retry-After": "0"}, times=10)
    settings = make_settings(evening(arm), BATCHK8S_WEBHOOK_URL=webhook.hook_url)

    report = reconcile(settings, now=MON_1900)

    assert results(report) == {"vmss/rg-hpc/fails": "failed", "vmss/rg-hpc/held": "skipped",
                               "vmss/rg-hpc/fine": "applied", "vmss/rg-hpc/idle": "skipped"}
    assert webhook.count("POST") == notify.ATTEMPTS and webhook.received == []
    warning = "the webhook at 127.0.0.1 was not notified: it answered 503"
    assert warning in caplog.text and PATH not in caplog.text
    for name in ("fails", "held"):  # the targets the post was about say so in their history
        last = history(settings, f"vmss/rg-hpc/{name}")[-1]
        assert (last["result"], last["reason"], last["detail"]) == ("warning", "webhook-failed", warning)
    assert history(settings, "vmss/rg-hpc/fine")[-1]["reason"] == "completed"


def test_a_refused_post_is_not_repeated_and_a_throttled_one_is(arm: FakeARM, webhook: FakeWebhook,
                                                               make_settings: Callable[..., Settings]):
    webhook.inject(method="POST", status=400, body="invalid_payload")
    settings = make_settings(evening(arm), BATCHK8S_WEBHOOK_URL=webhook.hook_url)
    reconcile(settings, now=MON_1900)
    assert webhook.count("POST") == 1 and webhook.received == []

    webhook.reset_log()
    webhook.inject(method="POST", status=429, headers={"Retry-After": "0"})
    arm.scale_sets[(RG.lower(), "fine")].instances["0"] = "running"  # started by hand; fails tonight
    arm.fail_next_operation(RG, "fine", "AllocationFailed", "again")
    reconcile(settings, now=MON_1900 + timedelta(days=1))
    assert webhook.count("POST") == 2 and len(webhook.received) == 1


def test_a_slow_webhook_costs_at_most_the_deadline(arm: FakeARM, webhook: FakeWebhook,
                                                   make_settings: Callable[..., Settings],
                                                   monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(notify, "TIMEOUT", 0.2)
    monkeypatch.setattr(notify, "DEADLINE", 0.5)
    webhook.inject(method="POST", delay=2.0, times=10)
    settings = make_settings(evening(arm), BATCHK8S_WEBHOOK_URL=webhook.hook_url)

    started = time.monotonic()
    report = reconcile(settings, now=MON_1900)

    assert time.monotonic() - started < 2.0
    assert results(report)["vmss/rg-hpc/fails"] == "failed"
    assert history(settings, "vmss/rg-hpc/fails")[-1]["reason"] == "webhook-failed"


def test_an_unreachable_webhook_is_a_warning(arm: FakeARM, webhook: FakeWebhook,
                                             make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture):
    url = webhook.hook_url
    webhook.stop()
    settings = make_settings(evening(arm), BATCHK8S_WEBHOOK_URL=url)
    caplog.set_level(logging.WARNING, logger="batchk8s.notify")

    reconcile(settings, now=MON_1900)

    assert "the webhook at 127.0.0.1 was not notified: could not reach it (ConnectionError)" in caplog.text


def test_still_running_is_posted_once_and_the_end_when_a_later_tick_sees_it(
        arm: FakeARM, webhook: FakeWebhook, make_settings: Callable[..., Settings]):
    from batchk8s.deadline import Deadline

    arm.operation_delay = 0.6
    arm.add_scale_set(RG, "slow", {"0": "running"})
    arm.fail_next_operation(RG, "slow", "AllocationFailed", "no capacity")
    settings = make_settings([{"name": "evening", "schedule": "0 0 19 * * *", "timeZone": "Europe/Berlin",
                               "action": "deallocate", "targets": [{"name": "slow"}]}],
                             BATCHK8S_WEBHOOK_URL=webhook.hook_url)

    reconcile(settings, now=MON_1900, budget=Deadline.after(0.05))
    reconcile(settings, now=MON_1900 + timedelta(minutes=1), budget=Deadline.after(0.05))  # still running: quiet
    time.sleep(0.7)
    reconcile(settings, now=MON_1900 + timedelta(minutes=2), budget=Deadline.after(0.05))

    [first], [last] = ([(e["kind"], e["detail"]) for e in body["events"]] for body in webhook.received)
    assert first[0] == "still-running" and first[1].startswith(
        "the operation was still running at the end of the timer's budget; the next run reports how it ends")
    assert last == ("failed", "AllocationFailed: no capacity")
