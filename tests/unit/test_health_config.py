"""GET /api/health says nothing about the configuration; GET /api/config says everything but secrets."""

from __future__ import annotations

import json

import azure.functions as func
import pytest

from batchk8s import __version__
from batchk8s import settings as settings_module
from tests.app_index import indexed_functions

SECRET = "cfg-secret-Rt5Yu8Io2Pa9"


def call(name: str, path: str) -> tuple[int, dict]:
    handler = indexed_functions()[name].get_user_function()
    response = handler(func.HttpRequest("GET", f"https://app.example.net{path}", body=b"", headers={}, params={}))
    return response.status_code, json.loads(response.get_body())


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch):
    def use(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        settings_module.clear_cache()

    yield use


def test_health_is_status_and_version_only_even_when_misconfigured(env):
    env(AZURE_VMSS_ACTION="explode", AZURE_SP_CLIENT_SECRET=SECRET)
    status, body = call("health", "/api/health")
    assert status == 200 and body == {"status": "ok", "version": __version__}


def test_config_lists_every_problem_with_secrets_masked(env):
    env(AZURE_VMSS_ACTION="explode", VmssTriggerSchedule="0 61 * * * *", AZURE_SP_CLIENT_SECRET=SECRET,
        WEBSITE_TIME_ZONE="Europe/Berlin", WEBSITE_SKU="Dynamic")
    status, body = call("config", "/api/config")
    assert status == 200
    assert {p["field"] for p in body["problems"]} >= {"AZURE_VMSS_ACTION", "VmssTriggerSchedule", "AZURE_SP_CLIENT_ID"}
    assert body["settings"]["AZURE_SP_CLIENT_SECRET"] == "***" + SECRET[-4:]
    assert SECRET not in json.dumps(body)
    assert body["features"]["vmss-timer"]["ready"] is False
    assert any("not honoured" in warning for warning in body["warnings"])
    # Invalid values are shown as given, not as their defaults, and named under `invalid`.
    assert body["settings"]["AZURE_VMSS_ACTION"] == "explode"
    assert body["settings"]["VmssTriggerSchedule"] == "0 61 * * * *"
    assert sorted(body["invalid"]) == ["AZURE_VMSS_ACTION", "VmssTriggerSchedule"]
