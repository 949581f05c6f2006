"""The scale set functions, indexed from function_app and called with func.HttpRequest / TimerRequest."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest  # the concrete timer object the worker builds

from tests.app_index import indexed_functions
from tests.fakes.arm import FakeARM
from tests.integration.vmss.conftest import RG
from tests.wallclock import weekday_times

SCHEDULE = "0 30 7 * * Mon-Fri"


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
    for name, route, methods in (("schedule", "schedule", ["GET"]), ("vmss_status", "vmss", ["GET"]),
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
    schedule = call("schedule", "GET", "/api/schedule")

    assert status == 503
    assert {d["field"] for d in body["error"]["details"]} >= {"AZURE_SUBSCRIPTION_ID", "AZURE_RES_GROUP_NAME"}
    assert schedule[0] == 503
    assert schedule[1]["error"]["details"][0]["field"] == "VmssTriggerSchedule"


@pytest.mark.clock
def test_schedule_lists_next_firings(app_env: Callable[..., None], pinned_clock: datetime):
    app_env(VmssTriggerSchedule=SCHEDULE, AZURE_VMSS_ACTION="start", WEBSITE_TIME_ZONE="Europe/Berlin",
            WEBSITE_SKU="FlexConsumption")

    status, body, _ = call("schedule", "GET", "/api/schedule?count=3", params={"count": "3"})
    bad = call("schedule", "GET", "/api/schedule?count=0", params={"count": "0"})

    assert status == 200
    assert len(body["firings"]) == 3
    assert body["action"] == "start" and body["targets"] == [{"resourceGroup": RG, "name": "vmss-a"}]
    assert body["timeZone"] == "UTC" and body["warnings"]  # Flex Consumption ignores WEBSITE_TIME_ZONE
    expected = weekday_times("UTC", 7, 30, after=pinned_clock, count=3)
    assert [f["utc"] for f in body["firings"]] == [t.isoformat() for t in expected]
    assert bad[0] == 400 and bad[1]["error"]["details"][0]["field"] == "count"


def test_timer_runs_the_action_and_logs_one_line_per_scale_set(arm: FakeARM, app_env: Callable[..., None],
                                                               caplog: pytest.LogCaptureFixture):
    arm.add_scale_set(RG, "vmss-a", {"0": "running"})
    arm.add_scale_set(RG, "vmss-b", {"0": "running", "1": "deallocated"})
    app_env("vmss-a,vmss-b,vmss-gone", VmssTriggerSchedule=SCHEDULE, AZURE_VMSS_ACTION="deallocate")
    caplog.set_level(logging.INFO, logger="batchk8s")

    function("vmss_schedule")(TimerRequest(past_due=True))

    lines = [r for r in caplog.records if r.name == "batchk8s.vmss"]
    assert lines[0].levelno == logging.WARNING and "past due" in lines[0].getMessage()
    summaries = [r.getMessage() for r in lines[1:]]
    assert summaries == [f"vmss_schedule: deallocate {RG}/vmss-a: accepted; 1 deallocated; operation InProgress",
                         f"vmss_schedule: deallocate {RG}/vmss-b: accepted; 1 deallocated, 1 skipped; "
                         "operation InProgress",
                         f"vmss_schedule: deallocate {RG}/vmss-gone: not-found; ResourceNotFound: "
                         f"scale set {RG}/vmss-gone not found"]
    assert lines[-1].levelno == logging.WARNING
    assert arm.states(RG, "vmss-b")["0"] == "deallocating"


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
