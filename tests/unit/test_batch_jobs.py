"""Job summaries: which tasks count as failed, blocked (transitively) and finished."""

from __future__ import annotations

from typing import Any

from batchk8s.batch.jobs import summarize


def task(task_id: str, state: str, depends_on: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    return {"id": task_id, "state": state, "dependsOn": list(depends_on), **extra}


def failed(task_id: str) -> dict[str, Any]:
    return task(task_id, "completed", exitCode=1, startTime="2026-01-05T10:00:00+00:00")


def test_a_chain_of_three_behind_a_failure_is_blocked_whatever_the_listing_order():
    # Not-started tasks sort by id, so each dependant comes before what it waits for (a1 -> b2 -> c3 -> z0):
    # one pass over the list marks only c3, b2 and a1 need a second and a third. Ids compare case-insensitively.
    tasks = [failed("z0"), task("c3", "active", ("z0",)), task("b2", "active", ("C3",)),
             task("a1", "active", ("b2",)), task("free", "active")]

    report = summarize("job", "pool", "active", tasks)

    assert report["failedTasks"] == ["z0"]
    assert report["blockedTasks"] == ["a1", "b2", "c3"]
    assert [t["id"] for t in report["tasks"] if t.get("blocked")] == ["a1", "b2", "c3"]
    assert report["complete"] is False  # `free` can still run
    assert report["succeeded"] is False


def test_every_task_finished_or_blocked_completes_the_job_unsuccessfully():
    tasks = [failed("z0"), task("c3", "active", ("z0",)), task("b2", "active", ("c3",)),
             task("a1", "active", ("b2",))]

    report = summarize("job", None, "active", tasks)

    assert (report["complete"], report["succeeded"]) == (True, False)
    assert report["taskCounts"] == {"completed": 1, "active": 3}


def test_tasks_behind_a_success_or_a_running_task_are_not_blocked():
    ok = task("a", "completed", exitCode=0, startTime="2026-01-05T10:00:00+00:00")
    running = task("b", "running", ("a",), startTime="2026-01-05T10:01:00+00:00")
    tasks = [ok, running, task("c", "active", ("b",)), task("d", "active", ("a",))]

    report = summarize("job", None, "active", tasks)

    assert report["blockedTasks"] == [] and report["failedTasks"] == []
    assert report["complete"] is False


def test_a_failure_reported_by_batch_blocks_even_with_exit_code_zero():
    broken = task("a", "completed", exitCode=0, startTime="2026-01-05T10:00:00+00:00",
                  failure={"category": "usererror", "code": "ResourceFileDownloadFailed", "message": "403"})
    report = summarize("job", None, "active", [broken, task("b", "active", ("a",))])

    assert (report["failedTasks"], report["blockedTasks"]) == (["a"], ["b"])
    assert (report["complete"], report["succeeded"]) == (True, False)
