"""The scale set functions, indexed from function_app and called with func.HttpRequest / TimerRequest."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest  # the concrete timer object the worker builds

from batchk8s import storage
from tests.app_index import indexed_functions
from tests.fakes.arm import FakeARM
from tests.integration.vmss.conftest import RG
from tests.wallclock import weekday_times

SCHEDULE = "0 30 7 * * Mon-Fri"


def state_container() -> str:
    return "state-" + uuid.uuid4().hex[:12]


def history_entries() -> list[dict[str, Any]]:
    """Every history entry of the state container the app's settings name."""
    from batchk8s.schedules.history import PREFIX, parse_lines
    from batchk8s.settings import current_settings

    settings = current_settings()
    client = storage.blob_service(settings).get_container_client(settings.state_container)
    return [entry for blob in client.list_blobs(name_starts_with=PREFIX)
            for entry in parse_lines(storage.read_blob_text(settings, settings.state_container, blob.name))]


def indexed() -> dict[str, Any]:
    return indexed_functions()


def function(name: str) -> Callable[..., Any]:
    return indexed()[name].get_user_function()


def call(name: str, method: str, path: str, *, body: bytes = b"", route: dict[str, str] | None = None,
         params: dict[str, str] | None = None) -> tuple[int, dict[str, Any], func.HttpResponse]:
    request = func.HttpRequest(method, f"https://app.example.net{path}", body=body, headers={},
                               route_params=route or {}, params=params or {})
    response = function(name)(request)
    return response.status_code, json.loads(response.get_body()), response


def post_action(action: str, body: object = None) -> tuple[int, dict[str, Any], func.HttpResponse]:
    raw = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    return call("vmss_action", "POST", f"/api/vmss/{action}", body=raw, route={"action": action})


def test_index_lists_the_vmss_functions_with_their_bindings():
    functions = indexed()
    timer = functions["vmss_schedule"].get_bindings()[0]
    assert (timer.type, timer.schedule, timer.run_on_startup, timer.use_monitor) == (
        "timerTrigger", "%VmssTriggerSchedule%", False, True)
    for name, route, methods in (("vmss_timer", "vmss/timer", ["GET"]), ("schedule", "schedule", ["GET"]),
                                 ("vmss_status", "vmss", ["GET"]),
                                 ("vmss_action", "vmss/{action}", ["POST"])):
        trigger = functions[name].get_bindings()[0]
        verbs = [str(getattr(m, "value", m)) for m in trigger.methods]
        assert (trigger.route, verbs) == (route, methods)
        assert str(getattr(trigger.auth_level, "value", trigger.auth_level)).lower() == "function"


def test_post_start_returns_202_with_location(arm: FakeARM, app_env: Callable[..., None]):
    arm.add_scale_set(RG, "vmss-a", {"0": "deallocated", "1": "running"})
    arm.add_scale_set(RG, "vmss-b", {"0": "running"})
    app_env("vmss-a,vmss-b")

    status, body, response = post_action("start")

    assert status == 202
    assert response.headers["Location"] == "https://app.example.net/api/vmss?name=vmss-a,vmss-b"
    assert body["summary"] == {"accepted": 1, "nothing-to-do": 1}
    assert body["targets"][0]["instances"] == [
        {"instanceId": "0", "powerState": "deallocated", "outcome": "started"},
        {"instanceId": "1", "powerState": "running", "outcome": "skipped"}]


def test_post_nothing_to_do_dry_run_and_wait_answer_200(arm: FakeARM, app_env: Callable[..., None]):
    arm.add_scale_set(RG, "vmss-a", {"0": "running"})
    arm.add_scale_set(RG, "vmss-b", {"0": "running"})
    app_env("vmss-a")

    nothing = post_action("start")
    dry = post_action("deallocate", {"names": ["vmss-b"], "dryRun": True})
    waited = post_action("deallocate", {"names": ["vmss-a"], "waitSeconds": 10})

    assert (nothing[0], nothing[1]["summary"]) == (200, {"nothing-to-do": 1})
    assert (dry[0], dry[1]["targets"][0]["instances"][0]["outcome"]) == (200, "would-deallocate")
    assert (waited[0], waited[1]["summary"]) == (200, {"completed": 1})
    assert arm.states(RG, "vmss-b") == {"0": "running"}


