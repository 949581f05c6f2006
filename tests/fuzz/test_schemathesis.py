"""schemathesis runs against the app: every phase (examples, coverage, fuzzing, stateful) through the indexed
functions, with the fakes and Azurite behind.

Checks: no server error, status codes, content types and headers as documented, bodies valid against
their schemas, invalid (negative) inputs refused with a documented 4xx. schemathesis' stateful phase
walks the document's links (and links it infers) at random; the chain test below follows the two
lifecycles every run, step by step through the links, with every check on every answer (create a pool
-> read -> resize -> read -> delete; submit a TES task -> get -> cancel -> get).

`make test` runs a bounded number of examples per operation with a fixed seed; `make fuzz` sets
BATCHK8S_FUZZ_EXAMPLES higher and BATCHK8S_FUZZ_SEED=random for a longer, different run each time.
Left out, on purpose: `unsupported_method` (the Functions host answers an undeclared method with 404,
not 405: that is the host's behaviour, not the app's), `positive_data_acceptance` (a schema may be
looser than its validator where OpenAPI 3.0 cannot state a rule; the reverse, that anything the
document forbids is refused, is checked), and `ignored_auth` (keys are enforced by the host, which
the adapter stands in for).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events, from_schema

from batchk8s.openapi import operations
from tests.fuzz.adapter import FunctionsWsgi
from tests.fuzz.conftest import GATEWAY_TOKEN, KEY

pytestmark = pytest.mark.azurite

EXAMPLES = int(os.environ.get("BATCHK8S_FUZZ_EXAMPLES", "20"))
SEED = os.environ.get("BATCHK8S_FUZZ_SEED", "20261201")
# The function key for the app's routes, the gateway token for the TES 1.1 endpoint (each ignores the other).
HEADERS = {"x-functions-key": KEY, "Authorization": f"Bearer {GATEWAY_TOKEN}"}
CHECKS_OFF = ("unsupported_method", "positive_data_acceptance", "ignored_auth")
FINISHED = (events.ScenarioFinished, events.FuzzScenarioFinished)


def fuzz_config() -> SchemathesisConfig:
    return SchemathesisConfig.from_dict({
        **({} if SEED == "random" else {"seed": int(SEED)}),
        "generation": {"mode": "all", "max-examples": EXAMPLES, "allow-x00": False, "database": "none",
                       "deterministic": SEED != "random"},
        "checks": {name: {"enabled": False} for name in CHECKS_OFF},
        # Chains need valid bodies to get anywhere: positive data only, and more scenarios than one operation gets.
        "phases": {"stateful": {"max-steps": 8, "generation": {"mode": "positive", "max-examples": 3 * EXAMPLES}}},
        "headers": HEADERS,
        # The key here is a test value; a tag_key or page_token shown as [Filtered] cannot be reproduced.
        "output": {"sanitization": {"enabled": False}},
    })


def failures(event: Any) -> list[str]:
    """What one engine event reports as failed, readable: operation, check, title, message and a curl line."""
    if isinstance(event, events.NonFatalError | events.FatalError):
        return [f"{getattr(event, 'label', 'run')}: error: {event.value!r}"]
    if not isinstance(event, FINISHED) or event.status not in (Status.FAILURE, Status.ERROR):
        return []
    found = []
    for checks in event.recorder.checks.values():
        for check in checks:
            if check.status == Status.FAILURE and check.failure_info is not None:
                failure = check.failure_info.failure
                found.append(f"{event.recorder.label}: {check.name}: {failure.title}\n{failure.message}\n"
                             f"{check.failure_info.code_sample}")
    return found or [f"{event.recorder.label}: {event.status}"]


@pytest.fixture(scope="module")
def api(wsgi_app: FunctionsWsgi) -> Any:
    """The document as the app serves it, loaded through the adapter (GET /api/openapi.json is exercised too)."""
    return schemathesis.openapi.from_wsgi("/api/openapi.json", wsgi_app, headers=HEADERS, config=fuzz_config())


@pytest.mark.timeout(600)
def test_schemathesis_finds_nothing(api: Any, wsgi_app: FunctionsWsgi) -> None:
    found: list[str] = []
    phases: dict[str, Status] = {}
    for event in from_schema(api).execute():
        found += failures(event)
        if isinstance(event, events.PhaseFinished):
            phases[event.phase.name.value] = event.status
    assert not found, f"seed {api.config.seed}:\n" + "\n\n".join(dict.fromkeys(found))
    for phase in ("examples", "coverage", "fuzzing", "stateful"):
        assert phases.get(phase) == Status.SUCCESS, phases
    answered = {name for name, _, _ in wsgi_app.calls}
    assert answered == {operation.name for operation in operations()}


def resolve(expression: str, body: Any) -> Any:
    """A link parameter's runtime expression; the document uses `$response.body#/<JSON pointer>` only."""
    prefix = "$response.body#"
    assert expression.startswith(prefix), expression
    value = body
    for part in expression[len(prefix):].split("/")[1:]:
        value = value[int(part)] if isinstance(value, list) else value[part.replace("~1", "/").replace("~0", "~")]
    return value


def send(api: Any, operation_id: str, **parts: Any) -> tuple[Any, Any]:
    """Build a case for the operation with these parts, call it through the adapter and run every check on it."""
    case = api.find_operation_by_id(operation_id).Case(headers=HEADERS, **parts)
    response = case.call()
    case.validate_response(response)
    return case, response


CHAINS = {
    # source operation, its body, then (link name, body) of each step taken from the source's links
    "pool": ("pool_create", {"id": "linked-pool", "dedicatedNodes": 1},
             [("GetPool", None), ("ResizePool", {"dedicatedNodes": 2}), ("GetPool", None), ("DeletePool", None)]),
    "tes": ("tes_create", {"executors": [{"image": "alpine", "command": ["echo", "hi"]}]},
            [("GetTask", None), ("CancelTask", None), ("GetTask", None)]),
    "tes-1.1": ("tes_gateway_create", {"executors": [{"image": "alpine", "command": ["echo", "hi"]}]},
                [("GetTask", None), ("CancelTask", None), ("GetTask", None)]),
}


@pytest.mark.parametrize("chain", sorted(CHAINS))
def test_links_lead_from_each_created_resource_through_its_lifecycle(api: Any, chain: str) -> None:
    """create a pool -> read -> resize -> read -> delete; submit a TES task -> get -> cancel -> get: each step
    finds its id through the document's link from the create response, and every answer passes every check."""
    source, body, steps = CHAINS[chain]
    _, created = send(api, source, body=body)
    path, method = next((path, method) for path, methods in api.raw_schema["paths"].items()
                        for method, operation in methods.items() if operation["operationId"] == source)
    ok = next(status for status, response in api.raw_schema["paths"][path][method]["responses"].items()
              if "links" in response)
    assert str(created.status_code) == ok, created.text
    links = api.raw_schema["paths"][path][method]["responses"][ok]["links"]
    for name, step_body in steps:
        link = links[name]
        parameters = {key: resolve(value, created.json()) for key, value in link["parameters"].items()}
        extra = {} if step_body is None else {"body": step_body}
        _, response = send(api, link["operationId"], path_parameters=parameters, **extra)
        assert 200 <= response.status_code < 300, (name, response.status_code, response.text)
