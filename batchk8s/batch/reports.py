"""What reading a pool or a job returns: typed results the doors render, with `to_dict()` for JSON.

The command line reads fields (`status.ready`, `task.exit_code`); the HTTP functions and `--json`
send `to_dict()`, whose camelCase keys and key order are the API's (batchk8s/openapi). Some keys
are present only when something was read (a start task's stderr, a task's output tails, a create's
`created`): the flags that say so keep "not read" apart from "read, and empty".

Built from the Azure Batch SDK's models (`from_model`) without importing the SDK here: the models
are passed in by the service that read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from batchk8s.batch.client import text
from batchk8s.batch.node_states import PoolVerdict, node_class

if TYPE_CHECKING:
    from azure.batch import models as batch_models


@dataclass(frozen=True)
class Failure:
    """Why Batch says a task or start task failed (its `failureInfo`)."""

    category: str | None
    code: str | None
    message: str | None

    @classmethod
    def from_model(cls, info: batch_models.BatchTaskFailureInfo | None) -> Failure | None:
        if info is None:
            return None
        return cls(text(info.category), info.code, info.message)

    def to_dict(self) -> dict[str, Any]:
        return {"category": self.category, "code": self.code, "message": self.message}


@dataclass(frozen=True)
class Deletion:
    """A delete Batch accepted (`deleting`: it goes on in the background) or, after a wait, `deleted`."""

    id: str
    state: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "state": self.state}


# --- pools ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResizeError:
    """One of a pool's resize errors (quota, capacity...): why it has fewer nodes than its target."""

    code: str | None
    message: str | None
    values: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def all_of(cls, pool: batch_models.BatchPool) -> list[ResizeError]:
        return [cls(e.code, e.message, {v.name: v.value for v in e.error_values or []})
                for e in pool.resize_errors or []]

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "values": dict(self.values)}


@dataclass(frozen=True)
class StartTaskStatus:
    """A node's start task (the Kubernetes bootstrap). `stderr_read`: whether the end of its
    startup/stderr.txt was fetched (at most a few dozen nodes per status, failed ones first)."""

    state: str | None
    exit_code: int | None
    retry_count: int | None
    result: str | None
    failure: Failure | None = None
    stderr_tail: str | None = None
    stderr_read: bool = False

    @classmethod
    def from_model(cls, info: batch_models.BatchStartTaskInfo | None) -> StartTaskStatus | None:
        if info is None:
            return None
        return cls(text(info.state), info.exit_code, info.retry_count, text(info.result),
                   Failure.from_model(info.failure_info))

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"state": self.state, "exitCode": self.exit_code, "retryCount": self.retry_count,
                                "result": self.result}
        if self.failure is not None:
            body["failure"] = self.failure.to_dict()
        if self.stderr_read:
            body["stderrTail"] = self.stderr_tail
        return body


@dataclass(frozen=True)
class NodeStatus:
    """One compute node: its state, the class of that state (node_states) and its start task."""

    id: str
    state: str | None
    dedicated: bool | None
    ip_address: str | None
    start_task: StartTaskStatus | None = None

    @property
    def node_class(self) -> str:
        return node_class(self.state)

    @classmethod
    def from_model(cls, node: batch_models.BatchNode) -> NodeStatus:
        return cls(node.id, text(node.state), node.is_dedicated, node.ip_address,
                   StartTaskStatus.from_model(node.start_task_info))

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "state": self.state, "class": self.node_class,
                                "dedicated": self.dedicated, "ipAddress": self.ip_address}
        if self.start_task is not None:
            body["startTask"] = self.start_task.to_dict()
        return body


@dataclass(frozen=True)
class PoolStatus:
    """A pool as Batch reports it, with the verdict of node_states (`ready`, `settled`, `failed`,
    `reason`). `created` and `note` are set by a create: whether it created the pool or reused an
    identical one, and what a reuse left as it was."""

    id: str
    state: str | None
    allocation_state: str | None
    vm_size: str | None
    image: dict[str, Any] | None
    node_agent_sku_id: str | None
    task_slots_per_node: int
    target_dedicated_nodes: int
    target_spot_nodes: int
    current_dedicated_nodes: int | None
    current_spot_nodes: int | None
    resize_errors: list[ResizeError]
    nodes: list[NodeStatus]
    verdict: PoolVerdict
    start_task_sas_expiry: datetime | None = None
    warnings: list[dict[str, str]] = field(default_factory=list)
    created: bool | None = None
    note: str | None = None

    @property
    def ready(self) -> bool:
        return self.verdict.ready

    @property
    def settled(self) -> bool:
        return self.verdict.settled

    @property
    def failed(self) -> bool:
        return self.verdict.failed

    @property
    def reason(self) -> str:
        return self.verdict.reason

    @property
    def node_counts(self) -> dict[str, int]:
        """How many nodes are in each state (in the order the nodes were listed)."""
        counts: dict[str, int] = {}
        for node in self.nodes:
            counts[node.state] = counts.get(node.state, 0) + 1  # type: ignore[index]
        return counts

    def to_dict(self) -> dict[str, Any]:
        expiry = self.start_task_sas_expiry
        body: dict[str, Any] = {
            "id": self.id, "state": self.state, "allocationState": self.allocation_state, "vmSize": self.vm_size,
            "image": self.image, "nodeAgentSkuId": self.node_agent_sku_id, "taskSlotsPerNode": self.task_slots_per_node,
            "targetDedicatedNodes": self.target_dedicated_nodes, "targetSpotNodes": self.target_spot_nodes,
            "currentDedicatedNodes": self.current_dedicated_nodes, "currentSpotNodes": self.current_spot_nodes,
            "resizeErrors": [error.to_dict() for error in self.resize_errors], "nodeCounts": self.node_counts,
            "nodes": [node.to_dict() for node in self.nodes], **self.verdict.to_dict(),
            "startTaskSasExpiry": sas_time(expiry) if expiry else None,
            "warnings": [dict(warning) for warning in self.warnings],
        }
        if self.created is not None:
            body["created"] = self.created
        if self.note is not None:
            body["note"] = self.note
        return body