def test_get_vmss_reports_power_states_by_name(arm: FakeARM, app_env: Callable[..., None]):
    arm.add_scale_set(RG, "vmss-a", {"0": "running"})
    arm.add_scale_set(RG, "vmss-b", {"0": "stopped"})
    arm.add_scale_set(RG, "vmss-c", {"0": "deallocated"})
    app_env("vmss-a")

    default = call("vmss_status", "GET", "/api/vmss")
    picked = call("vmss_status", "GET", "/api/vmss?name=vmss-b&name=vmss-c", params={"name": "vmss-b"})
    comma = call("vmss_status", "GET", "/api/vmss?name=vmss-b,vmss-c", params={"name": "vmss-b,vmss-c"})

    assert [t["name"] for t in default[1]["scaleSets"]] == ["vmss-a"]
    assert [(t["name"], t["instances"][0]["powerState"]) for t in picked[1]["scaleSets"]] == [
        ("vmss-b", "stopped"), ("vmss-c", "deallocated")]
    assert comma[1] == picked[1]


def test_single_unknown_scale_set_is_404_and_several_are_reported(arm: FakeARM, app_env: Callable[..., None]):
    arm.add_scale_set(RG, "vmss-a", {"0": "running"})
    app_env("vmss-a")

    lone = post_action("start", {"names": ["vmss-nope"]})
    mixed = post_action("start", {"names": ["vmss-a", "vmss-nope"]})
    status_lone = call("vmss_status", "GET", "/api/vmss?name=vmss-nope", params={"name": "vmss-nope"})

    assert lone[0] == 404 and lone[1]["error"]["code"] == "ResourceNotFound"
    assert status_lone[0] == 404
    assert mixed[0] == 200
    assert [t["outcome"] for t in mixed[1]["targets"]] == ["nothing-to-do", "not-found"]


def test_lone_conflict_is_409(arm: FakeARM, app_env: Callable[..., None]):
    arm.add_scale_set(RG, "vmss-a", {"0": "deallocated"})
    arm.inject(method="POST", path="/start$", status=409, body={"error": {
        "code": "OperationNotAllowed", "message": "Operation 'start' is not allowed."}})
    app_env()

    status, body, _ = post_action("start")

    assert status == 409
    assert body["error"]["code"] == "OperationNotAllowed"


@pytest.mark.parametrize(("action", "body", "fields"), [
    ("restart", None, ["action"]),
    ("start", b"{not json", ["body"]),
    ("start", b"[1, 2]", ["body"]),
    ("start", {"names": ["ok", "no spaces allowed"]}, ["names"]),
    ("start", {"names": "vmss-a"}, ["names"]),
    ("start", {"waitSeconds": 201}, ["waitSeconds"]),
    ("start", {"waitSeconds": True}, ["waitSeconds"]),
    ("start", {"dryRun": "yes"}, ["dryRun"]),
    ("start", {"name": ["vmss-a"], "dryrun": True, "waitSeconds": -1, "names": ["-bad"]},
     ["name", "dryrun", "waitSeconds", "names"]),
])
def test_bad_input_is_400_naming_every_field(arm: FakeARM, app_env: Callable[..., None], action: str,
                                             body: object, fields: list[str]):
    app_env()

    status, answer, _ = post_action(action, body)

    assert status == 400
    assert answer["error"]["code"] == "InvalidInput"
    assert [d["field"] for d in answer["error"]["details"]] == fields
    assert arm.log == []


