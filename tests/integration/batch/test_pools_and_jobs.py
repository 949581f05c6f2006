"""Pools and jobs through batchk8s's Batch client against the fake: status, waits, resize, task submission
and the faults the app's client must ride out. (The fake's own behaviour against the Batch definition
is checked in tests/contract/test_fake_batch.py.)"""

from __future__ import annotations

from typing import Any

import pytest
from azure.batch import BatchClient
from azure.batch import models as m
from azure.core.exceptions import HttpResponseError

from batchk8s.batch import jobs, pools
from batchk8s.batch.client import text
from batchk8s.batch.polling import Waiter
from batchk8s.batch.tasks import TaskSpec, to_task_options
from batchk8s.errors import ConflictError, InputError, NotFoundError, UpstreamError
from batchk8s.settings import Settings
from tests.fakes.batch import FakeBatch, FakeClock, TaskOutcome

IMAGE = m.BatchVmImageReference(publisher="canonical", offer="ubuntu-24_04-lts", sku="server", version="latest")


def pool_options(pool_id: str = "p1", nodes: int = 1, **extra: Any) -> m.BatchPoolCreateOptions:
    vm = m.VirtualMachineConfiguration(image_reference=IMAGE, node_agent_sku_id="batch.node.ubuntu 24.04")
    start = m.BatchStartTask(command_line="/bin/bash -c true", wait_for_success=True, max_task_retry_count=1)
    return m.BatchPoolCreateOptions(id=pool_id, vm_size="standard_d2_v3", virtual_machine_configuration=vm,
                                    target_dedicated_nodes=nodes, start_task=start, **extra)


def job_options(job_id: str = "j1", deps: bool = True) -> m.BatchJobCreateOptions:
    return m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id="p1"), uses_task_dependencies=deps)


def task(task_id: str, *after: str) -> m.BatchTaskCreateOptions:
    return m.BatchTaskCreateOptions(id=task_id, command_line="/bin/bash -c 'echo hi'",
                                    depends_on=m.BatchTaskDependencies(task_ids=list(after)) if after else None)


def fake_waiter(clock: FakeClock) -> Waiter:
    return Waiter(clock=clock.now, sleep=clock.advance)


def ready_pool(sdk: BatchClient, clock: FakeClock, pool_id: str = "p1") -> None:
    sdk.create_pool(pool_options(pool_id))
    clock.advance(600)


# --- task submission ---------------------------------------------------------------------------


def test_add_tasks_names_each_task_batch_refused(sdk: BatchClient, clock: FakeClock, settings: Settings):
    ready_pool(sdk, clock)
    sdk.create_job(job_options(deps=False))
    with pytest.raises(UpstreamError) as caught:  # our add_tasks names the refused task and the code
        jobs.add_tasks(settings, "j1", [task("c"), task("d", "c")])
    assert caught.value.code == "TaskDependenciesNotSpecifiedOnJob"
    assert caught.value.details == [{"field": "tasks.d", "message": caught.value.details[0]["message"]}]
    assert caught.value.details[0]["message"].startswith("TaskDependenciesNotSpecifiedOnJob: A task was specified")


# --- status, waits and resize ------------------------------------------------------------------


def test_failed_start_task_is_reported_with_its_stderr(sdk: BatchClient, clock: FakeClock, batch: FakeBatch,
                                                       settings: Settings):
    batch.start_task = TaskOutcome(seconds=60, exit_code=100, stderr="E: Unable to locate package kubeadm\n")
    sdk.create_pool(pool_options())
    status = pools.pool_status(settings, "p1", wait=True, waiter=fake_waiter(clock))
    node = status.nodes[0]
    assert node.state == "starttaskfailed"
    assert status.failed and not status.ready
    assert node.start_task.exit_code == 100
    assert node.start_task.retry_count == 1  # retried once (maxTaskRetryCount) before giving up
    assert node.start_task.failure.code == "FailureExitCode"
    assert "Unable to locate package kubeadm" in node.start_task.stderr_tail


def test_tasks_honour_dependencies_and_a_failure_blocks_dependents(sdk: BatchClient, clock: FakeClock,
                                                                   batch: FakeBatch, settings: Settings):
    sdk.create_pool(pool_options(task_slots_per_node=4))  # a and d run side by side
    clock.advance(600)
    sdk.create_job(job_options())
    batch.task_outcomes.update({"a": TaskOutcome(30, stdout="A\n"), "b": TaskOutcome(20, exit_code=3,
                                                                                     stderr="boom\n")})
    sdk.create_tasks("j1", [task("a"), task("b", "a"), task("c", "b"), task("d")])
    clock.advance(5)
    states = {t.id: text(t.state) for t in sdk.list_tasks("j1")}
    assert states == {"a": "running", "b": "active", "c": "active", "d": "running"}
    report = jobs.monitor(settings, "j1", timeout=600, waiter=fake_waiter(clock))
    by_id = {t.id: t for t in report.tasks}
    assert by_id["b"].execution.start_time >= by_id["a"].execution.end_time
    assert (by_id["b"].exit_code, by_id["c"].state, by_id["c"].blocked) == (3, "active", True)
    assert report.complete and not report.succeeded
    assert (report.failed_tasks, report.blocked_tasks) == (["b"], ["c"])
    assert by_id["a"].stdout_tail == "A\n" and by_id["b"].stderr_tail == "boom\n"


