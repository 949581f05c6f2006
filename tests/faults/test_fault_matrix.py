"""Faults x operations: what the app does when the service behind it misbehaves.

Every cell runs one operation through the real SDK clients under a short deadline (conftest.DEADLINE)
with one fault injected into the service it calls, and asserts:

* bounded attempts: the faulted request reached the service at most `max_attempts` times;
* an answer within the deadline (plus a little for the answer itself);
* the documented status and code (docs/reliability.md has the table);
* nothing done twice: the change the operation makes happened at most once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from batchk8s import storage, vmss
from batchk8s.batch import jobs
from batchk8s.batch.client import batch_client
from batchk8s.credentials import TOKEN_RETRIES
from batchk8s.deadline import Deadline
from batchk8s.errors import BatchK8sError
from batchk8s.functions.vmss import _raise_if_nothing_succeeded
from batchk8s.tes import client_for
from tests.faults.conftest import DEADLINE, World, error_body, unique

pytestmark = pytest.mark.azurite

SLACK = 0.75  # the answer itself, and a loaded shared machine
PERSISTENT = 50  # a fault this many times: more than any bounded retry loop will ask


@dataclass(frozen=True)
class Operation:
    name: str
    service: str  # the fake the faults go into
    method: str
    path: str  # the request the faults hit (a regex on the path)
    max_attempts: int
    uses_token: bool
    run: Callable[[World, Deadline], Any]
    done: Callable[[World], int]  # how many times the operation's change happened
    unreachable_code: str = "ServiceUnreachable"
    bad_answer_code: str | None = "UpstreamBadAnswer"  # None: a cut-short answer is not read by this operation


# --- operations ----------------------------------------------------------------------------------


def _vmss_read(world: World, deadline: Deadline) -> Any:
    reports = vmss.power_states(world.settings, vmss.configured_targets(world.settings), deadline=deadline)
    _raise_if_nothing_succeeded(reports)
    return reports


def _vmss_start(world: World, deadline: Deadline) -> Any:
    reports = vmss.apply_action(world.settings, "start", vmss.configured_targets(world.settings), deadline=deadline)
    _raise_if_nothing_succeeded(reports)
    return reports


def _prepare_job(world: World) -> str:
    job_id = unique("job-")
    batch_client(world.settings).create_job(jobs.job_spec(job_id, "k8s-pool"))
    return job_id


def _job_create(world: World, deadline: Deadline) -> Any:
    return jobs.create_job(world.settings, "fault-job", "k8s-pool", deadline=deadline)


def _tasks_add(world: World, deadline: Deadline) -> Any:
    from batchk8s.batch.tasks import TaskSpec, to_task_options

    spec = TaskSpec(id="only-task", command_line="/bin/true")
    job_id = world.__dict__.setdefault("job_id", "")
    return jobs.add_tasks(world.settings, job_id, [to_task_options(spec, lambda c: c, None)], deadline=deadline)


def _blob_read(world: World, deadline: Deadline) -> Any:
    return storage.read_blob_text(world.settings, world.__dict__["container"], "state.json", deadline=deadline)


def _blob_write(world: World, deadline: Deadline) -> Any:
    return storage.write_blob_if_match(world.settings, world.__dict__["container"], "written.json", '{"n": 1}', None,
                                       deadline=deadline)


def _tes_get(world: World, deadline: Deadline) -> Any:
    return client_for(world.settings).within(deadline).get(world.__dict__["task_id"])


def _tes_create(world: World, deadline: Deadline) -> Any:
    task = {"name": "fault", "executors": [{"image": "alpine", "command": ["true"]}]}
    return client_for(world.settings).within(deadline).create(task)


def _count_blob(world: World) -> int:
    try:
        return int(storage.read_blob_text(world.settings, world.__dict__["container"], "written.json") == '{"n": 1}')
    except BatchK8sError:
        return 0


OPERATIONS = [
    Operation("arm-read", "arm", "GET", r"/virtualMachineScaleSets/vmss-a$", 4, True, _vmss_read, lambda w: 0),
    Operation("arm-start", "arm", "POST", r"/vmss-a/start$", 4, True, _vmss_start, lambda w: len(w.arm.actions),
              bad_answer_code=None),
    Operation("batch-job", "batch", "POST", r"^/jobs$", 7, True, _job_create, lambda w: len(w.batch.jobs),
              bad_answer_code=None),
    Operation("batch-tasks", "batch", "POST", r"/addtaskcollection$", 7 * 4, True, _tasks_add,
              lambda w: sum(len(job["tasks"]) for job in w.batch.jobs.values())),
    Operation("blob-read", "blob", "GET", r"/state\.json$", 4, False, _blob_read, lambda w: 0, bad_answer_code=None),
    Operation("blob-write", "blob", "PUT", r"/written\.json$", 4, False, _blob_write, _count_blob,
              bad_answer_code=None),
    Operation("tes-get", "tes", "GET", r"/tasks/[^/:]+$", 4, False, _tes_get, lambda w: len(w.tes.tasks) - 1,
              unreachable_code="TesUnreachable", bad_answer_code="TesBadAnswer"),
    Operation("tes-create", "tes", "POST", r"/tasks$", 4, False, _tes_create, lambda w: len(w.tes.tasks) - 1,
              unreachable_code="TesUnreachable", bad_answer_code="TesBadAnswer"),
]


def _prepare(world: World, operation: Operation) -> None:
    """Start the service and put in place what the operation reads, before any fault."""
    world.fake(operation.service)
    if operation.name == "batch-tasks":
        world.__dict__["job_id"] = _prepare_job(world)
    if operation.service == "blob":
        container = world.__dict__["container"] = unique("faults-")
        storage.ensure_container(world.settings, container)
        storage.write_blob_if_match(world.settings, container, "state.json", '{"ok": true}', None)
    if operation.service == "tes":
        world.__dict__["task_id"] = client_for(world.settings).create(
            {"executors": [{"image": "alpine", "command": ["true"]}]})
    if operation.service == "arm":  # a first read fetches the token: a cell times its operation, not Entra's
        _vmss_read(world, Deadline.after(30))
    if operation.service == "batch":
        list(batch_client(world.settings).list_jobs())
    world.fake(operation.service).reset_log()


# --- faults ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    status: int | None = None  # None: the operation succeeds
    code: str | None = None
    upstream: int | None = None
    attempts: int | None = None  # exactly this many, else at most the operation's bound


def _in_an_hour() -> str:
    return format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)


def _throttle(retry_after: str | None, times: int = 1) -> Callable[[World, Operation], None]:
    def inject(world: World, operation: Operation) -> None:
        body, headers = error_body(operation.service, "TooManyRequests", "The request is being throttled.")
        if retry_after is not None:
            headers["Retry-After"] = retry_after
        world.fake(operation.service).inject(method=operation.method, path=operation.path, status=429,
                                             headers=headers, body=body, times=times)

    return inject


def _failing(status: int) -> Callable[[World, Operation], None]:
    def inject(world: World, operation: Operation) -> None:
        code = {500: "InternalError", 503: "ServerBusy"}[status]
        body, headers = error_body(operation.service, code, "The server is having a bad day.")
        world.fake(operation.service).inject(method=operation.method, path=operation.path, status=status,
                                             headers=headers, body=body, times=PERSISTENT)

    return inject


def _reset(world: World, operation: Operation) -> None:
    world.fake(operation.service).inject(method=operation.method, path=operation.path, reset=True, times=PERSISTENT)


def _slow(world: World, operation: Operation) -> None:
    world.fake(operation.service).latency = 0.3


def _never(world: World, operation: Operation) -> None:
    world.fake(operation.service).inject(method=operation.method, path=operation.path, delay=30.0, times=PERSISTENT)


def _truncated(world: World, operation: Operation) -> None:
    world.fake(operation.service).inject(method=operation.method, path=operation.path, status=200,
                                         headers={"Content-Type": "application/json"}, body='{"value": [{"id": "a',
                                         times=PERSISTENT)


def _token_down(world: World, operation: Operation) -> None:
    from batchk8s.credentials import clear_cache

    clear_cache()  # no cached token: the next call must ask the token endpoint
    world.aad.reset_log()
    world.aad.inject(method="POST", path=r"/token$", status=503, times=PERSISTENT,
                     body={"error": "temporarily_unavailable", "error_description": "AADSTS90033: A transient error "
                           "has occurred. Please try again.", "error_codes": [90033]})


FAULTS: dict[str, tuple[Callable[[World, Operation], None], Callable[[Operation], Expect | None]]] = {
    "429 Retry-After 1": (_throttle("1"), lambda op: Expect(attempts=2)),
    "429 Retry-After 3600": (_throttle("3600"), lambda op: Expect(502, upstream=429, attempts=1)),
    "429 Retry-After negative": (_throttle("-5"), lambda op: Expect(attempts=2)),
    "429 Retry-After garbage": (_throttle("soon, maybe"), lambda op: Expect(attempts=2)),
    "429 Retry-After HTTP-date": (lambda w, op: _throttle(_in_an_hour())(w, op),
                                  lambda op: Expect(502, upstream=429, attempts=1)),
    "429 without Retry-After": (_throttle(None, PERSISTENT), lambda op: Expect(502, upstream=429)),
    "500": (_failing(500), lambda op: Expect(502, upstream=500)),
    "503": (_failing(503), lambda op: Expect(502, upstream=503)),
    "connection reset": (_reset, lambda op: Expect(502, code=op.unreachable_code)),
    "slow": (_slow, lambda op: Expect(attempts=1)),
    "never answering": (_never, lambda op: Expect(504, code="UpstreamTimeout")),
    "truncated body": (_truncated, lambda op: Expect(502, code=op.bad_answer_code) if op.bad_answer_code else None),
    "token endpoint down": (_token_down, lambda op: Expect(502, code="TokenServiceUnavailable", upstream=503)
                            if op.uses_token else None),
}

# Cells where the operation's own rules change the generic expectation, and why.
SPECIFIC: dict[tuple[str, str], Expect] = {
    # Batch answers an add-collection with one result per task: a body without them leaves the task
    # unconfirmed, so it is resubmitted (bounded) and then reported as not added.
    ("batch-tasks", "truncated body"): Expect(502, code="UpstreamBadAnswer", attempts=1),
    # TES create is not idempotent: only a 429 (the server did nothing) is retried; a 5xx or a dropped
    # connection after sending could have created the task, so it is reported, not resent.
    ("tes-create", "500"): Expect(502, code="TesError", upstream=500, attempts=1),
    ("tes-create", "503"): Expect(502, code="TesError", upstream=503, attempts=1),
    ("tes-create", "connection reset"): Expect(502, code="TesUnreachable", attempts=1),
    ("tes-create", "never answering"): Expect(504, code="UpstreamTimeout", attempts=1),
    # A POST answered 429 without Retry-After: ARM may have acted, so azure-core does not resend it.
    ("arm-start", "429 without Retry-After"): Expect(502, upstream=429, attempts=1),
    # Batch's add-collection answer is per task: tasks a failing request did not add are resubmitted
    # (bounded) and then named in one TasksNotAdded error, whatever the request failed with.
    **{("batch-tasks", fault): Expect(502, code="TasksNotAdded")
       for fault in ("500", "503", "connection reset")},
    # Blob storage throttles with 503 ServerBusy, never 429: the Storage SDK does not retry a 429.
    **{(name, fault): Expect(502, upstream=429, attempts=1) for name in ("blob-read", "blob-write")
       for fault in FAULTS if fault.startswith("429")},
}

CELLS = [pytest.param(op, fault, id=f"{op.name}-{fault}".replace(" ", "_"))
         for op in OPERATIONS for fault, (_, expect) in FAULTS.items()
         if SPECIFIC.get((op.name, fault)) or expect(op) is not None]


@pytest.mark.parametrize(("operation", "fault"), CELLS)
def test_fault_cell(world: World, operation: Operation, fault: str):
    _prepare(world, operation)
    inject, generic = FAULTS[fault]
    expected = SPECIFIC.get((operation.name, fault)) or generic(operation)
    assert expected is not None
    inject(world, operation)
    fake = world.fake(operation.service)
    deadline = Deadline.after(DEADLINE)
    started = time.monotonic()
    error: BatchK8sError | None = None

    try:
        operation.run(world, deadline)
    except BatchK8sError as caught:
        error = caught

    elapsed = time.monotonic() - started
    attempts = fake.count(operation.method, operation.path)
    assert elapsed < DEADLINE + SLACK, f"answered after {elapsed:.2f} s"
    if fault == "token endpoint down":
        assert attempts == 0  # without a token nothing was sent
        assert 1 <= world.aad.count("POST", r"/token$") <= TOKEN_RETRIES + 1
    elif expected.attempts is not None:
        assert attempts == expected.attempts
    else:
        assert 1 <= attempts <= operation.max_attempts
    if expected.status is None:
        assert error is None, error.to_dict() if error else None
    else:
        assert error is not None, "the operation succeeded"
        body = error.to_dict()["error"]
        assert (error.status, isinstance(body["details"], list)) == (expected.status, True), body
        if expected.code:
            assert error.code == expected.code, body
        if expected.upstream:
            assert getattr(error, "upstream_status", None) == expected.upstream, body
    assert operation.done(world) <= 1