def test_missing_configuration_is_503_listing_the_gaps(monkeypatch: pytest.MonkeyPatch):
    from batchk8s import settings

    for name in ("AZURE_SUBSCRIPTION_ID", "AZURE_RES_GROUP_NAME", "AZURE_VMSS_NAME", "VmssTriggerSchedule"):
        monkeypatch.delenv(name, raising=False)
    settings.clear_cache()

    status, body, _ = post_action("start")
    schedule = call("vmss_timer", "GET", "/api/vmss/timer")

    assert status == 503
    assert {d["field"] for d in body["error"]["details"]} >= {"AZURE_SUBSCRIPTION_ID", "AZURE_RES_GROUP_NAME"}
    assert schedule[0] == 503
    assert schedule[1]["error"]["details"][0]["field"] == "VmssTriggerSchedule"


@pytest.mark.clock
def test_schedule_lists_next_firings(app_env: Callable[..., None], pinned_clock: datetime):
    app_env(VmssTriggerSchedule=SCHEDULE, AZURE_VMSS_ACTION="start", WEBSITE_TIME_ZONE="Europe/Berlin",
            WEBSITE_SKU="FlexConsumption")

    status, body, _ = call("vmss_timer", "GET", "/api/vmss/timer?count=3", params={"count": "3"})
    bad = call("vmss_timer", "GET", "/api/vmss/timer?count=0", params={"count": "0"})

    assert status == 200
    assert len(body["firings"]) == 3
    assert body["action"] == "start" and body["targets"] == [{"resourceGroup": RG, "name": "vmss-a"}]
    assert body["timeZone"] == "UTC" and body["warnings"]  # Flex Consumption ignores WEBSITE_TIME_ZONE
    expected = weekday_times("UTC", 7, 30, after=pinned_clock, count=3)
    assert [f["utc"] for f in body["firings"]] == [t.isoformat() for t in expected]
    assert bad[0] == 400 and bad[1]["error"]["details"][0]["field"] == "count"


@pytest.mark.clock
def test_the_old_route_answers_the_same_for_one_release_marked_deprecated(app_env: Callable[..., None]):
    app_env(VmssTriggerSchedule=SCHEDULE, AZURE_VMSS_ACTION="start")

    new = call("vmss_timer", "GET", "/api/vmss/timer?count=2", params={"count": "2"})
    old = call("schedule", "GET", "/api/schedule?count=2", params={"count": "2"})
    bad = call("schedule", "GET", "/api/schedule?count=0", params={"count": "0"})

    assert old[:2] == new[:2] and old[0] == 200
    assert "Deprecation" not in new[2].headers
    for _, _, response in (old, bad):
        headers = response.headers
        # RFC 9745: the date as epoch seconds; RFC 8288: where to go instead
        assert headers["Deprecation"] == "@" + str(int(datetime(2026, 12, 1, tzinfo=UTC).timestamp()))
        assert headers["Link"] == '</api/vmss/timer>; rel="successor-version"'
    assert bad[0] == 400 and bad[1]["error"]["details"][0]["field"] == "count"


