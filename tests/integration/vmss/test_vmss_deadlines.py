"""The doors' deadlines reach the wire: an ARM that never answers is a 504 / exit 3 in time, from each door."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from unittest import mock

import azure.functions as func
import pytest

from batchk8s import deadline as deadline_module
from batchk8s.cli import main
from tests.app_index import indexed_functions
from tests.fakes.arm import FakeARM
from tests.integration.vmss.conftest import RG

NEVER = {"method": "GET", "path": r"/virtualMachineScaleSets/vmss-a$", "delay": 30.0, "times": 10}


def test_the_cli_timeout_bounds_the_whole_command(arm: FakeARM, app_env: Callable[..., None],
                                                  capsys: pytest.CaptureFixture[str]):
    arm.add_scale_set(RG, "vmss-a", {"0": "deallocated"})
    app_env()
    arm.inject(**NEVER)
    started = time.monotonic()

    code = main(["vmss", "status", "--timeout", "2", "--json"])

    assert time.monotonic() - started < 3.0
    assert code == 3
    report = json.loads(capsys.readouterr().out)["scaleSets"][0]
    assert report["error"]["code"] == "UpstreamTimeout"
    assert report["error"]["message"] == (f"Azure Resource Manager did not answer in time while working on scale set "
                                          f"{RG}/vmss-a")


def test_an_http_function_answers_504_within_its_deadline(arm: FakeARM, app_env: Callable[..., None],
                                                          monkeypatch: pytest.MonkeyPatch):
    arm.add_scale_set(RG, "vmss-a", {"0": "deallocated"})
    app_env()
    arm.inject(**NEVER)
    monkeypatch.setattr(deadline_module, "HTTP_SECONDS", 2.0)  # the door's 220 s, shortened for the test
    function = indexed_functions()["vmss_status"].get_user_function()
    started = time.monotonic()

    response = function(func.HttpRequest("GET", "https://app.example.net/api/vmss", body=b"", headers={},
                                         route_params={}, params={}))

    assert time.monotonic() - started < 3.0
    assert response.status_code == 504
    error = json.loads(response.get_body())["error"]
    assert error["code"] == "UpstreamTimeout"
    assert error["details"] == [{"service": "Azure Resource Manager", "operation": f"scale set {RG}/vmss-a"}]


@pytest.mark.clock  # the timer stamps its history entries
def test_the_timer_stops_within_its_deadline(arm: FakeARM, app_env: Callable[..., None],
                                             monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture):
    arm.add_scale_set(RG, "vmss-a", {"0": "deallocated"})
    app_env(AZURE_VMSS_ACTION="start", VmssTriggerSchedule="0 0 7 * * *")
    arm.inject(**NEVER)
    monkeypatch.setattr(deadline_module, "TIMER_SECONDS", 2.0)  # functionTimeout less a margin, shortened
    timer = indexed_functions()["vmss_schedule"].get_user_function()
    started = time.monotonic()

    timer(mock.Mock(spec=func.TimerRequest, past_due=False))

    assert time.monotonic() - started < 3.0
    assert "did not answer in time" in caplog.text
    assert arm.count("POST") == 0
