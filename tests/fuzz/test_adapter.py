"""The WSGI adapter stands in for the Functions host: keys, route matching and the request it builds."""

from __future__ import annotations

import json
from typing import Any

import pytest
from werkzeug.test import Client

from tests.app_index import indexed_functions
from tests.fuzz.adapter import FunctionsWsgi

KEY = "adapter-key"


@pytest.fixture
def client() -> Client:
    return Client(FunctionsWsgi(indexed_functions(), KEY))


def test_keys_are_required_except_on_health(client: Client) -> None:
    assert client.get("/api/health").status_code == 200
    answer = client.get("/api/openapi.json")
    assert (answer.status_code, answer.data) == (401, b"")
    assert client.get("/api/openapi.json", headers={"x-functions-key": "wrong"}).status_code == 401
    assert client.get("/api/openapi.json", headers={"x-functions-key": KEY}).status_code == 200
    assert client.get(f"/api/openapi.json?code={KEY}").status_code == 200


def test_undeclared_routes_and_methods_are_404_as_on_the_host(client: Client) -> None:
    assert client.put("/api/pools", headers={"x-functions-key": KEY}).status_code == 404
    assert client.get("/api/nowhere", headers={"x-functions-key": KEY}).status_code == 404
    assert client.get("/health").status_code == 404


def test_literal_segments_win_and_encoded_slashes_stay_in_a_parameter() -> None:
    seen: list[Any] = []
    wsgi = FunctionsWsgi(indexed_functions(), KEY)
    for route in wsgi.routes:
        if route.name in ("tes_get", "tes_service_info"):
            object.__setattr__(route, "call", lambda request, name=route.name: seen.append(
                (name, dict(request.route_params), dict(request.params), request.url)) or _ok())
    client = Client(wsgi)
    client.get("/api/tes/service-info", headers={"x-functions-key": KEY})
    client.get("/api/tes/tasks/a%2Fb?view=BASIC&view=FULL", headers={"x-functions-key": KEY})
    client.get("/api/tes/tasks/x", query_string="tag_key=a&tag_key=", headers={"x-functions-key": KEY})
    assert seen == [("tes_service_info", {}, {}, "http://localhost/api/tes/service-info"),
                    ("tes_get", {"id": "a/b"}, {"view": "BASIC,FULL"},
                     "http://localhost/api/tes/tasks/a%2Fb?view=BASIC&view=FULL"),
                    ("tes_get", {"id": "x"}, {"tag_key": "a,"}, "http://localhost/api/tes/tasks/x?tag_key=a&tag_key=")]


def _ok() -> Any:
    import azure.functions as func

    return func.HttpResponse(json.dumps({}), mimetype="application/json")


def test_a_complex_segment_matches_its_literal_from_the_right_as_aspnet_core_routing_does() -> None:
    """`{id}:cancel` (the TES cancel route): the id is everything before the last `:cancel`, matched without
    regard to case; an empty id does not match; a GET of the same path is the `{id}` route's, id and all."""
    wsgi = FunctionsWsgi(indexed_functions(), KEY)
    cancel = next(route for route in wsgi.routes if route.name == "tes_gateway_cancel")
    get = next(route for route in wsgi.routes if route.name == "tes_gateway_get")
    prefix = ["ga4gh", "tes", "v1", "tasks"]
    assert cancel.match([*prefix, "task-1:cancel"]) == {"id": "task-1"}
    assert cancel.match([*prefix, "ns:task-1:cancel"]) == {"id": "ns:task-1"}
    assert cancel.match([*prefix, "task-1:CANCEL"]) == {"id": "task-1"}
    assert cancel.match([*prefix, "task-1:cancel:cancel"]) == {"id": "task-1:cancel"}
    assert cancel.match([*prefix, ":cancel"]) is None
    assert cancel.match([*prefix, "task-1"]) is None
    assert cancel.match([*prefix, "task-1:cancelled"]) is None
    assert get.match([*prefix, "task-1:cancel"]) == {"id": "task-1:cancel"}
