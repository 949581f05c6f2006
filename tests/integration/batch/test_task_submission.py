"""Adding tasks in bulk: per-task `servererror` results are resubmitted a bounded number of times, and
whatever is not in the job at the end is named (azure-batch's own `create_tasks` would resubmit forever)."""

from __future__ import annotations

import threading

import pytest
from azure.batch import BatchClient
from azure.batch import models as m

from batchk8s.batch import jobs, submission
from batchk8s.batch.tasks import TaskSpec, to_task_options
from batchk8s.errors import UpstreamError
from batchk8s.settings import Settings
from tests.fakes.batch import FakeBatch, FakeClock

IMAGE = m.BatchVmImageReference(publisher="canonical", offer="ubuntu-24_04-lts", sku="server", version="latest")
ADD = r"^/jobs/j1/addtaskcollection$"


@pytest.fixture
def job(sdk: BatchClient, clock: FakeClock, settings: Settings) -> str:
    vm = m.VirtualMachineConfiguration(image_reference=IMAGE, node_agent_sku_id="batch.node.ubuntu 24.04")
    sdk.create_pool(m.BatchPoolCreateOptions(id="p1", vm_size="standard_d2_v3", virtual_machine_configuration=vm,
                                             target_dedicated_nodes=0))
    jobs.create_job(settings, "j1", "p1")
    return "j1"


def options(count: int, **environment: str) -> list[m.BatchTaskCreateOptions]:
    return [to_task_options(TaskSpec(f"t{i}", "/bin/bash -c true", environment=environment), str)
            for i in range(count)]


class Naps:
    """The sleep between rounds, recorded instead of slept."""

    def __init__(self) -> None:
        self.taken: list[float] = []
        self.lock = threading.Lock()

    def __call__(self, seconds: float) -> None:
        with self.lock:
            self.taken.append(seconds)


def test_a_task_answered_servererror_is_resubmitted_and_added(job: str, batch: FakeBatch, settings: Settings):
    batch.add_server_errors.update({"t7": 1, "t140": 2})
    naps = Naps()
    result = jobs.add_tasks(settings, job, options(150), sleep=naps)
    assert result == {"added": 150, "existing": 0, "resubmitted": 3}  # t7 and t140 once, t140 again
    assert len(batch.jobs[job]["tasks"]) == 150
    assert batch.count("POST", ADD) == 2 + 1 + 1 and naps.taken == list(submission.RESUBMIT_DELAYS[:2])


def test_a_task_that_keeps_failing_is_resubmitted_a_bounded_number_of_times_then_named(
        job: str, batch: FakeBatch, settings: Settings):
    batch.add_server_errors["t7"] = float("inf")
    naps = Naps()
    with pytest.raises(UpstreamError) as caught:
        jobs.add_tasks(settings, job, options(150), sleep=naps)
    rounds = len(submission.RESUBMIT_DELAYS)
    assert batch.count("POST", ADD) == 2 + rounds and naps.taken == list(submission.RESUBMIT_DELAYS)
    error = caught.value
    assert (error.status, error.code, error.upstream_status) == (502, "TasksNotAdded", 500)
    assert error.message == ("job j1: Batch could not add 1 task(s) (InternalError) after 4 attempts; added 149, "
                             "already there 0")
    assert error.details == [{"field": "tasks.t7", "message": "InternalError: Server encountered an internal error. "
                              "Please try again after some time. (servererror after 4 attempts; running again "
                              "resubmits it)"}]
    assert len(batch.jobs[job]["tasks"]) == 149 and "t7" not in batch.jobs[job]["tasks"]


def test_running_again_adds_only_what_is_missing(job: str, batch: FakeBatch, settings: Settings):
    batch.add_server_errors["t3"] = 4  # more than one call's rounds
    with pytest.raises(UpstreamError):
        jobs.add_tasks(settings, job, options(5), sleep=Naps())
    assert jobs.add_tasks(settings, job, options(5), sleep=Naps()) == {"added": 1, "existing": 4, "resubmitted": 0}


def test_refused_and_unavailable_tasks_are_reported_together(job: str, batch: FakeBatch, sdk: BatchClient,
                                                            settings: Settings):
    batch.add_server_errors["t1"] = float("inf")
    tasks = [*options(2), to_task_options(TaskSpec("t2", "/bin/bash -c true", depends_on=("t0",)), str)]
    sdk.create_job(m.BatchJobCreateOptions(id="nodeps", pool_info=m.BatchPoolInfo(pool_id="p1")))
    with pytest.raises(UpstreamError) as both:
        jobs.add_tasks(settings, "nodeps", tasks, sleep=Naps())
    assert both.value.code == "TaskDependenciesNotSpecifiedOnJob" and both.value.upstream_status == 400
    assert [d["field"] for d in both.value.details] == ["tasks.t2", "tasks.t1"]  # refused, then unavailable
    assert both.value.details[1]["message"].startswith("InternalError: ")
    assert sorted(batch.jobs["nodeps"]["tasks"]) == ["t0"]


def test_a_chunk_too_large_for_batch_is_split_and_a_task_too_large_alone_is_named(job: str, batch: FakeBatch,
                                                                                 settings: Settings):
    result = jobs.add_tasks(settings, job, options(100, PAYLOAD="x" * 15_000))  # 100 tasks: ~1.5 MB
    assert result["added"] == 100
    assert batch.count("POST", ADD) == 3  # refused whole (413), then two halves
    huge = [to_task_options(TaskSpec("huge", "/bin/bash -c true", environment={"X": "y" * 1_100_000}), str)]
    with pytest.raises(UpstreamError) as caught:
        jobs.add_tasks(settings, job, huge)
    assert caught.value.code == "RequestBodyTooLarge" and caught.value.details[0]["field"] == "tasks.huge"
