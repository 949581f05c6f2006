"""schemathesis runs against the app: every phase (examples, coverage, fuzzing, stateful) through the indexed
functions, with the fakes and Azurite behind.

Checks: no server error, status codes, content types and headers as documented, bodies valid against
their schemas, invalid (negative) inputs refused with a documented 4xx; the stateful phase follows the
document's links (create a pool -> read -> resize -> delete; submit a TES task -> get -> cancel).

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
from collections import Counter
from typing import Any

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events, from_schema

from batchk8s.openapi import OPERATIONS
from tests.fuzz.adapter import FunctionsWsgi
from tests.fuzz.conftest import KEY

pytestmark = pytest.mark.azurite

EXAMPLES = int(os.environ.get("BATCHK8S_FUZZ_EXAMPLES", "12"))
SEED = os.environ.get("BATCHK8S_FUZZ_SEED", "20261201")
HEADERS = {"x-functions-key": KEY}
CHECKS_OFF = ("unsupported_method", "positive_data_acceptance", "ignored_auth")
FINISHED = (events.ScenarioFinished, events.FuzzScenarioFinished)


def fuzz_config() -> SchemathesisConfig:
    return SchemathesisConfig.from_dict({
        **({} if SEED == "random" else {"seed": int(SEED)}),
        "generation": {"mode": "all", "max-examples": EXAMPLES, "allow-x00": False},
        "checks": {name: {"enabled": False} for name in CHECKS_OFF},
        "headers": HEADERS,
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


@pytest.mark.timeout(600)
def test_schemathesis_finds_nothing(wsgi_app: FunctionsWsgi) -> None:
    api = schemathesis.openapi.from_wsgi("/api/openapi.json", wsgi_app, headers=HEADERS, config=fuzz_config())
    found: list[str] = []
    phases = {}
    for event in from_schema(api).execute():
        found += failures(event)
        if isinstance(event, events.PhaseFinished):
            phases[event.phase.name.value] = event.status
    print(phases, Counter((name, status) for name, status, _ in wsgi_app.calls))
    spent = Counter()
    for name, _, seconds in wsgi_app.calls:
        spent[name] += seconds
    print(spent.most_common())
    assert not found, "\n\n".join(dict.fromkeys(found))
    called = Counter(name for name, _, _ in wsgi_app.calls)
    assert set(called) == {operation.name for operation in OPERATIONS}, called  # every operation was reached
