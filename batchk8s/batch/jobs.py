"""Batch jobs: create-or-reuse on a pool, add tasks in bulk, monitor to completion, collect outputs.

Jobs always use task dependencies, so tasks whose order matters run in that order (the seed's ran
in parallel). Tasks go in through `submission`: 100 per request, several requests at once, a
resent task that already exists counts as added (a retry never duplicates work), and tasks Batch
could not add are resubmitted a bounded number of times. Monitoring
lists the job's tasks with backoff (1 s doubling to 10 s): a two-minute job costs about 16 list
requests and its end is noticed within 10 s. A task whose dependency failed never runs (Batch
blocks it), so monitoring treats it as finished-blocked instead of waiting forever. Reads return a
`reports.JobReport`.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from batchk8s.batch.client import batch_client, call, request_job_delete, text
from batchk8s.batch.polling import Waiter, tail
from batchk8s.batch.reports import Deletion, JobReport, TaskResult
from batchk8s.errors import ConflictError, InputError
from batchk8s.settings import BATCH_ID, Settings

if TYPE_CHECKING:
    from azure.batch import models as batch_models

    from batchk8s.deadline import Deadline

log = logging.getLogger("batchk8s.batch.jobs")

OUTPUT_TASKS = 50  # stdout/stderr tails collected per status call
OUTPUT_FILES = ("stdout.txt", "stderr.txt")
LIST_SELECT = ["id", "state", "dependsOn", "executionInfo", "nodeInfo"]
# A job in these states runs no more tasks (a disabled job's tasks wait until someone enables it).
STOPPED_JOB_STATES = ("disabling", "disabled", "terminating", "completed", "deleting")


def check_id(value: Any, field_name: str) -> str:
    if not isinstance(value, str) or not BATCH_ID.fullmatch(value):
        raise InputError.for_field(field_name, "must be 1-64 letters, digits, '-' or '_'")
    return value


def job_spec(job_id: str, pool_id: str, display_name: str | None = None) -> batch_models.BatchJobCreateOptions:
    """The create-job request (pure)."""
    from azure.batch import models as m

    return m.BatchJobCreateOptions(id=job_id, display_name=display_name, uses_task_dependencies=True,
                                   pool_info=m.BatchPoolInfo(pool_id=pool_id),
                                   metadata=[m.BatchMetadataItem(name="created-by", value="batchk8s")])


def create_job(settings: Settings, job_id: str, pool_id: str, display_name: str | None = None, *,
               deadline: Deadline | None = None) -> bool:
    """Create the job; reuse an existing one on the same pool with dependencies on. True if created."""
    check_id(job_id, "jobId")
    check_id(pool_id, "poolId")
    client = batch_client(settings, deadline)
    what = f"job {job_id}"
    try:
        call(what, client.create_job, job_spec(job_id, pool_id, display_name))
        return True
    except ConflictError as error:
        if error.code != "JobExists":
            raise  # JobBeingDeleted: the id is not free yet
    existing = call(what, client.get_job, job_id)
    problems = []
    existing_pool = existing.pool_info.pool_id if existing.pool_info else None
    if (existing_pool or "").lower() != pool_id.lower():
        problems.append({"field": "poolId", "message": f"existing {existing_pool!r}, requested {pool_id!r}"})
    if not existing.uses_task_dependencies:
        problems.append({"field": "usesTaskDependencies", "message": "existing job does not use task dependencies"})
    if text(existing.state) not in ("active",):
        problems.append({"field": "state", "message": f"existing job is {existing.state}, not active"})
    if problems:
        raise ConflictError(f"{what} exists and cannot be reused: "
                            + "; ".join(f"{p['field']} ({p['message']})" for p in problems),
                            code="JobExistsWithDifferentSpec", details=problems)
    return False



def add_tasks(settings: Settings, job_id: str, tasks: list[batch_models.BatchTaskCreateOptions],
              *, deadline: Deadline | None = None, **resubmission: Any) -> dict[str, int]:
    """Add any number of tasks (see submission): existing ids count as added, `servererror` tasks are
    resubmitted a bounded number of times, and an error names every task that is not in the job."""
    from batchk8s.batch import submission

    return submission.add_tasks(settings, job_id, tasks, **resubmission, deadline=deadline)


def list_tasks(settings: Settings, job_id: str, *, deadline: Deadline | None = None) -> list[TaskResult]:
    """Every task of the job with its state, dependencies and execution info (one request per 1000)."""
    client = batch_client(settings, deadline)
    tasks = call(f"job {job_id}", lambda: list(client.list_tasks(job_id, select=LIST_SELECT)))
    return [TaskResult.from_model(task) for task in tasks]


def _mark_blocked(tasks: list[TaskResult]) -> None:
    """Flag active tasks that can never run because a task they depend on (transitively) failed."""
    failed = {t.id.lower() for t in tasks if t.failed}
    changed = True
    while changed:
        changed = False
        for task in tasks:
            key = task.id.lower()
            if task.state == "active" and key not in failed and any(d.lower() in failed for d in task.depends_on):
                task.blocked = True
                failed.add(key)
                changed = True


def summarize(job_id: str, pool_id: str | None, state: str | None, tasks: list[TaskResult]) -> JobReport:
    """Counts, completion and failures; tasks in the order they ran (not yet started ones last, by id)."""
    tasks.sort(key=lambda t: (t.start_time is None, t.start_time or "", t.id))
    _mark_blocked(tasks)
    return JobReport(job_id, pool_id, state, tasks)


def _file_tail(settings: Settings, job_id: str, task_id: str, name: str, *,
               deadline: Deadline | None = None) -> str | None:
    from azure.core.exceptions import AzureError

    try:
        return tail(batch_client(settings, deadline).download_task_file(job_id, task_id, name))
    except AzureError:
        return None  # the task has not started (no files yet) or its files were cleaned up


def collect_outputs(settings: Settings, job_id: str, tasks: list[TaskResult], limit: int = OUTPUT_TASKS, *,
                    deadline: Deadline | None = None) -> None:
    """Add stdout/stderr tails to started tasks (failed ones first, at most `limit`), fetched concurrently."""
    started = [t for t in tasks if t.state in ("running", "completed")]
    started.sort(key=lambda t: t.state != "completed" or t.exit_code == 0)
    chosen = [(task, name) for task in started[:limit] for name in OUTPUT_FILES]
    if not chosen:
        return
    with ThreadPoolExecutor(max_workers=min(8, len(chosen))) as pool:
        tails = list(pool.map(lambda item: _file_tail(settings, job_id, item[0].id, item[1], deadline=deadline),
                              chosen))
    for (task, name), output in zip(chosen, tails, strict=True):
        task.outputs_read = True
        if name == "stdout.txt":
            task.stdout_tail = output
        else:
            task.stderr_tail = output


def job_status(settings: Settings, job_id: str, *, outputs: bool = True,
               deadline: Deadline | None = None) -> JobReport:
    """The job, every task's state/exit code/failure, and (with `outputs`) stdout/stderr tails."""
    check_id(job_id, "jobId")
    client = batch_client(settings, deadline)
    job = call(f"job {job_id}", client.get_job, job_id)
    report = summarize(job.id, job.pool_info.pool_id if job.pool_info else None, text(job.state),
                       list_tasks(settings, job_id, deadline=deadline))
    if outputs:
        collect_outputs(settings, job_id, report.tasks, deadline=deadline)
    return report


