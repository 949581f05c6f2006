"""Job summaries: which tasks count as failed, blocked (transitively) and finished."""

from __future__ import annotations

import pytest

from batchk8s.batch.jobs import job_spec, summarize
from batchk8s.batch.reports import Failure, TaskExecution, TaskResult
from batchk8s.batch.tasks import BlobFiles, TaskSpec, bash_command, check_task_specs, task_document
from batchk8s.errors import InputError


def task(task_id: str, state: str, depends_on: tuple[str, ...] = (), *, exit_code: int | None = None,
         start_time: str | None = None, failure: Failure | None = None) -> TaskResult:
    """A task as listed: execution info once it was scheduled (a start time, an exit code or a failure)."""
    execution = None
    if exit_code is not None or start_time is not None or failure is not None:
        execution = TaskExecution(exit_code, None, start_time, None, None, failure)
    return TaskResult(task_id, state, list(depends_on), execution)


def failed(task_id: str) -> TaskResult:
    return task(task_id, "completed", exit_code=1, start_time="2026-01-05T10:00:00+00:00")


def test_a_chain_of_three_behind_a_failure_is_blocked_whatever_the_listing_order():
    # Not-started tasks sort by id, so each dependant comes before what it waits for (a1 -> b2 -> c3 -> z0):
    # one pass over the list marks only c3, b2 and a1 need a second and a third. Ids compare case-insensitively.
    tasks = [failed("z0"), task("c3", "active", ("z0",)), task("b2", "active", ("C3",)),
             task("a1", "active", ("b2",)), task("free", "active")]

    report = summarize("job", "pool", "active", tasks)

    assert report.failed_tasks == ["z0"]
    assert report.blocked_tasks == ["a1", "b2", "c3"]
    assert [t.id for t in report.tasks if t.blocked] == ["a1", "b2", "c3"]
    assert report.complete is False  # `free` can still run
    assert report.succeeded is False


def test_every_task_finished_or_blocked_completes_the_job_unsuccessfully():
    tasks = [failed("z0"), task("c3", "active", ("z0",)), task("b2", "active", ("c3",)),
             task("a1", "active", ("b2",))]

    report = summarize("job", None, "active", tasks)

    assert (report.complete, report.succeeded) == (True, False)
    assert report.task_counts == {"completed": 1, "active": 3}


def test_tasks_behind_a_success_or_a_running_task_are_not_blocked():
    ok = task("a", "completed", exit_code=0, start_time="2026-01-05T10:00:00+00:00")
    running = task("b", "running", ("a",), start_time="2026-01-05T10:01:00+00:00")
    tasks = [ok, running, task("c", "active", ("b",)), task("d", "active", ("a",))]

    report = summarize("job", None, "active", tasks)

    assert report.blocked_tasks == [] and report.failed_tasks == []
    assert report.complete is False


def test_a_failure_reported_by_batch_blocks_even_with_exit_code_zero():
    broken = task("a", "completed", exit_code=0, start_time="2026-01-05T10:00:00+00:00",
                  failure=Failure("usererror", "ResourceFileDownloadFailed", "403"))
    report = summarize("job", None, "active", [broken, task("b", "active", ("a",))])

    assert (report.failed_tasks, report.blocked_tasks) == (["a"], ["b"])
    assert (report.complete, report.succeeded) == (True, False)


def test_jobs_are_created_with_task_dependencies_on():
    assert job_spec("wf-1", "k8s-pool", "cluster info").as_dict() == {
        "id": "wf-1", "displayName": "cluster info", "usesTaskDependencies": True,
        "poolInfo": {"poolId": "k8s-pool"}, "metadata": [{"name": "created-by", "value": "batchk8s"}]}


