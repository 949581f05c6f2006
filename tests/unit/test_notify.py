"""The webhook payloads (pure) and which events are worth a post."""

from __future__ import annotations

from datetime import UTC, datetime

from batchk8s.notify import MAX_EVENTS, Event, payload, worth_sending
from batchk8s.settings import load_settings

AT = datetime(2025, 6, 2, 17, 0, 5, tzinfo=UTC)
TARGET = {"kind": "vmss", "resourceGroup": "rg", "name": "a"}


def event(result: str, reason: str | None = None, detail: str | None = None, name: str = "a") -> Event:
    return Event(f"vmss/rg/{name}", {**TARGET, "name": name}, f"scale set rg/{name}", "deallocate", result, reason,
                 detail, "2025-06-02T17:00:00+00:00", "office-stop")


FAILED = event("failed", "failed", "AllocationFailed: no capacity")
HELD = event("skipped", "hold", "held until 2025-06-03T00:00:00+00:00 (maintenance)", name="b")
RUNNING = event("applied", "still-running", name="c")
DONE = event("applied", "completed", name="d")
ALREADY = event("skipped", "already-in-state", name="e")


def test_problems_by_default_every_action_with_all():
    problems = load_settings({"BATCHK8S_WEBHOOK_URL": "https://hooks.example.org/x"})
    everything = load_settings({"BATCHK8S_WEBHOOK_URL": "https://hooks.example.org/x",
                                "BATCHK8S_WEBHOOK_EVENTS": "all"})
    dry = event("dry-run", "would-deallocate")
    events = [FAILED, HELD, RUNNING, DONE, ALREADY, dry]

    assert [e.kind for e in worth_sending(problems, events)] == ["failed", "held", "still-running"]
    assert [e.kind for e in worth_sending(everything, events)] == [
        "failed", "held", "still-running", "applied", "skipped"]


def test_generic_json_carries_every_event_field():
    body = payload("json", "schedules_reconcile", AT, [FAILED, HELD])

    assert body["summary"] == "batchk8s schedules_reconcile: 1 failed, 1 held"
    assert (body["source"], body["run"], body["at"], body["omitted"]) == (
        "batchk8s", "schedules_reconcile", "2025-06-02T17:00:05+00:00", 0)
    assert body["counts"] == {"failed": 1, "held": 1}
    assert body["events"][0] == {
        "kind": "failed", "key": "vmss/rg/a", "target": TARGET, "label": "scale set rg/a", "action": "deallocate",
        "result": "failed", "reason": "failed", "detail": "AllocationFailed: no capacity",
        "firing": "2025-06-02T17:00:00+00:00", "rule": "office-stop"}


def test_slack_is_one_mrkdwn_text():
    body = payload("slack", "vmss_schedule", AT, [FAILED, RUNNING])

    assert body == {"text": "*batchk8s vmss_schedule: 1 failed, 1 still running*\n"
                            "• scale set rg/a: failed (deallocate, rule 'office-stop'): AllocationFailed: no capacity\n"
                            "• scale set rg/c: still running (deallocate, rule 'office-stop')"}


def test_teams_is_one_adaptive_card_with_failures_marked():
    body = payload("teams", "vmss_schedule", AT, [FAILED, DONE])

    assert body["type"] == "message"
    [attachment] = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    texts = [block["text"] for block in card["body"]]
    assert texts[0] == "batchk8s vmss_schedule: 1 applied, 1 failed"
    assert texts[2:] == ["- scale set rg/a: failed (deallocate, rule 'office-stop'): AllocationFailed: no capacity",
                         "- scale set rg/d: applied (deallocate, rule 'office-stop')"]
    assert [block.get("color") for block in card["body"][2:]] == ["Attention", None]


def test_a_fleet_wide_failure_is_one_bounded_message():
    many = [event("failed", "failed", "QuotaExceeded: cores", name=f"s{i}") for i in range(MAX_EVENTS + 7)]

    body = payload("json", "schedules_reconcile", AT, many)
    slack = payload("slack", "schedules_reconcile", AT, many)

    assert len(body["events"]) == MAX_EVENTS and body["omitted"] == 7
    assert body["counts"] == {"failed": MAX_EVENTS + 7}
    assert slack["text"].endswith("• ... and 7 more")
