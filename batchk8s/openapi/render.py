"""Markdown from the OpenAPI document: docs/http-api.md, regenerated with
`python -m batchk8s openapi --markdown > docs/http-api.md` (a test fails when it is stale)."""

from __future__ import annotations

import json
from typing import Any

HEADER = """# HTTP API reference

Generated from the OpenAPI document by `python -m batchk8s openapi --markdown > docs/http-api.md`; edit
`batchk8s/openapi/`, not this file. The document itself: `GET /api/openapi.json` (function key) or
`python -m batchk8s openapi` (no deployed app needed), ready for API Management, client generators and
viewers. Following long operations from pipelines: [pipelines.md](pipelines.md).
"""

AUTH = """## Keys

Every route but `GET /api/health` and the TES 1.1 endpoint needs a function key, sent as the
`x-functions-key` header or the `code` query parameter; without one the Functions host answers 401
before the app runs. The TES 1.1 endpoint (`/api/ga4gh/tes/v1`, for workflow engines) takes a gateway
token as `Authorization: Bearer` or basic credentials instead (docs/tes-gateway.md). Every error
body is `{"error": {"code", "message", "details": [...]}}` (schema `Error` below); `details` names each
offending field.
"""


def _schema_name(schema: dict[str, Any]) -> str:
    return schema["$ref"].rsplit("/", 1)[1] if "$ref" in schema else ""


def _type(schema: dict[str, Any]) -> str:
    """A short human reading of a schema: type, range, enum, pattern."""
    if "$ref" in schema:
        name = _schema_name(schema)
        return f"[{name}](#{name.lower()})"
    if "anyOf" in schema:
        return " or ".join(_type(part) for part in schema["anyOf"])
    kind = schema.get("type", "any")
    if kind == "array":
        kind = f"array of {_type(schema.get('items', {}))}"
        if "minItems" in schema or "maxItems" in schema:
            kind += f" ({schema.get('minItems', 0)}-{schema.get('maxItems', 'any')} items)"
    rules = []
    if "enum" in schema:
        rules.append(" \\| ".join(f"`{value}`" for value in schema["enum"]))
    if "minimum" in schema or "maximum" in schema:
        low = schema.get("minimum", "")
        rules.append(f"{'>' if schema.get('exclusiveMinimum') else ''}{low}-{schema.get('maximum', '')}".strip("-"))
    if "pattern" in schema:
        rules.append(f"pattern `{schema['pattern']}`")
    if schema.get("nullable"):
        rules.append("or null")
    return kind + (f": {', '.join(rules)}" if rules else "")


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _properties(schema: dict[str, Any]) -> list[str]:
    required = set(schema.get("required", ()))
    lines = ["| field | type | required | description |", "| --- | --- | --- | --- |"]
    for name, field in schema.get("properties", {}).items():
        default = f" (default `{json.dumps(field['default'])}`)" if "default" in field else ""
        lines.append(f"| `{name}` | {_cell(_type(field))} | {'yes' if name in required else ''} | "
                     f"{_cell(field.get('description', ''))}{default} |")
    return lines


def _operation(path: str, method: str, operation: dict[str, Any]) -> list[str]:
    lines = [f"### `{method.upper()} {path}`", "", f"`{operation['operationId']}`: {operation['summary']}.", ""]
    if operation.get("description"):
        lines += [operation["description"], ""]
    schemes = {name for entry in operation["security"] for name in entry}
    key = ("none (anonymous)" if not schemes else "function key" if "functionKeyHeader" in schemes
           else "gateway token (Bearer) or basic credentials")
    lines += ["Key: " + key, ""]
    parameters = operation.get("parameters", [])
    if parameters:
        lines += ["| parameter | in | type | description |", "| --- | --- | --- | --- |"]
        for parameter in parameters:
            default = parameter["schema"].get("default")
            note = f" (default `{default}`)" if default is not None else ""
            lines.append(f"| `{parameter['name']}` | {parameter['in']} | {_cell(_type(parameter['schema']))} | "
                         f"{_cell(parameter.get('description', ''))}{note} |")
        lines.append("")
    body = operation.get("requestBody")
    if body:
        schema = body["content"]["application/json"]["schema"]
        lines += [f"Body ({'required' if body['required'] else 'optional'}): {_type(schema)}", ""]
    lines += ["| status | meaning | body |", "| --- | --- | --- |"]
    for status, response in operation["responses"].items():
        content = response.get("content", {}).get("application/json", {}).get("schema")
        extra = " + `Location`" if "Location" in response.get("headers", {}) else ""
        lines.append(f"| {status} | {_cell(response['description'])} | "
                     f"{_type(content) if content else ''}{extra} |")
    return [*lines, ""]


def render(spec: dict[str, Any]) -> str:
    lines = [HEADER, AUTH, "## Operations", "", "| method | path | operationId | success |",
             "| --- | --- | --- | --- |"]
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            success = ", ".join(status for status in operation["responses"] if status.startswith("2"))
            note = " (deprecated)" if operation.get("deprecated") else ""
            lines.append(f"| {method.upper()} | `{path}` | `{operation['operationId']}`{note} | {success} |")
    lines.append("")
    for tag in spec["tags"]:
        lines += [f"## {tag['name']}", ""]
        for path, methods in spec["paths"].items():
            for method, operation in methods.items():
                if tag["name"] in operation["tags"]:
                    lines += _operation(path, method, operation)
    lines += ["## Schemas", ""]
    for name, schema in spec["components"]["schemas"].items():
        lines += [f"### {name}", ""]
        if schema.get("description"):
            lines += [_cell(schema["description"]), ""]
        if schema.get("properties"):
            lines += [*_properties(schema), ""]
        else:
            lines += [_type(schema), ""]
    return "\n".join(lines).rstrip() + "\n"