@pytest.mark.clock
@pytest.mark.azurite
def test_timer_follows_the_action_to_its_outcome_and_logs_one_line_per_scale_set(
        arm: FakeARM, app_env: Callable[..., None], azurite: str, caplog: pytest.LogCaptureFixture,
        pinned_clock: datetime):
    arm.add_scale_set(RG, "vmss-a", {"0": "running"})
    arm.add_scale_set(RG, "vmss-b", {"0": "running", "1": "deallocated"})
    arm.add_scale_set(RG, "vmss-c", {"c_0": "running", "c_1": "running"}, orchestration="Flexible")
    arm.fail_next_operation(RG, "vmss-b", "VMExtensionProvisioningError", "extension failed")
    app_env("vmss-a,vmss-b,vmss-c,vmss-gone", VmssTriggerSchedule=SCHEDULE, AZURE_VMSS_ACTION="deallocate",
            AzureWebJobsStorage=azurite, BATCHK8S_STATE_CONTAINER=state_container())
    caplog.set_level(logging.INFO, logger="batchk8s")

    function("vmss_schedule")(TimerRequest(past_due=True))

    lines = [r for r in caplog.records if r.name == "batchk8s.vmss"]
    assert lines[0].levelno == logging.WARNING and "past due" in lines[0].getMessage()
    summaries = [r.getMessage() for r in lines[1:]]
    assert summaries == [f"vmss_schedule: deallocate {RG}/vmss-a: completed; 1 deallocated; operation Succeeded",
                         f"vmss_schedule: deallocate {RG}/vmss-b: failed; 1 failed, 1 skipped; operation Failed; "
                         "VMExtensionProvisioningError: extension failed",
                         f"vmss_schedule: deallocate {RG}/vmss-c (Flexible): completed; 2 deallocated; "
                         "operation Succeeded",
                         f"vmss_schedule: deallocate {RG}/vmss-gone: not-found; ResourceNotFound: "
                         f"scale set {RG}/vmss-gone not found"]
    assert [r.levelno for r in lines[1:]] == [logging.INFO, logging.WARNING, logging.INFO, logging.WARNING]
    assert arm.states(RG, "vmss-a")["0"] == "deallocated"
    entries = {e["key"]: e for e in history_entries()}
    assert {key: (e["result"], e["reason"], e["rule"], e["action"]) for key, e in entries.items()} == {
        f"vmss/{RG}/vmss-a": ("applied", "completed", "vmss_schedule", "deallocate"),
        f"vmss/{RG}/vmss-b": ("failed", "failed", "vmss_schedule", "deallocate"),
        f"vmss/{RG}/vmss-c": ("applied", "completed", "vmss_schedule", "deallocate"),
        f"vmss/{RG}/vmss-gone": ("failed", "not-found", "vmss_schedule", "deallocate")}
    assert entries[f"vmss/{RG}/vmss-b"]["detail"] == "VMExtensionProvisioningError: extension failed"
    assert entries[f"vmss/{RG}/vmss-a"]["firing"] == entries[f"vmss/{RG}/vmss-a"]["at"]


@pytest.mark.clock
@pytest.mark.azurite
def test_timer_posts_a_failure_to_a_teams_webhook(arm: FakeARM, app_env: Callable[..., None], azurite: str,
                                                  fake_service: Callable[..., Any], pinned_clock: datetime):
    from tests.fakes.webhook import FakeWebhook

    webhook = fake_service(FakeWebhook)
    arm.add_scale_set(RG, "vmss-a", {"0": "running"})
    arm.add_scale_set(RG, "vmss-b", {"0": "running"})
    arm.fail_next_operation(RG, "vmss-b", "QuotaExceeded", "regional cores quota")
    app_env("vmss-a,vmss-b", VmssTriggerSchedule=SCHEDULE, AZURE_VMSS_ACTION="deallocate",
            AzureWebJobsStorage=azurite, BATCHK8S_STATE_CONTAINER=state_container(),
            BATCHK8S_WEBHOOK_URL=webhook.hook_url, BATCHK8S_WEBHOOK_FORMAT="teams")

    function("vmss_schedule")(TimerRequest(past_due=False))

    [message] = webhook.received
    card = message["attachments"][0]["content"]
    assert [block["text"] for block in card["body"]][::2] == [
        "batchk8s vmss_schedule: 1 failed",
        f"- scale set {RG}/vmss-b: failed (deallocate, rule 'vmss_schedule'): QuotaExceeded: regional cores quota"]


