"""No secret value ever reaches a log line, an HTTP response, CLI output or an error message."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest

from batchk8s import settings as settings_module
from batchk8s.cli import main
from tests.fakes.aad import FakeAAD
from tests.fakes.arm import FakeARM, arm_env
from tests.fakes.https import FakeService
from tests.integration.batch.conftest import blob_endpoint
from tests.integration.vmss.conftest import RG
from tests.integration.vmss.test_vmss_functions import function

SP_SECRET = "sp-secret-7Hq2ZxV9LmP4wR8t"
WRONG_SECRET = "wrong-sp-secret-Kd83JsQ0pLx1"
OTHER_SECRETS = {
    "AZURE_ACR_USER_PWD": "acr-pwd-Vb6Nq1ZrT5yE",
    "BATCH_USER_PWD": "batch-pwd-Ws4Hc8XmJ2uA",
    "TES_PASSWORD": "tes-pwd-Pf7Lk3RdY9oI",
    "TES_TOKEN": "tes-token-Gz5Mn2QwE8vB",
    "AZURE_STORAGE_ACCOUNT_KEY": "c3RvcmFnZS1rZXktWXo0TmE4SmsyUXc=",
}


@pytest.mark.clock
@pytest.mark.azurite
def test_no_secret_in_logs_responses_or_output(fake_service: Callable[..., FakeService],
                                               monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture,
                                               capsys: pytest.CaptureFixture[str], azurite: str):
    aad: FakeAAD = fake_service(FakeAAD, client_secret=SP_SECRET)  # type: ignore[assignment]
    arm: FakeARM = fake_service(FakeARM, aad=aad)  # type: ignore[assignment]
    arm.add_scale_set(RG, "vmss-a", {"0": "deallocated"})
    arm.add_scale_set(RG, "vmss-b", {"0": "running"})
    arm.inject(method="POST", path="/vmss-b/deallocate$", status=409, body={"error": {
        "code": "OperationNotAllowed", "message": "not now"}})
    env = arm_env(aad, arm, AZURE_RES_GROUP_NAME=RG, AZURE_VMSS_NAME="vmss-a,vmss-b,vmss-gone",
                  AZURE_VMSS_ACTION="start", VmssTriggerSchedule="0 0 7 * * *", AZURE_ACR_NAME="registry",
                  AZURE_ACR_USER="pull", BATCH_USER_NAME="hpcuser", TES_USERNAME="tes",
                  AZURE_STORAGE_ACCOUNT_NAME="artifacts", **OTHER_SECRETS,
                  # Local storage that refuses this account's key at once: the timers' state and history
                  # writes fail (and must not show the key) without waiting on a storage host that is not there.
                  AZURE_STORAGE_BLOB_ENDPOINT=blob_endpoint(azurite))

    def use(values: dict[str, str]) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        settings_module.clear_cache()

    caplog.set_level(logging.DEBUG)
    responses: list[str] = []

    def http(name: str, method: str, path: str, route: dict[str, str] | None = None, body: bytes = b"") -> None:
        response = function(name)(func.HttpRequest(method, f"https://app.example.net{path}", body=body,
                                                   headers={}, route_params=route or {}, params={}))
        responses.append(response.get_body().decode())

    use(env)
    http("vmss_status", "GET", "/api/vmss")
    http("vmss_action", "POST", "/api/vmss/start", {"action": "start"}, b'{"waitSeconds": 3}')
    http("vmss_action", "POST", "/api/vmss/deallocate", {"action": "deallocate"}, b'{"names": ["vmss-b"]}')
    http("config", "GET", "/api/config")
    function("vmss_schedule")(TimerRequest(past_due=True))
    main(["vmss", "status"])
    main(["vmss", "deallocate", "--json"])
    main(["config", "check"])

    use({"AZURE_SP_CLIENT_SECRET": WRONG_SECRET})  # the token endpoint refuses: errors must not echo it
    http("vmss_status", "GET", "/api/vmss")
    http("vmss_action", "POST", "/api/vmss/start", {"action": "start"})
    function("vmss_schedule")(TimerRequest(past_due=False))
    main(["vmss", "start"])
    main(["vmss", "status", "--json"])

    captured = capsys.readouterr()
    everything = "\n".join([caplog.text, *responses, captured.out, captured.err,
                            *(json.dumps(r.__dict__, default=str) for r in caplog.records)])
    assert "AuthenticationFailed" in everything and "OperationNotAllowed" in everything  # failures did happen
    for secret in (SP_SECRET, WRONG_SECRET, *OTHER_SECRETS.values()):
        assert secret not in everything
        assert secret[-8:] not in everything
