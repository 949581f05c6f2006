"""Adding tasks to a job in bulk: chunks of 100, several requests at once, bounded resubmission.

Batch answers an add-collection request with one result per task: `success`, `clienterror`
(refused: resending the same task cannot help) or `servererror` (not added, "can be retried
without modification"). azure-batch's `create_tasks` resubmits `servererror` tasks, and whole
chunks that failed with a 5xx, until they are added: against an account that keeps failing it
never returns. This module resubmits them for a fixed number of rounds with backoff, then reports
exactly which tasks were not added and why, so a caller can run again (tasks keep their ids, so a
resubmitted task that did get in comes back `TaskExists` and counts as already there).

Every request carries the operation's deadline, and a resubmission round starts only if its pause
leaves time before that deadline. Tasks still not added then are named in the error: 502
`TasksNotAdded` when Batch kept failing them, 504 `UpstreamTimeout` when Batch did not answer in time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from batchk8s.batch.client import batch_client, text
from batchk8s.deadline import Deadline
from batchk8s.errors import BATCH, UpstreamError, UpstreamTimeoutError, azure_code, from_azure
from batchk8s.settings import Settings

if TYPE_CHECKING:
    from azure.batch import models as batch_models

log = logging.getLogger("batchk8s.batch.submission")

TASKS_PER_REQUEST = 100  # Batch's limit per add-collection request
MAX_CONCURRENT_REQUESTS = 10
RESUBMIT_DELAYS = (1.0, 4.0, 10.0)  # before each extra round: three resubmissions, about 15 s in all
TOO_LARGE = "RequestBodyTooLarge"
UNCONFIRMED = "NoResult"  # the chunk's request failed after the client's retries: added or not is unknown


@dataclass
class Tally:
    """Where every task of one submission ended up."""

    added: int = 0
    existing: int = 0
    resubmitted: int = 0
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # (task id, code, message)
    unavailable: dict[str, tuple[str, str]] = field(default_factory=dict)  # task id -> (code, message)
    rounds: int = 0  # requests rounds sent
    out_of_time: bool = False  # resubmission stopped because the deadline left no time for another round

    def to_dict(self) -> dict[str, int]:
        return {"added": self.added, "existing": self.existing, "resubmitted": self.resubmitted}


def _first_line(error: Any) -> str:
    message = getattr(getattr(error, "message", None), "value", None) or ""
    return message.splitlines()[0] if message else ""


def _chunks(tasks: Sequence[Any], size: int) -> list[list[Any]]:
    return [list(tasks[i:i + size]) for i in range(0, len(tasks), size)]


def _send(client: Any, job_id: str, chunk: list[batch_models.BatchTaskCreateOptions]) -> list[tuple[Any, str, str,
                                                                                                    str]]:
    """One add-collection request: (task, status, code, message) per task. A body Batch finds too
    large is split in half and sent again; a request that failed after the pipeline's retries with a
    5xx or no answer leaves its tasks unconfirmed; any other refusal (job gone, being deleted) raises."""
    from azure.batch import models as m
    from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError

    try:
        response = client.create_task_collection(job_id, m.BatchTaskGroup(task_values=chunk))
    except ClientAuthenticationError as exc:  # no token, or Batch refused ours: resubmitting cannot help
        raise from_azure(exc, f"tasks of job {job_id}", BATCH) from None
    except HttpResponseError as exc:
        code = azure_code(exc)
        if code == TOO_LARGE:
            if len(chunk) == 1:
                return [(chunk[0], "clienterror", TOO_LARGE, "the task alone is larger than Batch accepts")]
            half = len(chunk) // 2
            return _send(client, job_id, chunk[:half]) + _send(client, job_id, chunk[half:])
        if exc.status_code is not None and exc.status_code < 500:
            raise from_azure(exc, f"tasks of job {job_id}", BATCH) from None
        return [(task, "servererror", code or str(exc.status_code), "the request failed") for task in chunk]
    except AzureError as exc:
        return [(task, "servererror", UNCONFIRMED, type(exc).__name__) for task in chunk]
    by_id = {(r.task_id or "").lower(): r for r in response.result_values or []}
    outcomes = []
    for task in chunk:
        result = by_id.get(task.id.lower())
        if result is None:
            outcomes.append((task, "servererror", UNCONFIRMED, "Batch returned no result for the task"))
        else:
            error = result.error
            outcomes.append((task, text(result.status) or "", getattr(error, "code", None) or "",
                             _first_line(error)))
    return outcomes


def submit(client: Any, job_id: str, tasks: Sequence[batch_models.BatchTaskCreateOptions], *,
           delays: Sequence[float] = RESUBMIT_DELAYS, sleep: Callable[[float], None] = time.sleep,
           deadline: Deadline | None = None) -> Tally:
    """Add every task; resubmit the ones Batch could not add for `len(delays)` more rounds, as far as
    `deadline` leaves time for them."""
    tally = Tally()
    pending = list(tasks)
    for round_number in range(len(delays) + 1):
        if round_number and deadline is not None and not deadline.allows(delays[round_number - 1]):
            tally.out_of_time = True
            break
        if round_number:
            log.warning("job %s: resubmitting %d task(s) Batch could not add (round %d of %d)", job_id,
                        len(pending), round_number, len(delays))
            tally.resubmitted += len(pending)
            sleep(delays[round_number - 1])
        tally.rounds = round_number + 1
        chunks = _chunks(pending, TASKS_PER_REQUEST)
        with ThreadPoolExecutor(max_workers=min(MAX_CONCURRENT_REQUESTS, len(chunks))) as workers:
            outcomes = [o for chunk_outcomes in workers.map(lambda c: _send(client, job_id, c), chunks)
                        for o in chunk_outcomes]
        pending = []
        for task, status, code, message in outcomes:
            if status == "success":
                tally.added += 1
                tally.unavailable.pop(task.id, None)
            elif code == "TaskExists":
                tally.existing += 1
                tally.unavailable.pop(task.id, None)
            elif status == "servererror":
                pending.append(task)
                tally.unavailable[task.id] = (code, message)
            else:
                tally.refused.append((task.id, code or status or "TaskNotAdded", message))
        if not pending:
            break
    return tally


def failure(job_id: str, tally: Tally, rounds: int | None = None) -> UpstreamError | None:
    """The error naming every task that is not in the job, or None when all are."""
    if not tally.refused and not tally.unavailable:
        return None
    attempts = tally.rounds if rounds is None else rounds + 1
    details = [{"field": f"tasks.{task_id}", "message": f"{code}: {message}".rstrip(": ")}
               for task_id, code, message in tally.refused]
    details += [{"field": f"tasks.{task_id}", "message": f"{code}: {message} (servererror after {attempts} "
                 "attempts; running again resubmits it)".replace(":  (", ": (")}
                for task_id, (code, message) in sorted(tally.unavailable.items())]
    summary = f"added {tally.added}, already there {tally.existing}"
    if tally.refused:
        codes = sorted({code for _, code, _ in tally.refused})
        return UpstreamError(f"job {job_id}: Batch refused {len(tally.refused)} task(s): {', '.join(codes)}; "
                             f"{summary}", upstream_status=400, code=codes[0], details=details)
    codes = sorted({code for code, _ in tally.unavailable.values()})
    if tally.out_of_time and all("Timeout" in message for _, message in tally.unavailable.values()):
        return UpstreamTimeoutError(f"job {job_id}: {BATCH} did not answer in time while adding "
                                    f"{len(tally.unavailable)} task(s) ({attempts} attempts); {summary}",
                                    details=details)
    stopped = "; the deadline left no time for another round" if tally.out_of_time else ""
    return UpstreamError(f"job {job_id}: Batch could not add {len(tally.unavailable)} task(s) ({', '.join(codes)}) "
                         f"after {attempts} attempts{stopped}; {summary}", upstream_status=500, code="TasksNotAdded",
                         details=details)


def add_tasks(settings: Settings, job_id: str, tasks: Sequence[batch_models.BatchTaskCreateOptions], *,
              delays: Sequence[float] = RESUBMIT_DELAYS, sleep: Callable[[float], None] = time.sleep,
              deadline: Deadline | None = None) -> dict[str, int]:
    """Add any number of tasks (existing ids count as there); raise naming every task not added."""
    if not tasks:
        return Tally().to_dict()
    tally = submit(batch_client(settings, deadline), job_id, tasks, delays=delays, sleep=sleep, deadline=deadline)
    error = failure(job_id, tally)
    if error is not None:
        raise error
    return tally.to_dict()
