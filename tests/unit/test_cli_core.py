"""The CLI's shared behaviour: settings from a file, JSON output, exit codes, no tracebacks."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from batchk8s.cli import main
from tests.wallclock import weekday_times

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = str(ROOT / "local.settings.json.example")


def write_settings(tmp_path: Path, **values: str) -> str:
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": values}))
    return str(path)


def test_config_check_passes_on_the_example(capsys):
    assert main(["config", "check", "--settings", EXAMPLE]) == 0
    out = capsys.readouterr().out
    assert "no problems" in out and "vmss-timer: ready" in out


def test_config_check_lists_every_problem_and_exits_2(tmp_path, capsys):
    path = write_settings(tmp_path, AZURE_VMSS_ACTION="halt", VmssTriggerSchedule="* * * * * * *",
                          AZURE_SP_CLIENT_SECRET="Qv9-secret-never-printed-0042")
    assert main(["--json", "config", "check", "--settings", path]) == 2
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert {p["field"] for p in report["problems"]} == {"AZURE_VMSS_ACTION", "VmssTriggerSchedule",
                                                       "AZURE_SP_CLIENT_ID"}
    assert "Qv9-secret-never-printed-0042" not in captured.out + captured.err


@pytest.mark.clock
def test_json_flag_works_before_and_after_the_verb(capsys):
    for argv in (["--json", "plan", "--settings", EXAMPLE], ["plan", "--json", "--settings", EXAMPLE]):
        assert main(argv) == 0
        data = json.loads(capsys.readouterr().out)
        assert len(data["vmssSchedule"]["firings"]) == 5
        # Section keys are camelCase like every other JSON key (the text output keeps its titles).
        assert list(data) == ["settings", "vmssSchedule", "scheduleDocument", "batchPool", "workflows", "tes"]


@pytest.mark.clock
def test_plan_shows_settings_and_next_firings_offline(capsys, pinned_clock: datetime):
    assert main(["plan", "--count", "3", "--settings", EXAMPLE]) == 0
    out = capsys.readouterr().out
    assert "deallocate rg-hpc/vmss-genomics, rg-hpc/vmss-render" in out
    assert "== vmss schedule ==" in out and "== batch pool ==" in out
    # Lists and switches read as they are written in an app setting, not as Python values.
    assert "  AZURE_VMSS_NAME = vmss-genomics, vmss-render\n" in out
    assert "  AzureWebJobs.vmss_schedule.Disabled = false\n" in out
    assert "['" not in out and "= False" not in out
    # The example's storage is Azurite: the pool's bootstrap URL would never reach a Batch node.
    assert ("  WARNING http://127.0.0.1:10000/devstoreaccount1/apps/k8s-node-setup.sh is on a local storage "
            "emulator") in out
    # The example's timer is 0 0 19 * * Mon-Fri in Europe/Berlin: 18:00 UTC in winter, 17:00 in summer.
    expected = weekday_times("Europe/Berlin", 19, after=pinned_clock, count=3)
    firing_lines = [line.split() for line in out.splitlines() if line.startswith("    20")]
    assert firing_lines == [[t.isoformat(), f"({t.astimezone(ZoneInfo('Europe/Berlin')).isoformat()})"]
                            for t in expected]


def test_config_check_prints_lists_as_written(capsys):
    assert main(["config", "check", "--settings", EXAMPLE]) == 0
    out = capsys.readouterr().out
    assert "  AZURE_VMSS_NAME = vmss-genomics, vmss-render\n" in out and "['" not in out


def test_usage_errors_exit_2_without_traceback(capsys, tmp_path):
    assert main(["plan", "--count", "0"]) == 2
    assert main(["no-such-command"]) == 2
    assert main(["config", "check", "--settings", str(tmp_path / "missing.json")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "--settings" in err


@pytest.mark.parametrize(("argv", "option"), [(["tes", "list", "--state", "BOGUS"], "--state"),
                                              (["tes", "get", "t1", "--view", "huge"], "--view")])
def test_a_word_outside_its_set_is_the_one_line_error_not_a_usage_dump(argv: list[str], option: str, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {option}: must be one of ")
    assert "usage:" not in err and "Traceback" not in err


@pytest.mark.clock
def test_plan_survives_an_empty_configuration(capsys):
    """Every plan section must say what is missing rather than crash when nothing is configured; the
    unset VmssTriggerSchedule is a PROBLEM (the host would not load the timer), so plan exits 2."""
    assert main(["plan", "--settings", str(ROOT / "tests" / "data" / "empty.settings.json")]) == 2
    out = capsys.readouterr().out
    assert "VmssTriggerSchedule is not set" in out
    assert "BATCHK8S_SCHEDULES is not set" in out
    assert "Traceback" not in out


@pytest.mark.parametrize("verbose", [False, True])
def test_the_sdk_loggers_speak_only_under_verbose_and_get_their_levels_back(verbose: bool):
    import logging

    from batchk8s.cli import command_logging

    identity = logging.getLogger("azure.identity._credentials.chained")
    before = [logging.getLogger(name).level for name in ("azure", "msal", "urllib3")]
    with command_logging(verbose):
        assert identity.isEnabledFor(logging.WARNING) is verbose
        assert identity.isEnabledFor(logging.ERROR)
    assert [logging.getLogger(name).level for name in ("azure", "msal", "urllib3")] == before


def test_verbose_is_a_global_option():
    from batchk8s.cli import build_parser

    assert build_parser().parse_args(["-v", "config", "check"]).verbose is True
    assert build_parser().parse_args(["vmss", "status", "--verbose"]).verbose is True


def test_an_error_with_news_of_its_own_keeps_its_header_on_one_line():
    from batchk8s.cli import error_lines
    from batchk8s.errors import ConfigError, ConflictError, InputError

    config = ConfigError("1 configuration problem(s) for vmss: AZURE_SUBSCRIPTION_ID",
                         details=[{"field": "AZURE_SUBSCRIPTION_ID", "message": "is required for vmss"}])
    assert error_lines(config) == ["error: AZURE_SUBSCRIPTION_ID: is required for vmss"]
    news = ConflictError("pool p1 exists with other settings", details=[{"field": "vmSize", "message": "was D4"}])
    assert error_lines(news) == ["error: pool p1 exists with other settings (vmSize: was D4)"]
    assert error_lines(InputError.for_field("--name", "bad")) == ["error: --name: bad"]
    several = InputError.from_problems([{"field": "a", "message": "x"}, {"field": "b", "message": "y"}])
    assert error_lines(several) == ["error: invalid input: a, b", "  - a: x", "  - b: y"]
