"""`python -m batchk8s vmss ...` and `cron next` through batchk8s.cli.main."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from batchk8s.cli import main
from tests.fakes.arm import FakeARM
from tests.integration.vmss.conftest import RG


def test_vmss_status_and_start(arm: FakeARM, app_env: Callable[..., None], capsys: pytest.CaptureFixture[str]):
    arm.add_scale_set(RG, "vmss-a", {"0": "deallocated", "1": "running"})
    app_env()

    assert main(["vmss", "status"]) == 0
    status = capsys.readouterr().out
    assert main(["vmss", "start", "--wait", "10", "--json"]) == 0
    started = json.loads(capsys.readouterr().out)

    assert status.splitlines() == [f"{RG}/vmss-a: reported; 1 deallocated, 1 running",
                                   "     0  deallocated", "     1  running"]
    assert started["targets"][0]["outcome"] == "completed"
    assert arm.states(RG, "vmss-a") == {"0": "running", "1": "running"}


def test_wait_alone_follows_the_operations_to_their_end(arm: FakeARM, app_env: Callable[..., None],
                                                        capsys: pytest.CaptureFixture[str]):
    """`--wait` without a number means what it means for `pool create` and `tes submit`: until the end."""
    arm.add_scale_set(RG, "vmss-a", {"0": "deallocated"})
    app_env()

    assert main(["vmss", "start", "--wait", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["targets"][0]["outcome"] == "completed"
    assert arm.states(RG, "vmss-a") == {"0": "running"}


def test_wait_that_ends_before_the_operations_exits_3(arm: FakeARM, app_env: Callable[..., None],
                                                     capsys: pytest.CaptureFixture[str]):
    """As a Batch or TES wait that runs out of --timeout: exit 3, the operation still running in Azure."""
    arm.operation_delay = 30.0
    arm.add_scale_set(RG, "vmss-a", {"0": "deallocated"})
    app_env()

    assert main(["vmss", "start", "--wait", "--timeout", "4"]) == 3
    out = capsys.readouterr().out
    assert out.startswith(f"start {RG}/vmss-a: accepted;") and "still running after waiting" in out


def test_vmss_dry_run_by_name(arm: FakeARM, app_env: Callable[..., None], capsys: pytest.CaptureFixture[str]):
    arm.add_scale_set(RG, "vmss-b", {"0": "running"})
    arm.add_scale_set(RG, "vmss-c", {"0": "deallocated"})
    app_env()

    code = main(["vmss", "deallocate", "--name", "vmss-b", "--name", "vmss-c", "--dry-run"])

    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0] == f"deallocate {RG}/vmss-b: dry-run; 1 would-deallocate"
    assert out[2] == f"deallocate {RG}/vmss-c: nothing-to-do; 1 skipped"
    assert arm.count("POST") == 0


def test_vmss_exit_codes(arm: FakeARM, app_env: Callable[..., None], capsys: pytest.CaptureFixture[str]):
    arm.add_scale_set(RG, "vmss-a", {"0": "deallocated"})
    arm.add_scale_set(RG, "vmss-b", {"0": "deallocated"})
    arm.inject(method="POST", path="/vmss-b/start$", status=409, body={"error": {
        "code": "OperationNotAllowed", "message": "not now"}})
    app_env("vmss-a,vmss-b")

    assert main(["vmss", "start"]) == 3  # one target failed upstream
    assert main(["vmss", "status", "--name", "vmss-gone"]) == 2  # unknown scale set: the caller's input
    assert main(["vmss", "start", "--name", "bad name"]) == 2
    assert main(["vmss", "start", "--wait", "500"]) == 2
    err = capsys.readouterr().err
    assert "--name: not valid scale set names: 'bad name'" in err
    assert "--wait" in err
    assert "Traceback" not in err


def test_vmss_without_configuration_exits_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    for name in ("AZURE_SUBSCRIPTION_ID", "AZURE_RES_GROUP_NAME", "AZURE_VMSS_NAME"):
        monkeypatch.delenv(name, raising=False)

    assert main(["vmss", "status"]) == 2
    err = capsys.readouterr().err
    assert "AZURE_SUBSCRIPTION_ID" in err and "AZURE_VMSS_NAME" in err


def test_cron_next(capsys: pytest.CaptureFixture[str]):
    code = main(["cron", "next", "0 30 7 * * Mon-Fri", "--after", "2026-03-27T00:00", "--count", "3",
                 "--tz", "Europe/Berlin"])

    assert code == 0
    # 29 March 2026: Berlin moves to summer time between the Friday and the Monday firing.
    assert capsys.readouterr().out.splitlines() == [
        "2026-03-27T07:30:00+01:00", "2026-03-30T07:30:00+02:00", "2026-03-31T07:30:00+02:00"]


def test_the_old_verb_runs_for_one_release_with_a_note_on_stderr(capsys: pytest.CaptureFixture[str]):
    args = ["next", "0 30 7 * * Mon-Fri", "--after", "2026-03-27T00:00", "--count", "2", "--json"]
    assert main(["cron", *args]) == 0
    new = capsys.readouterr()
    assert main(["schedule", *args]) == 0
    old = capsys.readouterr()

    assert old.out == new.out and json.loads(old.out)["firings"]  # --json output stays clean
    assert new.err == ""
    assert old.err == "warning: 'schedule' is deprecated since 2026-12-01 and goes in the next release; use 'cron'\n"


def test_cron_next_json_in_utc(capsys: pytest.CaptureFixture[str]):
    assert main(["cron", "next", "*/20 * * * * *", "--after", "2026-01-01T00:00:00Z", "--count", "2",
                 "--tz", "UTC", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["firings"] == ["2026-01-01T00:00:20+00:00", "2026-01-01T00:00:40+00:00"]


@pytest.mark.parametrize(("argv", "line"), [
    (["cron", "next", "0 61 * * * *"], "error: EXPR: minute field '61': value 61 out of range 0-59"),
    (["cron", "next", "0 0 * * * * *"], "error: EXPR: "),
    (["cron", "next", "0 0 * * *", "--tz", "Mars/Olympus"], "error: --tz: 'Mars/Olympus' is not an IANA"),
    (["cron", "next", "0 0 * * *", "--after", "yesterday"], "error: --after: 'yesterday' is not an ISO-8601"),
])
def test_schedule_next_bad_input_exits_2_in_one_line_naming_it(argv: list[str], line: str,
                                                               capsys: pytest.CaptureFixture[str]):
    """One problem is one line: the field and what is wrong with it, no header repeating it."""
    assert main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(line)


def test_schedule_next_several_problems_are_a_header_and_one_line_each(capsys: pytest.CaptureFixture[str]):
    assert main(["cron", "next", "0 61 * * * *", "--tz", "Mars/Olympus", "--after", "yesterday"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "error: cannot evaluate the schedule: EXPR, --tz, --after"
    assert [line.split(":")[0] for line in err[1:]] == ["  - EXPR", "  - --tz", "  - --after"]


def test_without_credentials_the_one_line_names_the_settings_and_the_sdk_keeps_quiet(tmp_path):
    """DefaultAzureCredential logs a 13-line WARNING listing every credential it tried; the command
    prints only its own line, which says what to set. The IMDS probe goes to a closed loopback port
    (AZURE_POD_IDENTITY_AUTHORITY_HOST moves azure-identity's IMDS endpoint), so no request leaves the machine."""
    import subprocess
    import sys
    from pathlib import Path

    env = {"PATH": str(Path(sys.executable).parent), "HOME": str(tmp_path),
           "AZURE_POD_IDENTITY_AUTHORITY_HOST": "http://127.0.0.1:9",
           "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000", "AZURE_RES_GROUP_NAME": RG,
           "AZURE_VMSS_NAME": "vmss-a"}
    done = subprocess.run([sys.executable, "-m", "batchk8s", "--timeout", "60", "vmss", "status"], env=env,
                          cwd=Path(__file__).resolve().parents[3], capture_output=True, text=True, timeout=120)
    assert done.returncode == 3
    lines = (done.stdout + done.stderr).splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{RG}/vmss-a: failed; AuthenticationFailed: no Azure credential could get a token")
    for setting in ("AZURE_SP_CLIENT_ID", "AZURE_SP_CLIENT_SECRET", "AZURE_AD_TENANT_ID", "AZURE_CLIENT_ID"):
        assert setting in lines[0]
