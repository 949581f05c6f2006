"""The OpenAPI document: valid 3.0, the same routes as the indexed app, served and printed as documented."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate
from openapi_spec_validator.versions.shortcuts import get_spec_version

from batchk8s.cli import main
from batchk8s.openapi import document, markdown
from batchk8s.openapi import operations as declared
from batchk8s.openapi.schemas import any_case
from batchk8s.settings import GALLERY_IMAGE_ID, VM_SIZE
from tests.app_index import indexed_functions

ROOT = Path(__file__).resolve().parents[2]
HTTP_DOC = ROOT / "docs" / "http-api.md"


def http_functions() -> dict[str, Any]:
    return {name: f.get_bindings()[0] for name, f in indexed_functions().items()
            if f.get_bindings()[0].type == "httpTrigger"}


def operations(spec: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    return {op["operationId"]: (path, method, op) for path, methods in spec["paths"].items()
            for method, op in methods.items()}


def test_the_document_is_valid_openapi_3_0() -> None:
    spec = document()
    version = get_spec_version(spec)
    assert (version.major, version.minor) == ("3", "0")  # what API Management and most generators import
    validate(spec)
    validate(document("https://myapp.azurewebsites.net"))


def test_every_indexed_route_is_documented_and_nothing_else() -> None:
    """Route, method, auth level and path parameters of each function, versus its operation (id = name)."""
    indexed = {name: (f"/api/{binding.route}", [str(getattr(m, "value", m)).lower() for m in binding.methods],
                      str(getattr(binding.auth_level, "value", binding.auth_level)).lower())
               for name, binding in http_functions().items()}
    # The host checks function keys; the TES 1.1 routes (gateway schemes) pass the host and check credentials
    # themselves, so the host sees them as anonymous.
    documented = {name: (path, [method], "function" if op["security"] and "functionKeyHeader" in op["security"][0]
                         else "anonymous")
                  for name, (path, method, op) in operations(document()).items()}
    assert documented == indexed
    for name, (path, _, op) in operations(document()).items():
        in_path = sorted(re.findall(r"\{(\w+)\}", path))
        declared = sorted(p["name"] for p in op.get("parameters", []) if p["in"] == "path")
        assert declared == in_path, name


def test_keys_on_every_route_but_health() -> None:
    spec = document()
    schemes = spec["components"]["securitySchemes"]
    assert (schemes["functionKeyHeader"]["in"], schemes["functionKeyHeader"]["name"]) == ("header", "x-functions-key")
    assert (schemes["functionKeyQuery"]["in"], schemes["functionKeyQuery"]["name"]) == ("query", "code")
    for name, (path, _, op) in operations(spec).items():
        if name == "health":
            assert op["security"] == [] and "401" not in op["responses"]
        elif path.startswith("/api/ga4gh/tes/v1/"):  # engines send bearer or basic credentials, checked by the handler
            assert op["security"] == [{"tesGatewayBearer": []}, {"tesGatewayBasic": []}], name
            assert "WWW-Authenticate" in op["responses"]["401"]["headers"], name
        else:
            assert op["security"] == [{"functionKeyHeader": []}, {"functionKeyQuery": []}], name
            assert "401" in op["responses"], name


def test_long_operations_answer_202_with_a_location_and_errors_share_one_shape() -> None:
    long_running = {"vmss_action", "pool_create", "pool_resize", "pool_delete", "workflow_run", "job_delete",
                    "tes_create", "tes_cancel"}
    for name, (_, _, op) in operations(document()).items():
        responses = op["responses"]
        assert ("202" in responses) == (name in long_running), name
        if "202" in responses:
            assert responses["202"]["headers"]["Location"]["required"] is True
        for status, response in responses.items():
            if status >= "400" and status != "401":
                assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
        if "requestBody" in op:
            assert {"400", "413"} <= set(responses), name


def test_stateful_links_point_at_real_operations_and_parameters() -> None:
    spec = document()
    known = operations(spec)
    links = {(name, link["operationId"]) for name, (_, _, op) in known.items()
             for response in op["responses"].values() for link in response.get("links", {}).values()}
    assert {("pool_create", "pool_show"), ("pool_create", "pool_resize"), ("pool_create", "pool_delete"),
            ("tes_create", "tes_get"), ("tes_create", "tes_cancel"), ("workflow_run", "job_show")} <= links
    for _, target in links:
        assert target in known


def test_error_schema_matches_what_the_app_raises() -> None:
    from jsonschema import Draft4Validator

    from batchk8s.errors import InputError, UpstreamError

    schema = document()["components"]["schemas"]["Error"]
    for error in (InputError.for_field("id", "bad"), UpstreamError("x", upstream_status=503, code="ServerBusy")):
        Draft4Validator(schema).validate(error.to_dict())


@settings(max_examples=200, deadline=None, database=None, derandomize=True)
@given(st.one_of(st.from_regex(VM_SIZE), st.from_regex(GALLERY_IMAGE_ID), st.text(max_size=40),
                 st.sampled_from(["Standard_D2_v3", "STANDARD_D2_V3\n", "\u017ftandard_d2", "basic_a1",
                                  "/SUBSCRIPTIONS/s/resourcegroups/r/providers/microsoft.compute/galleries/g/images/i"])))
def test_case_insensitive_patterns_read_the_same_without_the_flag(value: str) -> None:
    """OpenAPI patterns have no flags: the spelled-out pattern accepts exactly what the validator accepts."""
    for pattern in (VM_SIZE, GALLERY_IMAGE_ID):
        spelled = re.compile(any_case(pattern))
        assert not spelled.flags & re.IGNORECASE
        assert bool(pattern.fullmatch(value)) == bool(spelled.fullmatch(value)), (pattern.pattern, value)


def test_served_at_api_openapi_json_with_this_app_as_server() -> None:
    function = indexed_functions()["openapi"].get_user_function()
    response = function(func.HttpRequest("GET", "https://myapp.azurewebsites.net/api/openapi.json", body=b"",
                                         headers={}))
    assert response.status_code == 200 and response.mimetype == "application/json"
    served = json.loads(response.get_body())
    assert served["servers"] == [{"url": "https://myapp.azurewebsites.net"}]
    assert served == json.loads(json.dumps(document("https://myapp.azurewebsites.net")))


def test_the_command_prints_the_document(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["openapi", "--settings", str(ROOT / "tests/data/empty.settings.json")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(json.dumps(document()))
    assert printed["servers"][0]["url"] == "https://{app}.azurewebsites.net"
    assert main(["openapi", "--server", "https://myapp.azurewebsites.net/", "--settings",
                 str(ROOT / "tests/data/empty.settings.json")]) == 0
    assert json.loads(capsys.readouterr().out)["servers"] == [{"url": "https://myapp.azurewebsites.net"}]
    assert main(["openapi", "--server", "myapp"]) == 2
    assert "--server" in capsys.readouterr().err


def test_docs_http_api_md_is_the_rendered_document() -> None:
    assert HTTP_DOC.read_text(encoding="utf-8") == markdown(document()), (
        "docs/http-api.md is stale: run `python -m batchk8s openapi --markdown > docs/http-api.md`")


def test_every_operation_is_in_the_rendered_reference_and_the_readme_links_it() -> None:
    text = HTTP_DOC.read_text(encoding="utf-8")
    for operation in declared():
        assert f"### `{operation.method.upper()} {operation.path}`" in text
    assert "docs/http-api.md" in (ROOT / "README.md").read_text(encoding="utf-8")