def _stalled(settings: Settings, job_id: str, report: JobReport, *,
             deadline: Deadline | None = None) -> str | None:
    """Why the job's waiting tasks can never run, or None while they still can.

    Checked only when tasks wait and none runs (two or three extra reads): the job no longer takes
    tasks to run, or its pool is settled with no node that can run them (every node failed, gone or
    preempted, or no nodes at all).
    """
    from batchk8s.batch.pools import pool_verdict

    waiting = [t for t in report.tasks if t.state == "active" and not t.blocked]
    if not waiting or any(t.state in ("running", "preparing") for t in report.tasks):
        return None
    job = call(f"job {job_id}", batch_client(settings, deadline).get_job, job_id, select=["id", "state", "poolInfo"])
    state = text(job.state)
    if state in STOPPED_JOB_STATES:
        return f"job {job_id} is {state}: its {len(waiting)} waiting task(s) will not run"
    pool_id = job.pool_info.pool_id if job.pool_info else None
    if not pool_id:
        return None
    verdict = pool_verdict(settings, pool_id, deadline=deadline)
    if verdict.settled and verdict.usable_nodes == 0:
        return f"pool {pool_id} cannot run the {len(waiting)} waiting task(s): {verdict.reason}"
    return None


def monitor(settings: Settings, job_id: str, *, timeout: float = 3600, waiter: Waiter | None = None,
            outputs: bool = True, deadline: Deadline | None = None) -> JobReport:
    """List the tasks (with backoff) until every one completed or is blocked, or until the waiting
    ones cannot run (`stalled` says why); then collect outputs."""
    check_id(job_id, "jobId")

    def probe() -> tuple[bool, JobReport]:
        report = summarize(job_id, None, None, list_tasks(settings, job_id, deadline=deadline))
        if not report.complete:
            report.stalled = _stalled(settings, job_id, report, deadline=deadline)
        return report.complete or bool(report.stalled), report

    report = (waiter or Waiter()).until(probe, timeout, f"job {job_id}", deadline=deadline)
    if outputs:
        collect_outputs(settings, job_id, report.tasks, deadline=deadline)
    return report


def delete_job(settings: Settings, job_id: str, *, deadline: Deadline | None = None) -> Deletion:
    """Ask Batch to delete the job and its tasks (one request; Batch finishes it in the background)."""
    check_id(job_id, "jobId")
    client = batch_client(settings, deadline)
    request_job_delete(client, job_id, f"job {job_id}")
    return Deletion(job_id, "deleting")
