"""The OpenAPI 3.0 document of the HTTP API, built from the operations and schemas beside this module.

`document()` is pure and cheap (no Azure SDK is imported), so `GET /api/openapi.json` and
`python -m batchk8s openapi` build it on each call; docs/http-api.md is `markdown(document())`.
"""

from __future__ import annotations

from typing import Any

from batchk8s import DEPRECATED_SINCE, __version__
from batchk8s.openapi.operations import STATUS_TEXT, Operation, operations
from batchk8s.openapi.schemas import COMPONENTS, ref

OPENAPI_VERSION = "3.0.3"
DEFAULT_SERVER = "https://{app}.azurewebsites.net"
KEY_SCHEMES = ("functionKeyHeader", "functionKeyQuery")
GATEWAY_SCHEMES = ("tesGatewayBearer", "tesGatewayBasic")
GATEWAY_401 = {"description": "No valid gateway credential: the `WWW-Authenticate` header names the schemes accepted",
               "headers": {"WWW-Authenticate": {"required": True, "schema": {"type": "string"},
                                                "description": "the accepted schemes, e.g. Bearer "
                                                               "realm=\"batchk8s-tes\""}},
               "content": {"application/json": {"schema": ref("Error")}}}

DEPRECATION_HEADERS = {
    "Deprecation": {"required": True, "schema": {"type": "string", "pattern": "^@[0-9]+$"},
                    "description": f"RFC 9745: deprecated since {DEPRECATED_SINCE} (epoch seconds)"},
    "Link": {"required": True, "schema": {"type": "string"},
             "description": "RFC 8288: the route that replaces this one, rel=\"successor-version\""}}

__all__ = ["OPENAPI_VERSION", "Operation", "document", "markdown", "operations"]


def _error(status: int) -> dict[str, Any]:
    if status == 401:
        return {"description": STATUS_TEXT[401]}
    return {"description": STATUS_TEXT[status], "content": {"application/json": {"schema": ref("Error")}}}


def _success(operation: Operation, status: int) -> dict[str, Any]:
    response: dict[str, Any] = {"description": STATUS_TEXT[status]}
    if operation.result:
        response["content"] = {operation.media: {"schema": ref(operation.result)}}
    if status == 202:
        response["headers"] = {"Location": {
            "description": f"the status URL to poll ({operation.location}) until the operation is done",
            "required": True, "schema": {"type": "string", "format": "uri"}}}
    if operation.links and status == operation.ok:
        response["links"] = operation.links
    return response


def _operation(operation: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {str(status): _success(operation, status)
                                 for status in sorted((operation.ok, *operation.also_ok))}
    errors = set(operation.errors) | (set() if operation.anonymous else {401})
    if operation.body:
        errors |= {400, 413}
    responses.update({str(status): _error(status) for status in sorted(errors)})
    if operation.gateway:
        responses["401"] = GATEWAY_401
    body: dict[str, Any] = {
        "operationId": operation.name, "tags": [operation.tag], "summary": operation.summary,
        "responses": dict(sorted(responses.items())),
    }
    if operation.description:
        body["description"] = operation.description
    if operation.successor:
        body["deprecated"] = True
        body["description"] = (f"Deprecated since {DEPRECATED_SINCE}: the old route of `{operation.method.upper()} "
                               f"{operation.successor}`, which answers the same; it goes in the next release. "
                               "Every answer carries `Deprecation` and `Link` headers.")
        for status, response in responses.items():
            if status != "401":
                response["headers"] = {**response.get("headers", {}), **DEPRECATION_HEADERS}
    if operation.parameters:
        body["parameters"] = [dict(parameter) for parameter in operation.parameters]
    if operation.body:
        body["requestBody"] = {"required": operation.body_required,
                               "content": {"application/json": {"schema": ref(operation.body)}}}
    schemes = () if operation.anonymous else GATEWAY_SCHEMES if operation.gateway else KEY_SCHEMES
    body["security"] = [{scheme: []} for scheme in schemes]
    return body


def document(server: str | None = None) -> dict[str, Any]:
    """The whole OpenAPI document; `server` is the app's base URL (scheme and host) when known."""
    paths: dict[str, dict[str, Any]] = {}
    listed = operations()
    for operation in listed:
        paths.setdefault(operation.path, {})[operation.method] = _operation(operation)
    servers: list[dict[str, Any]] = [{"url": server}] if server else [{
        "url": DEFAULT_SERVER, "description": "the function app",
        "variables": {"app": {"default": "APP", "description": "the function app's name"}}}]
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "batchk8s", "version": __version__,
            "description": "Scheduled compute control, Kubernetes on Azure Batch, workflows and GA4GH TES on "
                           "Azure Functions. Long operations answer 202 with a `Location` to poll. Every error "
                           "is `{\"error\": {\"code\", \"message\", \"details\"}}`.",
        },
        "servers": servers,
        "tags": [{"name": name} for name in dict.fromkeys(operation.tag for operation in listed)],
        "paths": paths,
        "components": {
            "schemas": COMPONENTS,
            "securitySchemes": {
                "functionKeyHeader": {"type": "apiKey", "in": "header", "name": "x-functions-key",
                                      "description": "a function or host key of the app"},
                "functionKeyQuery": {"type": "apiKey", "in": "query", "name": "code",
                                     "description": "the same key as a query parameter"},
                "tesGatewayBearer": {"type": "http", "scheme": "bearer",
                                     "description": "a token of TES_GATEWAY_TOKENS (the TES 1.1 endpoint only)"},
                "tesGatewayBasic": {"type": "http", "scheme": "basic",
                                    "description": "TES_GATEWAY_USERNAME and TES_GATEWAY_PASSWORD (the TES 1.1 "
                                                   "endpoint only)"},
            },
        },
    }


def markdown(spec: dict[str, Any]) -> str:
    from batchk8s.openapi.render import render

    return render(spec)
