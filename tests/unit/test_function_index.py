"""The indexed app: exactly these functions, triggers, routes and auth levels, and a lazy cold start."""

from __future__ import annotations

import json
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

HTTP = {
    # name: (methods, route, auth level)
    "health": ("GET", "health", "ANONYMOUS"),
    "config": ("GET", "config", "FUNCTION"),
    "openapi": ("GET", "openapi.json", "FUNCTION"),
    "vmss_timer": ("GET", "vmss/timer", "FUNCTION"),
    "schedule": ("GET", "schedule", "FUNCTION"),  # the old name of vmss_timer, for one release
    "vmss_status": ("GET", "vmss", "FUNCTION"),
    "vmss_action": ("POST", "vmss/{action}", "FUNCTION"),
    "artifacts_upload": ("POST", "artifacts/upload", "FUNCTION"),
    "pool_create": ("POST", "pools", "FUNCTION"),
    "pool_show": ("GET", "pools/{id}", "FUNCTION"),
    "pool_resize": ("POST", "pools/{id}/resize", "FUNCTION"),
    "pool_delete": ("DELETE", "pools/{id}", "FUNCTION"),
    "workflow_list": ("GET", "workflows", "FUNCTION"),
    "workflow_run": ("POST", "workflows/{name}/runs", "FUNCTION"),
    "job_show": ("GET", "jobs/{id}", "FUNCTION"),
    "job_delete": ("DELETE", "jobs/{id}", "FUNCTION"),
    "tes_create": ("POST", "tes/tasks", "FUNCTION"),
    "tes_list": ("GET", "tes/tasks", "FUNCTION"),
    "tes_get": ("GET", "tes/tasks/{id}", "FUNCTION"),
    "tes_cancel": ("POST", "tes/tasks/{id}/cancel", "FUNCTION"),
    "tes_service_info": ("GET", "tes/service-info", "FUNCTION"),
    # The TES 1.1 endpoint: engines send bearer or basic credentials, which the handlers check themselves.
    "tes_gateway_service_info": ("GET", "ga4gh/tes/v1/service-info", "ANONYMOUS"),
    "tes_gateway_create": ("POST", "ga4gh/tes/v1/tasks", "ANONYMOUS"),
    "tes_gateway_list": ("GET", "ga4gh/tes/v1/tasks", "ANONYMOUS"),
    "tes_gateway_get": ("GET", "ga4gh/tes/v1/tasks/{id}", "ANONYMOUS"),
    "tes_gateway_cancel": ("POST", "ga4gh/tes/v1/tasks/{id}:cancel", "ANONYMOUS"),
    "schedules": ("GET", "schedules", "FUNCTION"),
    "schedules_history": ("GET", "schedules/history", "FUNCTION"),
    "schedules_view": ("GET", "schedules/view", "FUNCTION"),
}
TIMERS = {
    "vmss_schedule": "%VmssTriggerSchedule%",
    "schedules_reconcile": "0 * * * * *",
}


@pytest.fixture(scope="module")
def indexed() -> dict[str, dict]:
    """Index a fresh copy of the app the way the host does (get_functions works once per app)."""
    app = runpy.run_path(str(ROOT / "function_app.py"))["app"]
    functions = {}
    for function in app.get_functions():
        functions[function.get_function_name()] = json.loads(function.get_function_json())
    return functions


def trigger(function: dict) -> dict:
    return next(b for b in function["bindings"] if b["type"].endswith("Trigger"))


def test_exactly_the_expected_functions(indexed):
    assert set(indexed) == set(HTTP) | set(TIMERS)


@pytest.mark.parametrize("name", sorted(HTTP))
def test_http_function_route_method_and_auth(indexed, name):
    method, route, auth = HTTP[name]
    binding = trigger(indexed[name])
    assert binding["type"] == "httpTrigger"
    assert binding["route"] == route
    assert [m.upper() for m in binding["methods"]] == [method]
    assert binding["authLevel"].upper() == auth
    outputs = [b for b in indexed[name]["bindings"] if b["direction"].upper() == "OUT"]
    assert [(b["type"], b["name"]) for b in outputs] == [("http", "$return")]


@pytest.mark.parametrize("name", sorted(TIMERS))
def test_timer_functions(indexed, name):
    binding = trigger(indexed[name])
    assert binding["type"] == "timerTrigger"
    assert binding["schedule"] == TIMERS[name]
    assert binding.get("runOnStartup", False) is False
    assert binding.get("useMonitor") is True


def test_timer_schedules_the_app_registers_are_valid_ncrontab(indexed):
    """What the host will evaluate: each registered timer's schedule, a %Setting% resolved as the example
    settings file resolves it."""
    from batchk8s.ncrontab import parse

    example = json.loads((ROOT / "local.settings.json.example").read_text(encoding="utf-8"))["Values"]
    timers = [trigger(f)["schedule"] for f in indexed.values() if trigger(f)["type"] == "timerTrigger"]
    assert timers
    for expression in timers:
        resolved = example[expression.strip("%")] if expression.startswith("%") else expression
        assert parse(resolved).has_seconds, expression


def test_only_health_and_the_self_authenticating_tes_routes_are_anonymous(indexed, monkeypatch):
    """The host checks no key on health and the TES 1.1 routes; each of the latter refuses a call without a
    gateway credential itself (401 with a challenge), before reading the request any further."""
    import azure.functions as func

    from batchk8s import settings
    from tests.app_index import indexed_functions

    anonymous = [name for name, f in indexed.items() if trigger(f).get("authLevel", "").upper() == "ANONYMOUS"]
    gateway = [name for name in anonymous if name != "health"]
    assert anonymous[0] == "health" and gateway == [name for name in HTTP if name.startswith("tes_gateway_")]
    monkeypatch.setenv("TES_GATEWAY_TOKENS", "t" * 40)
    settings.clear_cache()
    for name in gateway:
        method, route, _ = HTTP[name]
        request = func.HttpRequest(method, "https://app.example.net/api/" + route.replace("{id}", "task-1"),
                                   body=b"{}", headers={}, params={}, route_params={"id": "task-1"})
        response = indexed_functions()[name].get_user_function()(request)
        assert response.status_code == 401, name
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="batchk8s-tes"', name


def test_readme_documents_every_route():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [f"{method} /api/{route}" for method, route, _ in HTTP.values()
               if not re.search(rf"{method}\s+/api/{re.escape(route)}(?![\w/])", readme)]
    assert not missing, f"README does not document: {missing}"


def test_the_settings_reference_documents_every_setting():
    """The README links docs/settings.md, generated from the declarations (tests/unit/test_settings_reference.py)."""
    from batchk8s.settings import setting_names

    reference = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    assert [name for name in setting_names() if f"`{name}`" not in reference] == []
    assert "docs/settings.md" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_importing_the_app_loads_no_azure_sdk():
    """A timer-only cold start must not pay for the Batch, Storage, Compute or Identity SDKs."""
    probe = ("import sys, function_app; function_app.app.get_functions();"
             "print(sorted({m.split('.')[1] for m in sys.modules if m.startswith('azure.') and m != 'azure.functions'"
             " and not m.startswith('azure.functions.')}))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
