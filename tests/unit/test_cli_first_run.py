"""What a new user sees first: `config check` and `plan` say what is configured, what is not, and show
an invalid value as it was given (never as its default), with secrets still masked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batchk8s.cli import main
from batchk8s.settings import REQUIREMENTS, load_settings
from tests.unit.test_cli_core import write_settings

TIMER_OFF = {"AzureWebJobs.vmss_schedule.Disabled": "true"}
SCHEDULES = '{"rules": []}'
WEBHOOK = "http://hooks.example.com/services/T000/B000/Zk4QhiddenTail"


def features(out: str) -> dict[str, str]:
    lines = out.split("features:\n", 1)[1].split("timers:\n", 1)[0].splitlines()
    return dict(line.strip().split(": ", 1) for line in lines)


def test_nothing_configured_is_not_a_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """No setting problem, but no feature can run: exit 2, and one line per feature saying what to set."""
    assert main(["config", "check", "--settings", write_settings(tmp_path, **TIMER_OFF)]) == 2
    out = capsys.readouterr().out
    assert out.rstrip().endswith("no problems, but nothing is ready: no feature has the settings it needs "
                                 "(see features)")
    shown = features(out)
    assert list(shown) == list(REQUIREMENTS)
    assert shown["vmss"] == "not configured: set AZURE_SUBSCRIPTION_ID, AZURE_RES_GROUP_NAME, AZURE_VMSS_NAME"
    assert shown["vmss-timer"] == "off (AzureWebJobs.vmss_schedule.Disabled=true)"
    assert shown["tes"] == "not configured: set TESK_API_URL or AZURE_BATCH_ACCOUNT_URL"
    assert shown["schedules"] == "not configured: set BATCHK8S_SCHEDULES or BATCHK8S_SCHEDULES_BLOB"


def test_storage_alone_is_nothing_ready(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """Every new Functions project sets AzureWebJobsStorage: that alone runs nothing."""
    path = write_settings(tmp_path, AzureWebJobsStorage="UseDevelopmentStorage=true", **TIMER_OFF)
    assert main(["config", "check", "--settings", path]) == 2
    assert features(capsys.readouterr().out)["storage"] == "ready"


def test_a_partly_configured_app_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """Only the schedule document, valid: exit 0 although the other features are not configured."""
    path = write_settings(tmp_path, BATCHK8S_SCHEDULES=SCHEDULES, AZURE_SUBSCRIPTION_ID="0" * 8 + "-0000-0000-0000-"
                          + "0" * 12, **TIMER_OFF)
    assert main(["config", "check", "--settings", path]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith("no problems; ready: schedules")
    shown = features(out)
    assert shown["schedules"] == "ready"
    assert shown["vmss"] == "incomplete: set AZURE_RES_GROUP_NAME, AZURE_VMSS_NAME"
    assert shown["batch"] == "not configured: set AZURE_BATCH_ACCOUNT_URL"


def test_a_feature_whose_settings_are_all_given_waits_for_the_problems(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]):
    path = write_settings(tmp_path, TESK_API_URL="https://tes.example.org", K8S_VERSION="latest", **TIMER_OFF)
    assert main(["config", "check", "--settings", path]) == 2
    out = capsys.readouterr().out
    assert features(out)["tes"] == "blocked until the problems below are fixed"
    assert "  - K8S_VERSION: 'latest': must be MAJOR.MINOR" in out


@pytest.mark.clock  # plan reads the clock
def test_an_invalid_value_is_shown_as_given_and_marked(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = write_settings(tmp_path, AZURE_BATCH_VM_NODE_COUNT="lots", WEBSITE_TIME_ZONE="Mars/Olympus",
                          BATCHK8S_WEBHOOK_URL=WEBHOOK, TESK_API_URL="https://tes.example.org", **TIMER_OFF)
    for argv in (["config", "check"], ["plan"]):
        assert main([*argv, "--settings", path]) == 2
        captured = capsys.readouterr()
        assert "AZURE_BATCH_VM_NODE_COUNT = lots (invalid)" in captured.out
        assert "AZURE_BATCH_VM_NODE_COUNT = 1" not in captured.out
        assert "WEBSITE_TIME_ZONE = Mars/Olympus (invalid)" in captured.out
        assert "WEBSITE_TIME_ZONE = UTC" not in captured.out
        assert "BATCHK8S_WEBHOOK_URL = ***Tail (invalid)" in captured.out  # a secret stays masked
        assert "Zk4Q" not in captured.out + captured.err and "B000" not in captured.out + captured.err
    assert main(["--json", "config", "check", "--settings", path]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["settings"]["AZURE_BATCH_VM_NODE_COUNT"] == "lots"
    assert sorted(report["invalid"]) == ["AZURE_BATCH_VM_NODE_COUNT", "BATCHK8S_WEBHOOK_URL", "WEBSITE_TIME_ZONE"]


def test_an_invalid_value_keeps_the_field_at_its_default():
    """What the app runs with is unchanged (the default, and a problem that stops every feature)."""
    settings = load_settings({"AZURE_BATCH_VM_NODE_COUNT": "lots"})
    assert settings.node_count == 1 and settings.invalid == {"AZURE_BATCH_VM_NODE_COUNT": "lots"}
    assert settings.report()["settings"]["AZURE_BATCH_VM_NODE_COUNT"] == "lots"


@pytest.mark.clock  # plan reads the clock
def test_an_invalid_timer_schedule_is_a_problem_not_an_unset_or_disabled_timer(tmp_path: Path,
                                                                                capsys: pytest.CaptureFixture[str]):
    path = write_settings(tmp_path, VmssTriggerSchedule="0 61 * * * *")
    assert main(["plan", "--settings", path]) == 2
    out = capsys.readouterr().out
    section = out.split("== vmss schedule ==\n", 1)[1].split("==", 1)[0]
    assert section.strip() == ("PROBLEM VmssTriggerSchedule '0 61 * * * *': minute field '61': value 61 out of "
                               "range 0-59: the Functions host does not load vmss_schedule with it")
    assert "VmssTriggerSchedule is not set" not in out and "switched off" not in out
    assert main(["--json", "plan", "--settings", path]) == 2
    assert json.loads(capsys.readouterr().out)["vmssSchedule"] == {"enabled": True, "schedule": "0 61 * * * *",
                                                                    "invalid": True}
    assert main(["config", "check", "--settings", path]) == 2
    out = capsys.readouterr().out
    assert "vmss_schedule: on, schedule 0 61 * * * * (invalid)" in out
    assert "VmssTriggerSchedule = 0 61 * * * * (invalid)" in out
    assert features(out)["vmss-timer"].endswith("; fix VmssTriggerSchedule")
    assert "1 problem(s):" in out  # the schedule's own problem, not also "is not set"


@pytest.mark.clock  # plan reads the clock
def test_plan_of_a_valid_partial_configuration_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """A missing TES setting means TES is not configured, not a problem: plan exits 0."""
    assert main(["plan", "--settings", write_settings(tmp_path, BATCHK8S_SCHEDULES=SCHEDULES, **TIMER_OFF)]) == 0
    out = capsys.readouterr().out
    assert "PROBLEM" not in out
    assert "not configured: TESK_API_URL is required for tes (or set AZURE_BATCH_ACCOUNT_URL)" in out