def test_every_task_spec_problem_is_named_with_its_message():
    specs = [TaskSpec("a", "x"), TaskSpec("A", "x"), TaskSpec("b", "x", depends_on=("c", "A")),
             TaskSpec("bad id", "x"), TaskSpec("x" * 65, "x")]
    with pytest.raises(InputError) as caught:
        check_task_specs(specs)
    assert caught.value.details == [
        {"field": "tasks.A", "message": "duplicate task id"},
        {"field": "tasks.bad id", "message": "id must be 1-64 letters, digits, '-' or '_', not 'bad id'"},
        {"field": f"tasks.{'x' * 65}", "message": f"id must be 1-64 letters, digits, '-' or '_', not '{'x' * 65}'"},
        {"field": "tasks.b.dependsOn", "message": "unknown task 'c'"},
    ]
    assert caught.value.message.startswith("invalid workflow tasks: tasks.A, ")
    check_task_specs([TaskSpec("later", "x", depends_on=("First",)), TaskSpec("first", "x")])  # any order, any case


def test_a_task_becomes_its_create_request():
    spec = TaskSpec("deploy", bash_command("kubectl apply -f tesk/"), depends_on=("info",),
                    resource_files=(BlobFiles("k8sresources", "tesk/"), BlobFiles("apps", "x.sh", "bin")),
                    environment={"NS": "tesk", "B": "2"}, max_wall_clock_seconds=600, max_task_retry_count=1,
                    display_name="deploy TESK")
    # One resource file per blob, each with its own read URL (nothing container-wide reaches a task).
    body = task_document(spec, lambda files: [(f"{files.file_path or '.'}/{files.prefix}a",
                                               f"https://acct.blob/{files.container}/{files.prefix}a?sig=s")])
    assert body == {
        "id": "deploy", "displayName": "deploy TESK", "commandLine": "/bin/bash -c 'kubectl apply -f tesk/'",
        "resourceFiles": [
            {"httpUrl": "https://acct.blob/k8sresources/tesk/a?sig=s", "filePath": "./tesk/a"},
            {"httpUrl": "https://acct.blob/apps/x.sha?sig=s", "filePath": "bin/x.sha"}],
        "environmentSettings": [{"name": "NS", "value": "tesk"}, {"name": "B", "value": "2"}],
        "userIdentity": {"autoUser": {"scope": "pool", "elevationLevel": "admin"}},
        "constraints": {"maxWallClockTime": "PT10M00S", "maxTaskRetryCount": 1},
        "dependsOn": {"taskIds": ["info"]},
    }


def test_a_plain_task_sends_no_empty_parts():
    body = task_document(TaskSpec("df", "df -h", admin=False, max_wall_clock_seconds=None), str)
    assert body == {"id": "df", "commandLine": "df -h", "constraints": {"maxTaskRetryCount": 0}}


def test_the_report_lists_tasks_in_the_order_they_ran_then_the_rest_by_id():
    tasks = [task("b-wait", "active"), task("second", "completed", exit_code=0, start_time="2026-01-05T10:05:00+00:00"),
             task("a-wait", "active"), task("first", "completed", exit_code=0, start_time="2026-01-05T10:00:00+00:00"),
             task("now", "running", start_time="2026-01-05T10:07:00+00:00")]

    report = summarize("wf-1", "k8s-pool", "active", tasks)

    assert [t.id for t in report.tasks] == ["first", "second", "now", "a-wait", "b-wait"]
    assert {key: value for key, value in report.to_dict().items() if key != "tasks"} == {
        "id": "wf-1", "poolId": "k8s-pool", "state": "active",
        "taskCounts": {"active": 2, "completed": 2, "running": 1},
        "complete": False, "succeeded": False, "failedTasks": [], "blockedTasks": []}


def test_success_needs_every_task_completed_without_failure():
    ok = [task("a", "completed", exit_code=0, start_time="2026-01-05T10:00:00+00:00"),
          task("b", "completed", ("a",), exit_code=0, start_time="2026-01-05T10:01:00+00:00")]
    assert summarize("j", None, "completed", ok).succeeded is True
    lone_failure = [ok[0], failed("c")]  # nothing depends on it, so nothing is blocked
    report = summarize("j", None, "completed", lone_failure)
    assert (report.complete, report.succeeded, report.failed_tasks, report.blocked_tasks) == (
        True, False, ["c"], [])
    assert summarize("j", None, "active", []).complete is False  # a job without tasks has not finished
