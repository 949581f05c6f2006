"""The schedule document's doors: the timer and HTTP functions as the host indexes them, and the CLI."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest

from batchk8s import settings as settings_module
from batchk8s.cli import main
from batchk8s.schedules.state import StateStore
from batchk8s.settings import current_settings
from tests.app_index import indexed_functions
from tests.conftest import AZURITE_KEY
from tests.fakes.arm import FakeARM
from tests.fakes.batch import FakeBatch
from tests.integration.schedules.conftest import RG
from tests.wallclock import weekday_times

pytestmark = pytest.mark.azurite

DOCUMENT = {"rules": [
    {"name": "eu-start", "schedule": "0 0 8 * * Mon-Fri", "timeZone": "Europe/Berlin", "action": "start",
     "targets": [{"name": "vmss-a"}]},
    {"name": "us-stop", "schedule": "0 0 18 * * Mon-Fri", "timeZone": "America/New_York", "action": "deallocate",
     "targets": [{"name": "vmss-a"}]}]}


def functions() -> dict[str, Any]:
    return indexed_functions()


@pytest.fixture
def app_env(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Put the fakes' settings and a document (plus `extra` settings) into the process environment, as the
    host would."""

    def apply(document: Any, **extra: str) -> None:
        for name, value in {**env, "BATCHK8S_SCHEDULES": json.dumps(document), **extra}.items():
            monkeypatch.setenv(name, value)
        settings_module.clear_cache()

    yield apply


def get(route: str, **params: str) -> tuple[int, Any]:
    [function] = [f for f in functions().values()
                  if getattr(f.get_bindings()[0], "route", None) == route]
    request = func.HttpRequest("GET", f"http://localhost:7071/api/{route}", params=params, body=b"", headers={})
    response = function.get_user_function()(request)
    return response.status_code, json.loads(response.get_body())


def test_the_timer_runs_every_minute_in_utc_with_the_monitor():
    timer = functions()["schedules_reconcile"].get_bindings()[0]
    assert timer.type == "timerTrigger"
    assert (timer.schedule, timer.use_monitor, timer.run_on_startup) == ("0 * * * * *", True, False)
    for name in ("schedules", "schedules_history"):
        binding = functions()[name].get_bindings()[0]
        assert binding.auth_level == func.AuthLevel.FUNCTION and [str(m) for m in binding.methods] == ["GET"]


@pytest.mark.clock
def test_the_timer_acts_and_an_invalid_document_logs_every_problem_and_does_nothing(
        arm: FakeARM, batch: FakeBatch, app_env: Callable[..., None], caplog: pytest.LogCaptureFixture):
    arm.add_scale_set(RG, "vmss-a", {"0": "deallocated"})
    timer = functions()["schedules_reconcile"].get_user_function()
    every_minute = [{"schedule": "0 * * * * *", "action": "start", "targets": [{"name": "vmss-a"}]},
                    {"schedule": "0 * * * * *", "action": "resize", "dedicated": 1, "targets": [{"pool": "k8s-pool"}]}]
    app_env({"rules": every_minute[:1]})
    timer(TimerRequest(past_due=False))
    assert [(action, name) for action, _, name, _ in arm.actions] == [("start", "vmss-a")]
    state = StateStore(current_settings()).list_blobs()

    # Two valid rules that would act this very minute, and one broken rule: nothing at all is done.
    arm.log.clear()
    caplog.set_level(logging.INFO)
    app_env({"rules": [*every_minute, {"schedule": "0 * * * * *", "action": "stop", "timeZone": "Mars",
                                       "targets": []}]}, AZURE_BATCH_ACCOUNT_URL=batch.url)
    timer(TimerRequest(past_due=False))
    assert arm.log == [] and batch.log == []  # no ARM or Batch request at all
    assert StateStore(current_settings()).list_blobs() == state  # no state written either
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert "nothing was done" in errors[0] and "3 problem(s)" in errors[0]
    assert errors[0].startswith("schedules_reconcile: not run: ")
    assert [line.split(":")[1].strip() for line in errors[1:]] == ["$.rules[2].timeZone", "$.rules[2].action",
                                                                   "$.rules[2].targets"]
    assert all(line.startswith("schedules_reconcile:   ") for line in errors[1:])
    assert AZURITE_KEY not in caplog.text


@pytest.mark.clock
@pytest.mark.parametrize("hours", ["1", "24", "168", ""])
def test_get_schedules_lists_every_firing_in_the_window(app_env: Callable[[Any], None], hours: str):
    app_env(DOCUMENT)
    status, body = get("schedules", **({"hours": hours} if hours else {}))
    assert status == 200
    assert body["hours"] == (int(hours) if hours else 24)
    start, end = datetime.fromisoformat(body["from"]), datetime.fromisoformat(body["to"])
    assert end - start == timedelta(hours=body["hours"])
    # Working days' 08:00 in Berlin and 18:00 in New York within (from, to], found by walking the calendar.
    expected = sorted([(t.isoformat(), "eu-start", "start")
                       for t in weekday_times("Europe/Berlin", 8, after=start, until=end)]
                      + [(t.isoformat(), "us-stop", "deallocate")
                         for t in weekday_times("America/New_York", 18, after=start, until=end)])
    [target] = body["targets"]
    assert target["target"] == {"kind": "vmss", "resourceGroup": RG, "name": "vmss-a"}
    assert [(f["utc"], f["rule"], f["action"]) for f in target["firings"]] == expected
    for firing in target["firings"]:
        local = datetime.fromisoformat(firing["local"])
        assert local == datetime.fromisoformat(firing["utc"]) and str(ZoneInfo(firing["timeZone"])) in (
            "Europe/Berlin", "America/New_York")
        assert local.utcoffset() == local.astimezone(ZoneInfo(firing["timeZone"])).utcoffset()


