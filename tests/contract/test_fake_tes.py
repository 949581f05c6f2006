"""The fake TES against the TES 1.1 OpenAPI document (tests/data/tes-openapi-1.1.0.yaml), in both modes.

A sample of every kind of answer (service-info, create, get and list in each view at each stage
of a task's life, cancel) is read over HTTPS and validated against the response schema the
document gives for that operation. In `spec` mode every answer must validate. In `tesk` mode the
fake follows tesk-api 1.1.0, which speaks TES 1.0, and the answers must differ from 1.1 in exactly
the fields listed in TESK_DIFFERENCES (each traced to tesk-api's sources in tests/fakes/tes.py) and
nowhere else: a fake that drifts from either definition fails here.

Two facts the check needs that the document only refers to:
- `tesServiceInfo` / `tesServiceType` extend GA4GH service-info 1.0.0's `Service` / `ServiceType`
  (ga4gh-discovery/ga4gh-service-info, tag v1.0.0, `service-info.yaml`), referred to by URL. Their
  required fields are restated in SERVICE_INFO_1_0_0 below so the check runs offline.
- The document's prose says a MINIMAL task holds only `id` and `state`, while its `tesTask` schema
  requires `executors`: the spec contradicts itself, so MINIMAL answers are checked with that one
  requirement lifted (and, separately, to hold exactly `id` and `state`).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import yaml
from jsonschema import Draft4Validator
from referencing import Registry
from referencing.jsonschema import DRAFT4

from batchk8s.problems import path_of
from tests.conftest import DATA
from tests.fakes.batch import FakeClock
from tests.fakes.tes import MODES, FakeTES

SPEC = yaml.safe_load((DATA / "tes-openapi-1.1.0.yaml").read_text(encoding="utf-8"))
SPEC_URI = "urn:batchk8s:tes-openapi-1.1.0"
MINIMAL_URI = "urn:batchk8s:tes-openapi-1.1.0:minimal"
SERVICE_INFO_URI = "https://raw.githubusercontent.com/ga4gh-discovery/ga4gh-service-info/v1.0.0/service-info.yaml"
SERVICE_INFO_1_0_0 = {"components": {"schemas": {
    "Service": {"type": "object", "required": ["id", "name", "type", "organization", "version"],
                "properties": {"id": {"type": "string"}, "name": {"type": "string"},
                               "type": {"$ref": "#/components/schemas/ServiceType"},
                               "organization": {"type": "object", "required": ["name", "url"],
                                                "properties": {"name": {"type": "string"}, "url": {"type": "string"}}},
                               "description": {"type": "string"}, "contactUrl": {"type": "string"},
                               "documentationUrl": {"type": "string"}, "createdAt": {"type": "string"},
                               "updatedAt": {"type": "string"}, "environment": {"type": "string"},
                               "version": {"type": "string"}}},
    "ServiceType": {"type": "object", "required": ["group", "artifact", "version"],
                    "properties": {"group": {"type": "string"}, "artifact": {"type": "string"},
                                   "version": {"type": "string"}}},
}}}
# Where tesk-api 1.1.0's answers leave TES 1.1, as (operation, field, JSON Schema keyword); list
# indexes are written []. Everything else it answers validates against the 1.1 document.
TESK_DIFFERENCES = {
    # service-info.yaml: `artifact: TES`; 1.1 allows only "tes"
    ("GET /service-info", "type.artifact", "enum"),
    # TesTaskLog.outputs stays null (and null is left out): 1.1 requires it
    ("GET /tasks/{id}", "logs[].outputs", "required"),
    ("GET /tasks", "tasks[].logs[].outputs", "required"),
    # an executor's exit_code is set only once its pod terminated: 1.1 requires it
    ("GET /tasks/{id}", "logs[].logs[].exit_code", "required"),
    ("GET /tasks", "tasks[].logs[].logs[].exit_code", "required"),
    # cancel answers ResponseEntity<Object>(HttpStatus.OK): no body, where 1.1 has a JSON object
    ("POST /tasks/{id}:cancel", "", "body"),
}
RESPONSES = {"GET /service-info": ("/service-info", "get"), "POST /tasks": ("/tasks", "post"),
             "GET /tasks": ("/tasks", "get"), "GET /tasks/{id}": ("/tasks/{id}", "get"),
             "POST /tasks/{id}:cancel": ("/tasks/{id}:cancel", "post")}
TASK = {"name": "contract", "description": "every field a submission can carry",
        "inputs": [{"name": "in", "path": "/data/in.txt", "content": "inline input", "type": "FILE"},
                   {"path": "/data/ref", "url": "https://example.org/ref.fa", "type": "FILE"}],
        "outputs": [{"path": "/data/out.txt", "url": "https://example.org/out.txt", "type": "FILE"}],
        "resources": {"cpu_cores": 2, "ram_gb": 4.0, "disk_gb": 10.0, "preemptible": False},
        "executors": [{"image": "alpine", "command": ["sh", "-c", "echo hi"], "workdir": "/data",
                       "env": {"A": "1"}},
                      {"image": "alpine", "command": ["true"]}],
        "volumes": ["/scratch"], "tags": {"project": "contract"}}


def _registry() -> Registry:
    minimal = copy.deepcopy(SPEC)
    minimal["components"]["schemas"]["tesTask"]["required"].remove("executors")
    return Registry().with_resources([(SPEC_URI, DRAFT4.create_resource(SPEC)),
                                      (MINIMAL_URI, DRAFT4.create_resource(minimal)),
                                      (SERVICE_INFO_URI, DRAFT4.create_resource(SERVICE_INFO_1_0_0))])


REGISTRY = _registry()


def response_ref(operation: str) -> str:
    path, method = RESPONSES[operation]
    return SPEC["paths"][path][method]["responses"][200]["content"]["application/json"]["schema"]["$ref"]


def differences(operation: str, body: bytes, minimal: bool) -> set[tuple[str, str, str]]:
    """Where `body` leaves the document's response schema for `operation`, as (operation, field, keyword)."""
    try:
        instance = json.loads(body)
    except ValueError:
        return {(operation, "", "body")}
    validator = Draft4Validator({"$ref": (MINIMAL_URI if minimal else SPEC_URI) + response_ref(operation)},
                                registry=REGISTRY)
    found = set()
    for error in validator.iter_errors(instance):
        field = re.sub(r"\[\d+\]", "[]", path_of(error.absolute_path))
        if error.validator == "required":
            missing = re.match(r"'(.+)' is a required property", error.message)
            field = f"{field}.{missing[1]}" if field and missing else (missing[1] if missing else field)
        found.add((operation, field, str(error.validator)))
    return found