def test_resize_past_quota_finishes_with_resize_errors(sdk: BatchClient, clock: FakeClock, batch: FakeBatch,
                                                       settings: Settings):
    ready_pool(sdk, clock)
    batch.node_quota = 2
    with pytest.raises(UpstreamError) as caught:
        pools.resize_pool(settings, "p1", {"dedicatedNodes": 5}, wait=True, waiter=fake_waiter(clock))
    assert caught.value.code == "AccountCoreQuotaReached"
    status = pools.pool_status(settings, "p1")
    assert (status.current_dedicated_nodes, status.target_dedicated_nodes) == (2, 5)
    assert status.resize_errors[0].code == "AccountCoreQuotaReached"


def test_resize_while_resizing_is_a_conflict(sdk: BatchClient, settings: Settings):
    sdk.create_pool(pool_options())
    with pytest.raises(ConflictError) as caught:
        pools.resize_pool(settings, "p1", {"dedicatedNodes": 3})
    assert caught.value.code == "PoolBeingResized"


def test_unknown_pool_and_job_are_404(settings: Settings):
    with pytest.raises(NotFoundError):
        pools.pool_status(settings, "nope")
    with pytest.raises(NotFoundError):
        jobs.job_status(settings, "nope")


# --- faults ------------------------------------------------------------------------------------


def test_429_with_retry_after_on_post_is_retried(sdk: BatchClient, batch: FakeBatch, clock: FakeClock):
    ready_pool(sdk, clock)
    batch.inject(method="POST", path=r"^/jobs$", status=429, headers={"Retry-After": "0.2"})
    sdk.create_job(job_options())
    assert batch.count("POST", r"^/jobs$") == 2


def test_429_without_retry_after_on_post_is_retried_by_the_app_client(sdk: BatchClient, batch: FakeBatch,
                                                                       clock: FakeClock, aad: Any):
    ready_pool(sdk, clock)
    sdk.create_job(job_options())
    batch.inject(method="POST", path=r"/addtaskcollection$", status=429, times=2,
                 body={"code": "TooManyRequests", "message": {"lang": "en-US", "value": "slow down"}})
    sdk.create_tasks("j1", [task("a")])
    assert batch.count("POST", r"/addtaskcollection$") == 3
    # The SDK's default policy gives up on it: that is why the app brings its own.
    from azure.identity import ClientSecretCredential

    plain = BatchClient(batch.url, ClientSecretCredential(aad.tenant, aad.client_id, aad.client_secret,
                                                          authority=aad.url, disable_instance_discovery=True))
    batch.inject(method="POST", path=r"^/jobs$", status=429)
    with pytest.raises(HttpResponseError) as caught:
        plain.create_job(job_options("j2"))
    assert caught.value.status_code == 429


def test_503_is_retried(sdk: BatchClient, batch: FakeBatch, clock: FakeClock, settings: Settings):
    ready_pool(sdk, clock)
    batch.inject(method="GET", path=r"^/pools/p1$", status=503, times=2)
    assert pools.pool_status(settings, "p1").id == "p1"
    batch.inject(method="POST", path=r"^/jobs$", status=503)
    sdk.create_job(job_options())
    assert batch.count("GET", r"^/pools/p1$") == 3 and batch.count("POST", r"^/jobs$") == 2


def test_dropped_connection_on_add_tasks_is_resent_without_duplicates(sdk: BatchClient, batch: FakeBatch,
                                                                      clock: FakeClock, settings: Settings):
    ready_pool(sdk, clock)
    sdk.create_job(job_options())
    batch.inject(method="POST", path=r"/addtaskcollection$", reset=True)
    specs = [TaskSpec(f"t{i}", "/bin/bash -c true") for i in range(150)]
    result = jobs.add_tasks(settings, "j1", [to_task_options(s, str) for s in specs])
    assert result["added"] + result["existing"] == 150
    assert len(batch.jobs["j1"]["tasks"]) == 150
    assert batch.count("POST", r"/addtaskcollection$") == 3  # two chunks, one of them sent twice


def test_bad_overrides_are_all_named(settings: Settings):
    with pytest.raises(InputError) as caught:
        pools.create_pool(settings, {"id": "bad id", "dedicatedNodes": 1001, "spotNodes": -1, "vmSize": "huge",
                                     "imageId": "/subscriptions/x/images/y", "colour": "red"})
    assert sorted(d["field"] for d in caught.value.details) == [
        "colour", "dedicatedNodes", "id", "imageId", "spotNodes", "vmSize"]


def test_resize_and_deletes_send_one_request_and_start_no_poller_thread(sdk: BatchClient, clock: FakeClock,
                                                                        batch: FakeBatch, settings: Settings):
    import threading

    ready_pool(sdk, clock)
    sdk.create_job(job_options())
    pools.resize_pool(settings, "p1", {"dedicatedNodes": 2})
    jobs.delete_job(settings, "j1")
    pools.delete_pool(settings, "p1")
    assert (batch.count("POST", r"^/pools/p1/resize$"), batch.count("DELETE", r"^/jobs/j1$"),
            batch.count("DELETE", r"^/pools/p1$")) == (1, 1, 1)
    assert not [t.name for t in threading.enumerate() if t.name.startswith("LROPoller")]
    # What the app avoids: the SDK's public method leaves a thread polling the pool behind.
    sdk.create_pool(pool_options("p2"))
    clock.advance(600)
    poller = sdk.begin_resize_pool("p2", m.BatchPoolResizeOptions(target_dedicated_nodes=3),
                                    polling_interval=0.05)
    assert [t.name for t in threading.enumerate() if t.name.startswith("LROPoller")]
    clock.advance(600)
    poller.wait(5)