def sas_time(moment: datetime) -> str:
    """A SAS expiry as the API shows it (UTC, `Z`)."""
    return moment.isoformat().replace("+00:00", "Z")


# --- jobs ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskExecution:
    """What Batch reports about a task that was scheduled (its `executionInfo`)."""

    exit_code: int | None
    result: str | None
    start_time: str | None
    end_time: str | None
    retry_count: int | None
    failure: Failure | None = None

    @classmethod
    def from_model(cls, info: batch_models.BatchTaskExecutionInfo | None) -> TaskExecution | None:
        if info is None:
            return None
        return cls(info.exit_code, text(info.result), info.start_time.isoformat() if info.start_time else None,
                   info.end_time.isoformat() if info.end_time else None, info.retry_count,
                   Failure.from_model(info.failure_info))


@dataclass
class TaskResult:
    """One task of a job. `blocked`: it waits on a task that failed, so it will never run.
    `outputs_read`: whether the tails of its stdout/stderr were fetched (at most OUTPUT_TASKS per read)."""

    id: str
    state: str | None
    depends_on: list[str] = field(default_factory=list)
    execution: TaskExecution | None = None
    node_id: str | None = None
    blocked: bool = False
    stdout_tail: str | None = None
    stderr_tail: str | None = None
    outputs_read: bool = False

    @property
    def exit_code(self) -> int | None:
        return self.execution.exit_code if self.execution else None

    @property
    def failure(self) -> Failure | None:
        return self.execution.failure if self.execution else None

    @property
    def start_time(self) -> str | None:
        return self.execution.start_time if self.execution else None

    @property
    def failed(self) -> bool:
        """Completed without success: a non-zero (or no) exit code, or a failure Batch reported."""
        return self.state == "completed" and (self.exit_code != 0 or self.failure is not None)

    @classmethod
    def from_model(cls, task: batch_models.BatchTask) -> TaskResult:
        return cls(task.id, text(task.state), list(task.depends_on.task_ids or []) if task.depends_on else [],
                   TaskExecution.from_model(task.execution_info),
                   task.node_info.node_id if task.node_info is not None else None)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "state": self.state, "dependsOn": list(self.depends_on)}
        info = self.execution
        if info is not None:
            body.update({"exitCode": info.exit_code, "result": info.result, "startTime": info.start_time,
                         "endTime": info.end_time, "retryCount": info.retry_count})
            if info.failure is not None:
                body["failure"] = info.failure.to_dict()
        if self.node_id is not None:
            body["nodeId"] = self.node_id
        if self.blocked:
            body["blocked"] = True
        if self.outputs_read:
            body.update({"stdoutTail": self.stdout_tail, "stderrTail": self.stderr_tail})
        return body


@dataclass
class JobReport:
    """A job's tasks and what they add up to: `complete` (every task finished or blocked), `succeeded`,
    and, from a wait, `stalled` (why the waiting tasks can never run)."""

    id: str
    pool_id: str | None
    state: str | None
    tasks: list[TaskResult]
    stalled: str | None = None

    @property
    def task_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for task in self.tasks:
            counts[task.state] = counts.get(task.state, 0) + 1  # type: ignore[index]
        return counts

    @property
    def failed_tasks(self) -> list[str]:
        return [task.id for task in self.tasks if task.failed]

    @property
    def blocked_tasks(self) -> list[str]:
        return [task.id for task in self.tasks if task.blocked]

    @property
    def complete(self) -> bool:
        return bool(self.tasks) and all(task.state == "completed" or task.blocked for task in self.tasks)

    @property
    def succeeded(self) -> bool:
        return self.complete and not self.failed_tasks and not self.blocked_tasks

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "poolId": self.pool_id, "state": self.state,
                                "taskCounts": self.task_counts, "complete": self.complete,
                                "succeeded": self.succeeded, "failedTasks": self.failed_tasks,
                                "blockedTasks": self.blocked_tasks, "tasks": [task.to_dict() for task in self.tasks]}
        if self.stalled is not None:
            body["stalled"] = self.stalled
        return body