class Sampler:
    """Reads a fake TES's answers as a client would, keeping (operation, view, body) for each."""

    def __init__(self, tes: FakeTES):
        self.tes = tes
        self.session = requests.Session()
        self.samples: list[tuple[str, str | None, bytes]] = []

    def call(self, operation: str, path: str, view: str | None = None, **kwargs: Any) -> Any:
        method = operation.split()[0]
        params = {"view": view} if view else None
        response = self.session.request(method, self.tes.url + self.tes.base + path, params=params, timeout=10,
                                        **kwargs)
        assert response.status_code == 200, (operation, response.status_code, response.text)
        self.samples.append((operation, view, response.content))
        return response.json() if response.content else None

    def everything(self, clock: FakeClock) -> None:
        info_path = "/tasks/service-info" if self.tes.base == "/v1" else "/service-info"
        self.call("GET /service-info", info_path)
        ids = [self.call("POST /tasks", "/tasks", json={**TASK, "tags": {"fake-outcome": outcome}})["id"]
               for outcome in ("COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR")]
        long_running = self.call("POST /tasks", "/tasks", json={**TASK, "tags": {"fake-seconds": "600"}})["id"]
        for step in (0.5, 1.0, 1.5, 57.0):  # to 0.5 s QUEUED, 1.5 s INITIALIZING, 3 s RUNNING, 60 s ended
            clock.advance(step)
            for view in ("MINIMAL", "BASIC", "FULL"):
                for task_id in (*ids, long_running):
                    self.call("GET /tasks/{id}", f"/tasks/{task_id}", view)
                self.call("GET /tasks", "/tasks", view)
        self.call("POST /tasks/{id}:cancel", f"/tasks/{long_running}:cancel", json={})
        for view in ("MINIMAL", "BASIC", "FULL"):
            self.call("GET /tasks/{id}", f"/tasks/{long_running}", view)


@pytest.fixture(params=MODES)
def sampled(request: pytest.FixtureRequest, fake_service: Callable[..., Any]) -> Iterator[Sampler]:
    clock = FakeClock(speed=0)
    sampler = Sampler(fake_service(FakeTES, mode=request.param, clock=clock))
    sampler.everything(clock)
    yield sampler
    sampler.session.close()


def test_the_sample_covers_every_operation_view_and_state(sampled: Sampler) -> None:
    assert {operation for operation, _, _ in sampled.samples} == set(RESPONSES)
    states = {task["state"] for operation, _, body in sampled.samples if operation == "GET /tasks"
              for task in json.loads(body)["tasks"]}
    assert states == {"QUEUED", "INITIALIZING", "RUNNING", "COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR"}
    assert len(sampled.samples) == 1 + 4 + 4 * 3 * 5 + 1 + 3


def test_the_answers_follow_tes_1_1_or_differ_exactly_where_tesk_api_does(sampled: Sampler) -> None:
    found = set()
    for operation, view, body in sampled.samples:
        found |= differences(operation, body, minimal=view in (None, "MINIMAL"))
    assert found == (TESK_DIFFERENCES if sampled.tes.tesk else set())


def test_views_keep_the_fields_the_spec_names(sampled: Sampler) -> None:
    """MINIMAL: id and state only; BASIC: no stdout/stderr, input content or system logs; FULL: all of them."""
    tesk = sampled.tes.tesk
    for operation, view, body in sampled.samples:
        if not operation.startswith("GET /tasks"):
            continue
        document = json.loads(body)
        tasks = document["tasks"] if operation == "GET /tasks" else [document]
        for task in tasks:
            logs = task.get("logs", [])
            executor_logs = [entry for log in logs for entry in log["logs"]]
            if view == "MINIMAL":
                assert set(task) == {"id", "state"}
            elif view == "BASIC":
                assert all("content" not in entry for entry in task["inputs"])
                assert all("system_logs" not in log for log in logs)
                assert all("stderr" not in entry for entry in executor_logs)
                # tesk-api keeps stdout "" in BASIC (for py-tes); the spec leaves it out
                assert all(entry.get("stdout", "") == "" for entry in executor_logs)
                assert all(("stdout" in entry) is tesk for entry in executor_logs)
            else:
                assert task["inputs"][0]["content"] == "inline input"
                assert all(entry["stdout"] for entry in executor_logs)
            if view != "MINIMAL" and task["state"] != "QUEUED":
                assert logs and logs[0].get("start_time")


def test_tesk_states_are_tes_1_0s(sampled: Sampler) -> None:
    """TES 1.0 (tesk-api's TesState) has neither CANCELING nor PREEMPTED: a cancelled task is CANCELED at once."""
    after_cancel = [json.loads(body)["state"] for operation, _, body in sampled.samples[-3:]]
    assert after_cancel == ["CANCELED"] * 3 if sampled.tes.tesk else ["CANCELING"] * 3
