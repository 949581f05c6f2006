"""The fake Batch against the Batch data-plane definition it follows (BatchService.json 2025-06-01).

Each test drives the fake through the plain azure-batch client (none of batchk8s's code), and every
JSON answer the fake gives during a test is checked against the vendored definition for its route
(tests/data/batch-service-2025-06-01.excerpt.json): the properties and their types, formats and
enums, the required properties, and no property the definition does not name. Error answers are
checked against `BatchError`. A fake that drifts from the service fails here, not in a test of ours.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from azure.batch import BatchClient
from azure.batch import models as m
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceExistsError
from azure.identity import ClientSecretCredential
from jsonschema import Draft4Validator, FormatChecker

from tests.conftest import DATA
from tests.fakes.aad import FakeAAD
from tests.fakes.batch import NODE_STATES, FakeBatch, FakeClock, TaskOutcome
from tests.fakes.https import FakeService

SPEC = json.loads((DATA / "batch-service-2025-06-01.excerpt.json").read_text())
DEFINITIONS: dict[str, Any] = SPEC["definitions"]
# The definition lists these as required but says, in the property's own description, when Batch
# leaves them out: "This property will not be present if the Pool is not configured for IPv6."
DOCUMENTED_OMISSIONS = {"BatchNode": {"ipv6Address"}}
ROUTES = [  # (method, path, definition of a 2xx JSON answer)
    ("GET", r"/pools", "BatchPoolListResult"),
    ("GET", r"/pools/[^/]+", "BatchPool"),
    ("GET", r"/pools/[^/]+/nodes", "BatchNodeListResult"),
    ("GET", r"/pools/[^/]+/nodes/[^/]+", "BatchNode"),
    ("GET", r"/jobs", "BatchJobListResult"),
    ("GET", r"/jobs/[^/]+", "BatchJob"),
    ("GET", r"/jobs/[^/]+/tasks", "BatchTaskListResult"),
    ("GET", r"/jobs/[^/]+/tasks/[^/]+", "BatchTask"),
    ("POST", r"/jobs/[^/]+/addtaskcollection", "BatchCreateTaskCollectionResult"),
]
INT32 = range(-2**31, 2**31)
ISO_DURATION = re.compile(r"^P(?!$)(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$")
IMAGE = m.BatchVmImageReference(publisher="canonical", offer="ubuntu-24_04-lts", sku="server", version="latest")

formats = FormatChecker(())


@formats.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    return not isinstance(value, str) or bool(datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo)


@formats.checks("duration")
def _duration(value: object) -> bool:
    return not isinstance(value, str) or bool(ISO_DURATION.match(value))


@formats.checks("uri")
def _uri(value: object) -> bool:
    return not isinstance(value, str) or bool(urlsplit(value).scheme and urlsplit(value).netloc)


@formats.checks("int32")
def _int32(value: object) -> bool:
    return not isinstance(value, int) or value in INT32


def _strict(definitions: dict[str, Any], relax_required: bool) -> dict[str, Any]:
    """The definitions, closed: a vendored object admits only the properties it names (and OData annotations)."""
    closed = {}
    for name, definition in definitions.items():
        definition = dict(definition)
        if definition.get("type") == "object" and "properties" in definition:
            definition["additionalProperties"] = False
            definition["patternProperties"] = {r"^odata\.": {}}
            omitted = DOCUMENTED_OMISSIONS.get(name, set())
            required = [] if relax_required else [p for p in definition.get("required", []) if p not in omitted]
            definition.pop("required", None)
            if required:
                definition["required"] = required
        closed[name] = definition
    return closed


def validator(definition: str, *, selected: bool = False) -> Draft4Validator:
    """A validator for one definition; `selected` answers ($select) may leave out required properties."""
    schema = {"$ref": f"#/definitions/{definition}", "definitions": _strict(DEFINITIONS, selected)}
    return Draft4Validator(schema, format_checker=formats)


def definition_for(method: str, path: str, status: int) -> str | None:
    if status >= 400:
        return "BatchError"
    for route_method, pattern, name in ROUTES:
        if method == route_method and re.fullmatch(pattern, path):
            return name
    return None


def violations(batch: FakeBatch) -> tuple[int, list[str]]:
    """How many answers were checked, and every way one of them breaks its definition."""
    checked, problems = 0, []
    for method, path, query, status, body in batch.answers:
        name = definition_for(method, path, status)
        if name is None:
            continue
        checked += 1
        for error in validator(name, selected="$select" in query).iter_errors(body):
            where = "/".join(str(p) for p in error.absolute_path)
            problems.append(f"{method} {path} -> {status} ({name}) at /{where}: {error.message}")
    return checked, problems


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(speed=0)


@pytest.fixture
def aad(fake_service: Callable[..., FakeService]) -> FakeAAD:
    return fake_service(FakeAAD)  # type: ignore[return-value]


@pytest.fixture
def batch(fake_service: Callable[..., FakeService], aad: FakeAAD, clock: FakeClock) -> Iterator[FakeBatch]:
    """The fake; after the test, every JSON answer it gave must conform to the definition for its route."""
    fake: FakeBatch = fake_service(FakeBatch, aad=aad, clock=clock)  # type: ignore[assignment]
    yield fake
    checked, problems = violations(fake)
    assert checked, "the test produced no answer the definitions cover"
    assert not problems, "\n".join(problems[:20])


@pytest.fixture
def sdk(batch: FakeBatch, aad: FakeAAD) -> BatchClient:
    """The plain azure-batch client (default policies), as any Batch user would build it."""
    credential = ClientSecretCredential(aad.tenant, aad.client_id, aad.client_secret, authority=aad.url,
                                        disable_instance_discovery=True)
    return BatchClient(batch.url, credential)


def pool_options(pool_id: str = "p1", nodes: int = 1, spot: int = 0, **extra: Any) -> m.BatchPoolCreateOptions:
    vm = m.VirtualMachineConfiguration(image_reference=IMAGE, node_agent_sku_id="batch.node.ubuntu 24.04")
    start = m.BatchStartTask(command_line="/bin/bash -c true", wait_for_success=True, max_task_retry_count=1)
    return m.BatchPoolCreateOptions(id=pool_id, vm_size="standard_d2_v3", virtual_machine_configuration=vm,
                                    target_dedicated_nodes=nodes, target_low_priority_nodes=spot, start_task=start,
                                    **extra)


def job_options(job_id: str = "j1", deps: bool = True, pool_id: str = "p1") -> m.BatchJobCreateOptions:
    return m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id), uses_task_dependencies=deps)


def task(task_id: str, *after: str) -> m.BatchTaskCreateOptions:
    return m.BatchTaskCreateOptions(id=task_id, command_line="/bin/bash -c 'echo hi'",
                                    depends_on=m.BatchTaskDependencies(task_ids=list(after)) if after else None)


def ready_pool(sdk: BatchClient, clock: FakeClock, pool_id: str = "p1", **extra: Any) -> None:
    sdk.create_pool(pool_options(pool_id, **extra))
    clock.advance(600)


def error_values(error: HttpResponseError) -> dict[str, str]:
    return {detail.code: detail.message for detail in error.error.details}


# --- the checker itself ----------------------------------------------------------------------------


def test_the_checker_rejects_what_the_definition_forbids():
    """A check that cannot fail proves nothing: these answers break BatchNode in four different ways."""
    when = "2026-01-05T08:00:00Z"
    node = {"id": "n", "url": "https://x/pools/p/nodes/n", "state": "idle", "stateTransitionTime": when,
            "lastBootTime": when, "allocationTime": when, "ipAddress": "10.0.0.4",
            "affinityId": "TVM:n", "vmSize": "standard_d2_v3", "totalTasksRun": 0, "virtualMachineInfo": {}}
    check = validator("BatchNode")
    assert not list(check.iter_errors(node))
    assert list(check.iter_errors({**node, "state": "sleeping"}))  # not a BatchNodeState
    assert list(check.iter_errors({**node, "stateTransitionTime": "yesterday"}))  # not a date-time
    assert list(check.iter_errors({**node, "colour": "blue"}))  # a property the definition does not name
    assert list(check.iter_errors({k: v for k, v in node.items() if k != "vmSize"}))  # a required one missing


def test_the_fake_knows_exactly_the_node_states_of_the_definition():
    assert list(NODE_STATES) == DEFINITIONS["BatchNodeState"]["enum"]


# --- refusals --------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad_id", ["has space", "x" * 65, "dots.not.allowed", "ümlaut"])
def test_invalid_pool_id_is_refused_with_batch_error_shape(sdk: BatchClient, bad_id: str):
    with pytest.raises(HttpResponseError) as caught:
        sdk.create_pool(pool_options(bad_id))
    assert caught.value.status_code == 400
    assert caught.value.error.code == "InvalidPropertyValue"
    assert error_values(caught.value)["PropertyName"] == "id"
    assert "RequestId:" in caught.value.error.message


def test_pool_exists_is_a_409_case_insensitively(sdk: BatchClient):
    sdk.create_pool(pool_options("Pool-A"))
    with pytest.raises(ResourceExistsError) as caught:
        sdk.create_pool(pool_options("pool-a"))
    assert caught.value.error.code == "PoolExists"


def test_missing_node_agent_sku_is_refused(sdk: BatchClient):
    spec = pool_options()
    spec.virtual_machine_configuration.node_agent_sku_id = "batch.node.centos 7"
    with pytest.raises(HttpResponseError) as caught:
        sdk.create_pool(spec)
    assert (caught.value.status_code, caught.value.error.code) == (400, "InvalidPropertyValue")


def test_job_exists_and_invalid_job_id(sdk: BatchClient, clock: FakeClock):
    ready_pool(sdk, clock)
    sdk.create_job(job_options())
    with pytest.raises(ResourceExistsError) as caught:
        sdk.create_job(job_options("J1"))
    assert caught.value.error.code == "JobExists"
    with pytest.raises(HttpResponseError) as invalid:
        sdk.create_job(job_options("bad/id"))
    assert invalid.value.error.code in ("InvalidPropertyValue", "InvalidUri")
    assert invalid.value.status_code == 400


def test_task_exists_single_add_and_collection(sdk: BatchClient, clock: FakeClock):
    ready_pool(sdk, clock)
    sdk.create_job(job_options())
    sdk.create_task("j1", task("a"))
    with pytest.raises(ResourceExistsError) as caught:
        sdk.create_task("j1", task("A"))
    assert caught.value.error.code == "TaskExists"
    result = sdk.create_task_collection("j1", m.BatchTaskGroup(task_values=[task("a"), task("b")]))
    statuses = {r.task_id: (r.status, r.error.code if r.error else None) for r in result.result_values}
    assert statuses == {"a": ("clienterror", "TaskExists"), "b": ("success", None)}


def test_more_than_100_tasks_in_one_call_is_refused(sdk: BatchClient, clock: FakeClock, batch: FakeBatch):
    ready_pool(sdk, clock)
    sdk.create_job(job_options())
    with pytest.raises(HttpResponseError) as caught:
        sdk.create_task_collection("j1", m.BatchTaskGroup(task_values=[task(f"t{i}") for i in range(101)]))
    assert (caught.value.status_code, caught.value.error.code) == (413, "RequestBodyTooLarge")
    assert not batch.jobs["j1"]["tasks"]  # nothing half-added


def test_dependencies_on_a_job_without_them_are_refused(sdk: BatchClient, clock: FakeClock):
    ready_pool(sdk, clock)
    sdk.create_job(job_options(deps=False))
    result = sdk.create_task_collection("j1", m.BatchTaskGroup(task_values=[task("a"), task("b", "a")]))
    codes = {r.task_id: (r.status, r.error.code if r.error else None) for r in result.result_values}
    assert codes == {"a": ("success", None), "b": ("clienterror", "TaskDependenciesNotSpecifiedOnJob")}


def test_a_token_the_fake_did_not_issue_is_refused(batch: FakeBatch):
    class Stranger:
        def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            return AccessToken("not-issued-by-entra", 4102444800)

    client = BatchClient(batch.url, Stranger())
    with pytest.raises(ClientAuthenticationError) as caught:
        client.get_pool("p1")
    assert caught.value.status_code == 401
    assert batch.answers[-1][4]["code"] == "AuthenticationFailed"


def test_an_unknown_path_is_invalid_uri(batch: FakeBatch, sdk: BatchClient):
    from azure.core.rest import HttpRequest

    with pytest.raises(HttpResponseError) as caught:
        sdk.send_request(HttpRequest("GET", f"{batch.url}/poolz?api-version=2025-06-01"))
    assert (caught.value.status_code, caught.value.error.code) == (400, "InvalidUri")
    assert error_values(caught.value) == {"RequestUri": "/poolz"}


def test_deleting_pool_and_job_answer_being_deleted(sdk: BatchClient, clock: FakeClock, batch: FakeBatch):
    batch.delete_seconds = 120
    ready_pool(sdk, clock)
    sdk.create_job(job_options())
    sdk._delete_job_internal("j1")
    sdk._delete_pool_internal("p1")
    assert (sdk.get_job("j1").state, sdk.get_pool("p1").state) == ("deleting", "deleting")
    for again in (lambda: sdk.create_job(job_options()), lambda: sdk._delete_job_internal("j1"),
                  lambda: sdk.create_task("j1", task("a"))):
        with pytest.raises(HttpResponseError) as caught:
            again()
        assert (caught.value.status_code, caught.value.error.code) == (409, "JobBeingDeleted")
        assert caught.value.error.message.startswith("The specified job has been marked for deletion")
    for again in (lambda: sdk.create_pool(pool_options()), lambda: sdk._delete_pool_internal("p1")):
        with pytest.raises(HttpResponseError) as caught:
            again()
        assert (caught.value.status_code, caught.value.error.code) == (409, "PoolBeingDeleted")
    clock.advance(120)
    assert not [j.id for j in sdk.list_jobs()] and not [p.id for p in sdk.list_pools()]
    sdk.create_pool(pool_options())  # the id is free again


# --- simulation ------------------------------------------------------------------------------------


def test_nodes_boot_then_run_their_start_task_then_go_idle(sdk: BatchClient, clock: FakeClock, batch: FakeBatch):
    sdk.create_pool(pool_options(nodes=2))
    assert sdk.get_pool("p1").allocation_state == "resizing"
    assert {n.state for n in sdk.list_nodes("p1")} == {"starting"}
    clock.advance(batch.node_boot_seconds + 1)
    assert sdk.get_pool("p1").allocation_state == "steady"
    assert {n.state for n in sdk.list_nodes("p1")} == {"waitingforstarttask"}
    clock.advance(batch.start_task.seconds)
    nodes = list(sdk.list_nodes("p1"))
    assert {n.state for n in nodes} == {"idle"}
    assert {(n.start_task_info.exit_code, n.start_task_info.result) for n in nodes} == {(0, "success")}


@pytest.mark.parametrize("state", DEFINITIONS["BatchNodeState"]["enum"])
def test_any_node_can_be_put_in_any_state_of_the_definition(sdk: BatchClient, clock: FakeClock, batch: FakeBatch,
                                                            state: str):
    ready_pool(sdk, clock, nodes=1, spot=1)
    spot = next(n.id for n in sdk.list_nodes("p1") if not n.is_dedicated)
    batch.set_node_state("p1", spot, state)
    node = sdk.get_node("p1", spot)
    assert node.state == state and node.is_dedicated is False
    assert node.scheduling_state == ("disabled" if state == "offline" else "enabled")


def test_a_node_that_stops_being_usable_takes_no_task_and_requeues_its_running_one(sdk: BatchClient, clock: FakeClock,
                                                                                   batch: FakeBatch):
    ready_pool(sdk, clock, nodes=0, spot=1)
    sdk.create_job(job_options())
    batch.default_task = TaskOutcome(seconds=60)
    sdk.create_task("j1", task("a"))
    clock.advance(10)
    assert sdk.get_task("j1", "a").state == "running"
    batch.set_node_state("p1", 0, "preempted")
    clock.advance(600)
    requeued = sdk.get_task("j1", "a")
    assert (requeued.state, requeued.execution_info.requeue_count) == ("active", 1)
    assert sdk.list_nodes("p1").next().running_tasks_count == 0


def test_tasks_beyond_the_free_slots_queue(sdk: BatchClient, clock: FakeClock, batch: FakeBatch):
    ready_pool(sdk, clock, nodes=2, task_slots_per_node=2)
    sdk.create_job(job_options())
    batch.default_task = TaskOutcome(seconds=30)
    sdk.create_task_collection("j1", m.BatchTaskGroup(task_values=[task(f"t{i}") for i in range(6)]))
    clock.advance(1)
    states = [t.state for t in sdk.list_tasks("j1")]
    assert states.count("running") == 4 and states.count("active") == 2  # 2 nodes x 2 slots
    assert sorted(n.running_task_slots_count for n in sdk.list_nodes("p1")) == [2, 2]
    clock.advance(30)
    assert [t.state for t in sdk.list_tasks("j1")].count("running") == 2  # the queued two, in freed slots
    clock.advance(30)
    assert {t.state for t in sdk.list_tasks("j1")} == {"completed"}


def test_a_task_needing_more_slots_than_a_node_has_never_runs(sdk: BatchClient, clock: FakeClock):
    ready_pool(sdk, clock, task_slots_per_node=2)
    sdk.create_job(job_options())
    sdk.create_task("j1", m.BatchTaskCreateOptions(id="big", command_line="/bin/true", required_slots=3))
    clock.advance(600)
    assert sdk.get_task("j1", "big").state == "active"


def test_lists_page_at_1000_items_with_a_next_link(sdk: BatchClient, clock: FakeClock, batch: FakeBatch):
    ready_pool(sdk, clock, nodes=0)
    sdk.create_job(job_options())
    for start in range(0, 1001, 100):
        sdk.create_task_collection("j1", m.BatchTaskGroup(task_values=[task(f"t{i}") for i in
                                                                        range(start, min(start + 100, 1001))]))
    batch.reset_log()
    listed = [t.id for t in sdk.list_tasks("j1")]
    assert len(listed) == 1001 and len(set(listed)) == 1001
    assert batch.count("GET", r"^/jobs/j1/tasks$") == 2  # 1000, then the one past the boundary
    pages = [body for method, path, _, _, body in batch.answers if path == "/jobs/j1/tasks"]
    assert [len(page["value"]) for page in pages] == [1000, 1]
    assert "odata.nextLink" in pages[0] and "odata.nextLink" not in pages[1]
    with pytest.raises(HttpResponseError) as caught:
        list(sdk.list_tasks("j1", max_results=1001))
    assert (caught.value.status_code, caught.value.error.code) == (400, "InvalidQueryParameterValue")


def test_add_collection_can_answer_servererror_per_task(sdk: BatchClient, clock: FakeClock, batch: FakeBatch):
    ready_pool(sdk, clock)
    sdk.create_job(job_options())
    batch.add_server_errors["b"] = 1
    first = sdk.create_task_collection("j1", m.BatchTaskGroup(task_values=[task("a"), task("b")]))
    results = {r.task_id: r for r in first.result_values}
    assert (results["a"].status, results["b"].status) == ("success", "servererror")
    assert results["b"].error.code == "InternalError" and "b" not in batch.jobs["j1"]["tasks"]
    again = sdk.create_task_collection("j1", m.BatchTaskGroup(task_values=[task("b")]))
    assert again.result_values[0].status == "success"


def test_task_views_through_their_life(sdk: BatchClient, clock: FakeClock, batch: FakeBatch):
    """Active, running and completed tasks (one failed, one blocked behind it) as Batch describes them."""
    ready_pool(sdk, clock, task_slots_per_node=4)
    sdk.create_job(job_options())
    batch.task_outcomes["b"] = TaskOutcome(20, exit_code=3, stderr="boom\n")
    sdk.create_task_collection("j1", m.BatchTaskGroup(task_values=[task("a"), task("b"), task("c", "b")]))
    first = {t.id: t.state for t in sdk.list_tasks("j1")}
    clock.advance(60)
    ended = {t.id: t for t in sdk.list_tasks("j1")}
    assert first == {"a": "running", "b": "running", "c": "active"}
    assert ended["b"].execution_info.failure_info.code == "FailureExitCode" and ended["c"].state == "active"
    assert sdk.get_job("j1").state == "active" and sdk.get_pool("p1").state == "active"