@pytest.mark.clock
@pytest.mark.azurite
def test_what_the_timer_leaves_running_is_reported_by_its_next_firing(
        arm: FakeARM, app_env: Callable[..., None], azurite: str, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch, pinned_clock: datetime):
    from batchk8s import timer_budget

    monkeypatch.setattr(timer_budget, "FUNCTION_TIMEOUT", timer_budget.MARGIN + 0.3)  # a 0.3 s budget
    arm.operation_delay = 1.0
    arm.add_scale_set(RG, "vmss-a", {"0": "deallocated", "1": "deallocated"})
    arm.add_scale_set(RG, "vmss-f", {"f_0": "deallocated", "f_1": "running"}, orchestration="Flexible")
    app_env("vmss-a,vmss-f", VmssTriggerSchedule=SCHEDULE, AZURE_VMSS_ACTION="start",
            AzureWebJobsStorage=azurite, BATCHK8S_STATE_CONTAINER=state_container())
    caplog.set_level(logging.INFO, logger="batchk8s")

    function("vmss_schedule")(TimerRequest(past_due=False))
    first = [re.sub(r"waiting [\d.]+ s", "waiting N s", r.getMessage()) for r in caplog.records
             if r.name == "batchk8s.vmss"]
    assert first == [f"vmss_schedule: start {RG}/vmss-a: accepted; 2 started; operation InProgress; "
                     "warning: still running after waiting N s",
                     f"vmss_schedule: start {RG}/vmss-f (Flexible): accepted; 1 skipped, 1 started; "
                     "operation InProgress; warning: still running after waiting N s"]
    caplog.clear()
    time.sleep(1.0)

    function("vmss_schedule")(TimerRequest(past_due=False))  # everything is running now: nothing to do

    followed = sorted(r.getMessage() for r in caplog.records if r.name == "batchk8s.schedules.followup")
    assert len(followed) == 2
    assert followed[0].startswith(f"followed up vmss/{RG}/vmss-a (start at ")
    assert followed[0].endswith(f"rule 'vmss_schedule'): start {RG}/vmss-a: completed; 2 started; "
                                "operation Succeeded")
    assert followed[1].endswith(f"start {RG}/vmss-f (Flexible): completed; 1 started; operation Succeeded")
    second = [r.getMessage() for r in caplog.records if r.name == "batchk8s.vmss"]
    assert all("nothing-to-do" in line for line in second)
    history = [(e["key"], e["result"], e["reason"], e.get("followUp", False)) for e in history_entries()]
    assert sorted(history) == [
        (f"vmss/{RG}/vmss-a", "applied", "completed", True), (f"vmss/{RG}/vmss-a", "applied", "still-running", False),
        (f"vmss/{RG}/vmss-a", "skipped", "already-in-state", False),
        (f"vmss/{RG}/vmss-f", "applied", "completed", True), (f"vmss/{RG}/vmss-f", "applied", "still-running", False),
        (f"vmss/{RG}/vmss-f", "skipped", "already-in-state", False)]


def test_timer_with_bad_configuration_logs_every_problem(monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture):
    from batchk8s import settings

    monkeypatch.setenv("AZURE_VMSS_ACTION", "reboot")
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "not-a-guid")
    for name in ("AZURE_RES_GROUP_NAME", "AZURE_VMSS_NAME", "VmssTriggerSchedule"):
        monkeypatch.delenv(name, raising=False)
    settings.clear_cache()
    caplog.set_level(logging.INFO, logger="batchk8s")

    function("vmss_schedule")(TimerRequest(past_due=False))

    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors[0].startswith("vmss_schedule: not run:")
    for name in ("AZURE_VMSS_ACTION", "AZURE_SUBSCRIPTION_ID", "AZURE_RES_GROUP_NAME", "AZURE_VMSS_NAME",
                 "VmssTriggerSchedule"):
        assert any(line.startswith(f"vmss_schedule:   {name}:") for line in errors[1:]), name
    assert not any(r.exc_info for r in caplog.records)


@pytest.mark.clock
def test_a_firing_that_cannot_run_is_posted_naming_what_to_fix(app_env: Callable[..., None],
                                                               fake_service: Callable[..., Any],
                                                               pinned_clock: datetime):
    from tests.fakes.webhook import FakeWebhook

    webhook = fake_service(FakeWebhook)
    app_env("vmss-a", VmssTriggerSchedule=SCHEDULE, BATCHK8S_WEBHOOK_URL=webhook.hook_url)  # no AZURE_VMSS_ACTION

    function("vmss_schedule")(TimerRequest(past_due=False))

    [message] = webhook.received
    [event] = message["events"]
    assert (message["summary"], event["kind"], event["label"]) == ("batchk8s vmss_schedule: 1 failed", "failed",
                                                                    "vmss_schedule")
    assert "AZURE_VMSS_ACTION: is required for vmss-timer" in event["detail"]
