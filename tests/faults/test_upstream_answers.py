"""Answers read for what they say: ARM operations, Entra ID failures, and the error shape of every answer."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import azure.functions as func
import pytest

from batchk8s import vmss
from batchk8s.deadline import Deadline
from batchk8s.errors import UpstreamError
from batchk8s.settings import Settings, load_settings
from tests.app_index import indexed_functions
from tests.fakes.aad import FakeAAD
from tests.fakes.arm import FakeARM, arm_env
from tests.fakes.https import FakeService

RG = "rg-hpc"
START = r"/vmss-a/start$"
OPERATION = r"/operations/[^/]+$"


@pytest.fixture
def aad(fake_service: Callable[..., FakeService]) -> FakeAAD:
    return fake_service(FakeAAD)  # type: ignore[return-value]


@pytest.fixture
def arm(fake_service: Callable[..., FakeService], aad: FakeAAD) -> FakeARM:
    fake: FakeARM = fake_service(FakeARM, aad=aad, operation_delay=0.2)  # type: ignore[assignment]
    fake.add_scale_set(RG, "vmss-a", {"0": "deallocated"})
    return fake


@pytest.fixture
def settings(aad: FakeAAD, arm: FakeARM) -> Settings:
    return load_settings(arm_env(aad, arm, AZURE_RES_GROUP_NAME=RG, AZURE_VMSS_NAME="vmss-a"))


def start(settings: Settings, wait: float = 0) -> vmss.TargetReport:
    [report] = vmss.apply_action(settings, "start", vmss.configured_targets(settings), wait_seconds=wait,
                                 deadline=Deadline.after(10))
    return report


def test_a_200_whose_body_says_failed_is_a_failure_not_a_completion(arm: FakeARM, settings: Settings):
    arm.inject(method="POST", path=START, status=200, body={
        "status": "Failed", "error": {"code": "AllocationFailed", "message": "Allocation failed in this zone."}})

    report = start(settings)

    assert report.outcome == "failed"
    assert report.operation == {"status": "Failed"}
    assert report.error is not None and report.error["code"] == "AllocationFailed"
    assert [i.outcome for i in report.instances] == ["failed"]


def test_a_200_with_a_body_cut_short_is_not_reported_as_completed(arm: FakeARM, settings: Settings):
    arm.inject(method="POST", path=START, status=200, headers={"Content-Type": "application/json"},
               body='{"status": "Succ')

    report = start(settings)

    assert report.outcome == "accepted"
    assert report.operation == {"status": "Unknown"}
    assert any("could not be read" in warning for warning in report.warnings)


def test_an_operation_status_cut_short_is_not_a_completion(arm: FakeARM, settings: Settings):
    arm.inject(method="GET", path=OPERATION, status=200, headers={"Content-Type": "application/json"},
               body='{"status": "Succeeded', times=50)

    report = start(settings, wait=1.5)

    assert report.outcome != "completed"
    assert arm.count("POST") == 1


def test_a_200_with_no_body_is_done_as_arm_defines(arm: FakeARM, settings: Settings):
    arm.inject(method="POST", path=START, status=200)

    assert start(settings).outcome == "completed"


@pytest.mark.parametrize(("status", "error", "code", "aadsts", "says_settings"), [
    (401, "invalid_client", 7000215, "AADSTS7000215", True),
    (503, "temporarily_unavailable", 90033, "AADSTS90033", False),
    (429, "temporarily_unavailable", 50196, "AADSTS50196", False),
])
def test_entra_failures_say_what_entra_answered(aad: FakeAAD, settings: Settings, status: int, error: str,
                                                code: int, aadsts: str, says_settings: bool):
    aad.inject(method="POST", path=r"/token$", status=status, times=10, body={
        "error": error, "error_description": f"AADSTS{code}: something went wrong.", "error_codes": [code]})

    report = start(settings)

    problem = report.problem
    assert isinstance(problem, UpstreamError)
    assert (problem.status, problem.upstream_status) == (502, status)
    assert problem.code == ("AuthenticationFailed" if says_settings else "TokenServiceUnavailable")
    assert problem.details[0]["aadsts"] == aadsts
    assert ("service principal settings" in problem.message) is says_settings
    assert aadsts in problem.message


def test_entra_unreachable_is_a_502_naming_entra(aad: FakeAAD, settings: Settings):
    aad.inject(method="POST", path=r"/token$", reset=True, times=10)

    problem = start(settings).problem

    assert isinstance(problem, UpstreamError) and problem.code == "TokenServiceUnavailable"
    assert problem.upstream_status is None
    assert "Microsoft Entra ID did not answer" in problem.message


def call(name: str, method: str, path: str, body: bytes = b"", route: dict[str, str] | None = None) -> Any:
    function = indexed_functions()[name].get_user_function()
    response = function(func.HttpRequest(method, f"https://app.example.net{path}", body=body, headers={},
                                         route_params=route or {}, params={}))
    return response.status_code, json.loads(response.get_body())


def test_every_error_answer_carries_details(monkeypatch: pytest.MonkeyPatch):
    from batchk8s import settings as settings_module

    monkeypatch.setenv("AZURE_BATCH_ACCOUNT_URL", "https://127.0.0.1:9")
    settings_module.clear_cache()
    too_large = call("workflow_run", "POST", "/api/workflows/k8s-info/runs", b" " * (1024 * 1024 + 1),
                     {"name": "k8s-info"})
    unknown = call("workflow_run", "POST", "/api/workflows/nope/runs", b"{}", {"name": "nope"})
    assert too_large[0] == 413 and too_large[1]["error"]["details"] == []
    assert unknown[0] == 404 and isinstance(unknown[1]["error"]["details"], list)
