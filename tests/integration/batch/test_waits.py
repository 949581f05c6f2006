"""Waits that end when the pool cannot get better, through batchk8s's Batch client against the fake.

A preempted spot node, a node whose start task failed, a pool or job being deleted: each ends a
wait at once with a reason, instead of spinning to the timeout. Transitional states (a reboot, a
reimage) keep it going. The clock is the fake's, frozen: only the waits' own sleeps move it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from azure.batch import BatchClient
from azure.batch import models as m

from batchk8s.batch import jobs, pools
from batchk8s.batch.polling import Waiter
from batchk8s.batch.tasks import TaskSpec, to_task_options
from batchk8s.errors import ConflictError
from batchk8s.settings import Settings
from tests.fakes.batch import FakeBatch, FakeClock, TaskOutcome

IMAGE = m.BatchVmImageReference(publisher="canonical", offer="ubuntu-24_04-lts", sku="server", version="latest")
TIMEOUT = 1800.0


def pool_options(pool_id: str = "p1", nodes: int = 1, spot: int = 0) -> m.BatchPoolCreateOptions:
    vm = m.VirtualMachineConfiguration(image_reference=IMAGE, node_agent_sku_id="batch.node.ubuntu 24.04")
    start = m.BatchStartTask(command_line="/bin/bash -c true", wait_for_success=True)
    return m.BatchPoolCreateOptions(id=pool_id, vm_size="standard_d2_v3", virtual_machine_configuration=vm,
                                    target_dedicated_nodes=nodes, target_low_priority_nodes=spot, start_task=start)


def fake_waiter(clock: FakeClock, **hooks: Any) -> Waiter:
    return Waiter(clock=clock.now, sleep=hooks.get("sleep", clock.advance))


def spot_node(sdk: BatchClient, pool_id: str = "p1") -> str:
    return next(n.id for n in sdk.list_nodes(pool_id) if not n.is_dedicated)


def options(count: int, prefix: str = "t") -> list[m.BatchTaskCreateOptions]:
    return [to_task_options(TaskSpec(f"{prefix}{i}", "/bin/bash -c true"), str) for i in range(count)]


# --- pool waits ------------------------------------------------------------------------------------


def test_a_preempted_spot_node_ends_the_pool_wait_with_the_reason(sdk: BatchClient, clock: FakeClock,
                                                                  batch: FakeBatch, settings: Settings):
    sdk.create_pool(pool_options(nodes=1, spot=1))
    batch.set_node_state("p1", spot_node(sdk), "preempted")  # reclaimed while the pool was still booting
    status = pools.pool_status(settings, "p1", wait=True, timeout=TIMEOUT, waiter=fake_waiter(clock))
    assert clock.now() < 300  # the dedicated node's boot and start task, not the 30-minute timeout
    assert (status.ready, status.settled, status.failed) == (False, True, True)
    assert status.node_counts == {"idle": 1, "preempted": 1}
    assert status.verdict.classes == {"ready": 1, "transitional": 0, "failed": 0, "gone": 1}
    assert status.reason == ("cannot get better without an action: 1 of 2 node(s) ready; "
                             "1 preempted (its spot VM was reclaimed by Azure)")
    assert {n.node_class for n in status.nodes} == {"ready", "gone"}


@pytest.mark.parametrize("state", ["unusable", "unknown", "offline", "deallocated"])
def test_failed_and_gone_nodes_end_the_pool_wait(sdk: BatchClient, clock: FakeClock, batch: FakeBatch,
                                                 settings: Settings, state: str):
    sdk.create_pool(pool_options(nodes=2))
    batch.set_node_state("p1", 0, state)
    status = pools.pool_status(settings, "p1", wait=True, timeout=TIMEOUT, waiter=fake_waiter(clock))
    assert clock.now() < 300 and status.settled and status.failed and not status.ready
    assert f"1 {state} (" in status.reason


def test_a_rebooting_node_keeps_the_wait_going_until_it_is_back(sdk: BatchClient, clock: FakeClock,
                                                                batch: FakeBatch, settings: Settings):
    sdk.create_pool(pool_options(nodes=2))
    clock.advance(600)
    node = batch.set_node_state("p1", 0, "rebooting")
    naps: list[float] = []

    def sleep(seconds: float) -> None:  # the node comes back after the wait's second look
        naps.append(seconds)
        clock.advance(seconds)
        if len(naps) == 2:
            batch.set_node_state("p1", node, "idle")

    status = pools.pool_status(settings, "p1", wait=True, timeout=TIMEOUT, waiter=fake_waiter(clock, sleep=sleep))
    assert len(naps) == 2 and status.ready and status.reason == "ready: 2 node(s) ready"


def test_a_pool_being_deleted_ends_the_wait(sdk: BatchClient, clock: FakeClock, batch: FakeBatch,
                                            settings: Settings):
    batch.delete_seconds = 300
    sdk.create_pool(pool_options())
    pools.delete_pool(settings, "p1")
    status = pools.pool_status(settings, "p1", wait=True, timeout=TIMEOUT, waiter=fake_waiter(clock))
    assert clock.now() == 0 and status.state == "deleting" and status.reason == "the pool is being deleted"


def test_the_cli_says_why_a_waited_pool_is_not_ready(sdk: BatchClient, clock: FakeClock, batch: FakeBatch,
                                                     batch_env: dict[str, str], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]):
    from batchk8s.cli import main

    sdk.create_pool(pool_options(nodes=1, spot=1))
    clock.advance(600)
    batch.set_node_state("p1", spot_node(sdk), "preempted")
    settings_file = tmp_path / "local.settings.json"
    settings_file.write_text(json.dumps({"Values": batch_env}))
    code = main(["pool", "show", "p1", "--settings", str(settings_file)])
    out = capsys.readouterr().out
    assert code == 0  # a look, not a wait
    assert "preempted=1" in out and "1 preempted (its spot VM was reclaimed by Azure)" in out


# --- job waits -------------------------------------------------------------------------------------


def test_the_job_monitor_stops_when_the_pool_can_run_none_of_the_waiting_tasks(sdk: BatchClient, clock: FakeClock,
                                                                               batch: FakeBatch, settings: Settings):
    sdk.create_pool(pool_options(nodes=0, spot=1))
    clock.advance(600)
    jobs.create_job(settings, "j1", "p1")
    batch.set_node_state("p1", 0, "preempted")
    jobs.add_tasks(settings, "j1", options(2))
    report = jobs.monitor(settings, "j1", timeout=3600, waiter=fake_waiter(clock), outputs=False)
    assert clock.now() < 700 and not report.complete
    assert report.stalled == ("pool p1 cannot run the 2 waiting task(s): cannot get better without an action: "
                              "0 of 1 node(s) ready; 1 preempted (its spot VM was reclaimed by Azure)")


def test_the_job_monitor_waits_through_a_pool_that_is_still_booting(sdk: BatchClient, clock: FakeClock,
                                                                    batch: FakeBatch, settings: Settings):
    sdk.create_pool(pool_options(nodes=1))
    jobs.create_job(settings, "j1", "p1")
    jobs.add_tasks(settings, "j1", options(2))
    batch.default_task = TaskOutcome(seconds=5)
    report = jobs.monitor(settings, "j1", timeout=3600, waiter=fake_waiter(clock), outputs=False)
    assert report.complete and report.succeeded and not report.stalled


def test_the_job_monitor_stops_when_the_job_is_being_deleted(sdk: BatchClient, clock: FakeClock, batch: FakeBatch,
                                                             settings: Settings):
    batch.delete_seconds = 600
    sdk.create_pool(pool_options(nodes=1))
    jobs.create_job(settings, "j1", "p1")
    jobs.add_tasks(settings, "j1", options(1))
    jobs.delete_job(settings, "j1")
    report = jobs.monitor(settings, "j1", timeout=3600, waiter=fake_waiter(clock), outputs=False)
    assert clock.now() == 0 and report.stalled == "job j1 is deleting: its 1 waiting task(s) will not run"


# --- deletion in progress, paging ------------------------------------------------------------------


def test_reusing_the_id_of_a_pool_or_job_still_being_deleted_is_a_409_that_says_so(sdk: BatchClient, clock: FakeClock,
                                                                                   batch: FakeBatch,
                                                                                   settings: Settings):
    batch.delete_seconds = 300
    sdk.create_pool(pool_options())
    jobs.create_job(settings, "j1", "p1")
    jobs.delete_job(settings, "j1")
    pools.delete_pool(settings, "p1")
    with pytest.raises(ConflictError) as job:
        jobs.create_job(settings, "j1", "p1")
    assert (job.value.code, job.value.message) == ("JobBeingDeleted", "job j1 is being deleted: try again once it "
                                                                      "is gone")
    for again in (lambda: pools.create_pool(settings, {"id": "p1"}), lambda: pools.delete_pool(settings, "p1")):
        with pytest.raises(ConflictError) as pool:
            again()
        assert (pool.value.code, pool.value.status) == ("PoolBeingDeleted", 409)
        assert pool.value.message == "pool p1 is being deleted: try again once it is gone"
    clock.advance(300)
    assert jobs.create_job(settings, "j1", "p1") is True


def test_task_lists_read_every_page_past_1000(sdk: BatchClient, clock: FakeClock, batch: FakeBatch,
                                              settings: Settings):
    sdk.create_pool(pool_options(nodes=0))
    jobs.create_job(settings, "j1", "p1")
    assert jobs.add_tasks(settings, "j1", options(2050))["added"] == 2050
    batch.reset_log()
    listed = jobs.list_tasks(settings, "j1")
    assert len(listed) == 2050 and len({t.id for t in listed}) == 2050
    assert batch.count("GET", r"^/jobs/j1/tasks$") == 3
    report = jobs.job_status(settings, "j1", outputs=False)
    assert report.task_counts == {"active": 2050}