@pytest.mark.parametrize("hours", ["0", "169", "-1", "x", "1.5", "24h"])
def test_get_schedules_refuses_bad_hours(app_env: Callable[[Any], None], hours: str):
    app_env(DOCUMENT)
    status, body = get("schedules", hours=hours)
    assert status == 400
    assert body["error"]["details"] == [{"field": "hours", "message": "must be a whole number from 1 to 168"}]


@pytest.mark.clock
def test_get_schedules_with_an_invalid_configured_document_is_a_configuration_error(app_env: Callable[[Any], None]):
    app_env([{"schedule": "0 0 8 * * *", "action": "start", "targets": [{"name": "bad name"}]}])
    status, body = get("schedules")
    assert status == 503
    assert body["error"]["code"] == "InvalidScheduleDocument"
    assert body["error"]["details"][0]["field"] == "$[0].targets[0].name"


@pytest.mark.clock
def test_get_history_lists_what_happened_newest_first(arm: FakeARM, app_env: Callable[[Any], None]):
    arm.add_scale_set(RG, "vmss-a", {"0": "running"})
    app_env({"rules": [{"schedule": "0 * * * * *", "action": "deallocate", "targets": [{"name": "vmss-a"}]}],
             "holds": []})
    functions()["schedules_reconcile"].get_user_function()(TimerRequest(past_due=False))
    status, body = get("schedules/history", limit="5")
    assert status == 200
    [entry] = body["entries"]
    assert (entry["key"], entry["result"], entry["action"]) == ("vmss/rg-hpc/vmss-a", "applied", "deallocate")
    assert entry["target"] == {"kind": "vmss", "resourceGroup": RG, "name": "vmss-a"} and body["total"] == 1
    assert body["requests"] == {"list": 1, "read": 1}  # one listing, the target's history blob of this month
    for bad in ("0", "1001", "many"):
        status, body = get("schedules/history", limit=bad)
        assert status == 400 and body["error"]["details"][0]["field"] == "limit"


# --- the command line ---------------------------------------------------------------------------


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.clock
def test_cli_plan_validate_reconcile_history(arm: FakeARM, app_env: Callable[[Any], None], tmp_path: Any,
                                             capsys: pytest.CaptureFixture[str]):
    arm.add_scale_set(RG, "vmss-a", {"0": "running"})
    app_env({"rules": [{"name": "every-minute", "schedule": "0 * * * * *", "action": "deallocate",
                        "targets": [{"name": "vmss-a"}]}],
             "holds": [{"name": "vmss-b", "until": "2099-01-01T01:00:00+01:00", "reason": "render run"}]})
    code, out, _ = run(["schedules", "plan", "--hours", "1", "--json"], capsys)
    assert code == 0 and len(json.loads(out)["targets"][0]["firings"]) == 60
    code, out, _ = run(["schedules", "plan", "--hours", "2"], capsys)
    assert code == 0 and "scale set rg-hpc/vmss-a:" in out and "deallocate  [every-minute]" in out
    assert out.rstrip().endswith("scale set rg-hpc/vmss-b held until 2099-01-01T00:00:00+00:00 (render run)")
    code, _, err = run(["schedules", "plan", "--hours", "169"], capsys)
    assert code == 2 and "must be a whole number from 1 to 168" in err

    code, out, _ = run(["schedules", "validate"], capsys)
    assert code == 0 and out.startswith("valid: 1 rule(s)")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"schedule": "61 * * * *", "action": "start", "targets": [{"pool": "p"}]}]))
    code, _, err = run(["schedules", "validate", str(bad)], capsys)
    assert code == 2
    assert "$[0].schedule: minute field '61'" in err and "$[0].targets[0]: pools cannot 'start'" in err
    code, _, err = run(["schedules", "validate", str(tmp_path / "absent.json")], capsys)
    assert code == 2 and "cannot read" in err

    code, out, _ = run(["schedules", "reconcile", "--dry-run"], capsys)
    assert code == 0 and "dry run" in out and "vmss/rg-hpc/vmss-a: dry-run" in out and arm.actions == []
    code, out, _ = run(["schedules", "reconcile", "--json"], capsys)
    assert code == 0 and json.loads(out)["counts"] == {"applied": 1}
    code, out, _ = run(["schedules", "history"], capsys)
    assert code == 0 and "vmss/rg-hpc/vmss-a  applied (completed)  deallocate firing" in out


@pytest.mark.clock
def test_cli_reconcile_exits_3_when_a_target_failed(arm: FakeARM, app_env: Callable[[Any], None],
                                                    capsys: pytest.CaptureFixture[str]):
    arm.add_resource_group(RG)
    app_env([{"schedule": "0 * * * * *", "action": "start", "targets": [{"name": "missing"}]}])
    code, out, _ = run(["schedules", "reconcile"], capsys)
    assert code == 3 and "vmss/rg-hpc/missing: failed (not-found)" in out


def test_cli_without_storage_is_a_configuration_error(capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    monkeypatch.setenv("BATCHK8S_SCHEDULES", json.dumps(DOCUMENT["rules"]))
    monkeypatch.setenv("AZURE_RES_GROUP_NAME", RG)
    code, _, err = run(["schedules", "history"], capsys)
    assert code == 2 and "AzureWebJobsStorage" in err
