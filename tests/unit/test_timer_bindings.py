"""The Functions host's binding rules for timers, as `config check`, `GET /api/config`, `plan` and
`GET /api/vmss/timer` report them.

The host resolves a trigger's `%Setting%` when it loads the app; an unset one is an error for that
function ("'%VmssTriggerSchedule%' does not resolve to a value") and the function is not loaded, so
an unset schedule is a configuration problem. The host's switch for a function is the app setting
`AzureWebJobs.<name>.Disabled` (true or 1).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from batchk8s import settings as settings_module
from batchk8s.cli import main
from batchk8s.settings import TIMERS, env_name, load_settings
from tests.app_index import indexed_functions
from tests.unit.test_health_config import call

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = str(ROOT / "local.settings.json.example")
VMSS = {"AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000", "AZURE_RES_GROUP_NAME": "rg-hpc",
        "AZURE_VMSS_NAME": "vmss-a", "AZURE_VMSS_ACTION": "deallocate"}


def write_settings(tmp_path: Path, **values: str) -> str:
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": values}))
    return str(path)


def timer_bindings() -> dict[str, Any]:
    found = {}
    for name, function in indexed_functions().items():
        trigger = function.get_bindings()[0]
        if trigger.type == "timerTrigger":
            found[name] = trigger
    return found


def test_every_registered_timer_is_known_to_the_settings_with_its_schedule_and_switch() -> None:
    bindings = timer_bindings()
    assert set(bindings) == {timer.name for timer in TIMERS}
    for timer in TIMERS:
        schedule = bindings[timer.name].schedule
        expression = re.fullmatch(r"%(\w+)%", schedule)
        if expression:
            assert timer.schedule_attr and env_name(timer.schedule_attr) == expression[1]
        else:
            assert timer.schedule_attr is None and timer.schedule == schedule
        assert env_name(timer.disabled_attr) == f"AzureWebJobs.{timer.name}.Disabled"


@pytest.mark.parametrize(("value", "disabled"), [("true", True), ("True", True), ("1", True), ("false", False),
                                                 ("FALSE", False), ("0", False)])
def test_the_switch_reads_as_the_host_does(value: str, disabled: bool) -> None:
    settings = load_settings({"AzureWebJobs.vmss_schedule.Disabled": value})
    assert settings.vmss_timer_disabled is disabled and not settings.problems


def test_a_switch_the_host_would_not_read_is_a_problem() -> None:
    settings = load_settings({"AzureWebJobs.schedules_reconcile.Disabled": "yes"})
    [problem] = settings.problems
    assert problem.setting == "AzureWebJobs.schedules_reconcile.Disabled" and "true or 1" in problem.message


def test_an_unset_schedule_with_the_timer_on_is_a_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_settings(tmp_path, **VMSS)
    assert main(["--json", "config", "check", "--settings", path]) == 2
    report = json.loads(capsys.readouterr().out)
    [problem] = report["problems"]
    assert problem["field"] == "VmssTriggerSchedule"
    assert "does not resolve to a value" in problem["message"]
    assert "AzureWebJobs.vmss_schedule.Disabled=true" in problem["message"]
    assert report["features"]["vmss-timer"]["ready"] is False
    assert report["timers"]["vmss_schedule"] == {"enabled": True, "schedule": None,
                                                 "scheduleSetting": "VmssTriggerSchedule",
                                                 "disabledBy": "AzureWebJobs.vmss_schedule.Disabled"}


def test_the_problem_belongs_to_the_timer_alone() -> None:
    """The host still loads every other function, so other features stay usable."""
    settings = load_settings({"TESK_API_URL": "https://tes.example.org"})
    assert [p.setting for p in settings.binding_problems()] == ["VmssTriggerSchedule"]
    assert settings.require("tes") is settings
    assert not settings.report()["features"]["tes"]["missing"]


@pytest.mark.clock  # plan reads the clock
def test_a_disabled_timer_needs_no_schedule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # With TES configured, so that something is ready (`config check` exits 2 when nothing is).
    path = write_settings(tmp_path, **{"AzureWebJobs.vmss_schedule.Disabled": "true",
                                       "TESK_API_URL": "https://tes.example.org"})
    assert main(["config", "check", "--settings", path]) == 0
    out = capsys.readouterr().out
    assert "no problems" in out and "vmss-timer: off" in out
    assert "vmss_schedule: off (AzureWebJobs.vmss_schedule.Disabled)" in out
    assert "schedules_reconcile: on, schedule 0 * * * * *" in out
    assert main(["--json", "plan", "--settings", path]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["vmssSchedule"] == {"enabled": False}
    assert main(["plan", "--settings", path]) == 0
    assert "vmss_schedule is switched off (AzureWebJobs.vmss_schedule.Disabled=true)" in capsys.readouterr().out


def test_a_disabled_timer_with_a_schedule_is_still_off() -> None:
    report = load_settings({**VMSS, "VmssTriggerSchedule": "0 0 19 * * *",
                            "AzureWebJobs.vmss_schedule.Disabled": "1"}).report()
    assert report["features"]["vmss-timer"] == {"ready": False, "missing": [], "off": True}
    assert report["timers"]["vmss_schedule"]["enabled"] is False and not report["problems"]


@pytest.mark.clock  # plan reads the clock
def test_plan_names_the_unresolved_schedule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--settings", write_settings(tmp_path, **VMSS)]) == 2  # it prints a PROBLEM
    out = capsys.readouterr().out
    assert "PROBLEM VmssTriggerSchedule is not set, so the Functions host does not load vmss_schedule" in out


def test_the_example_runs_both_timers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--json", "config", "check", "--settings", EXAMPLE]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {name: timer["enabled"] for name, timer in report["timers"].items()} == {
        "vmss_schedule": True, "schedules_reconcile": True}
    assert report["settings"]["AzureWebJobs.vmss_schedule.Disabled"] is False


# -- the HTTP doors ----------------------------------------------------------------------------


def use_env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings_module.clear_cache()


def test_api_config_lists_the_unresolved_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VmssTriggerSchedule", raising=False)
    use_env(monkeypatch, **VMSS)
    status, body = call("config", "/api/config")
    assert status == 200 and [p["field"] for p in body["problems"]] == ["VmssTriggerSchedule"]
    use_env(monkeypatch, **{"AzureWebJobs.vmss_schedule.Disabled": "true"})
    status, body = call("config", "/api/config")
    assert status == 200 and body["problems"] == [] and body["features"]["vmss-timer"]["off"] is True


def test_api_schedule_says_why_nothing_fires(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VmssTriggerSchedule", raising=False)
    use_env(monkeypatch, **VMSS)
    status, body = call("vmss_timer", "/api/vmss/timer")
    assert status == 503 and body["error"]["details"][0]["field"] == "VmssTriggerSchedule"
    assert "does not resolve" in body["error"]["message"]
    use_env(monkeypatch, **{"AzureWebJobs.vmss_schedule.Disabled": "true"})
    status, body = call("vmss_timer", "/api/vmss/timer")
    assert status == 503 and body["error"]["code"] == "TimerDisabled"
    assert body["error"]["details"] == [{"field": "AzureWebJobs.vmss_schedule.Disabled", "message": "is true"}]
