"""What a Batch task is to this app: a TaskSpec, and how it becomes a create-task request.

Workflows describe tasks with TaskSpec (plain data, no SDK), so they stay testable and `plan` can
show them. Resource files name a container and blob prefix; the SAS URL that lets the node fetch
them is issued only when the task is submitted (`to_task_options` takes the URL function).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from batchk8s.errors import InputError
from batchk8s.settings import BATCH_ID

if TYPE_CHECKING:
    from azure.batch import models as batch_models


@dataclass(frozen=True)
class BlobFiles:
    """Every blob under `prefix` in `container`, downloaded into the task's working directory
    (under `file_path` when given), keeping the blob names as relative paths."""

    container: str
    prefix: str
    file_path: str | None = None


@dataclass(frozen=True)
class TaskSpec:
    """One Batch task of a workflow.

    `command_line` runs without a shell: build it with `bash_command`, and pass values through
    `environment` rather than pasting them into the script. Tasks run as the pool's admin auto-user
    (the identity of the start task that wrote the private kubeconfig) unless `admin` is False. On a
    multi-node (`auto`) pool only the control-plane node holds that kubeconfig: tasks go there
    (Batch affinity) unless `control_plane` is False, for tasks that need no kubectl.
    """

    id: str
    command_line: str
    depends_on: tuple[str, ...] = ()
    resource_files: tuple[BlobFiles, ...] = ()
    environment: Mapping[str, str] = field(default_factory=dict)
    max_wall_clock_seconds: int | None = 3600
    max_task_retry_count: int = 0
    admin: bool = True
    control_plane: bool = True
    display_name: str | None = None


def bash_command(script: str) -> str:
    """`/bin/bash -c '<script>'` with the script quoted as one argument."""
    return "/bin/bash -c " + shlex.quote(script)


def check_task_specs(specs: list[TaskSpec]) -> None:
    """Ids valid and unique (case-insensitively, as Batch compares them), dependencies known."""
    problems = []
    seen: set[str] = set()
    for spec in specs:
        if not BATCH_ID.fullmatch(spec.id):
            problems.append({"field": f"tasks.{spec.id}", "message": "id must be 1-64 letters, digits, '-' or '_'"})
        if spec.id.lower() in seen:
            problems.append({"field": f"tasks.{spec.id}", "message": "duplicate task id"})
        seen.add(spec.id.lower())
    for spec in specs:
        for dep in spec.depends_on:
            if dep.lower() not in seen:
                problems.append({"field": f"tasks.{spec.id}.dependsOn", "message": f"unknown task {dep!r}"})
    if problems:
        raise InputError.from_problems(problems, "invalid workflow tasks")


def to_task_options(spec: TaskSpec, container_url: Callable[[str], str],
                    affinity: batch_models.BatchAffinityInfo | None = None) -> batch_models.BatchTaskCreateOptions:
    """The create-task request; `container_url(container)` returns a read+list SAS URL (or a placeholder);
    `affinity` (the control-plane node of an `auto` pool) is applied to tasks with `control_plane`."""
    from azure.batch import models as m

    files = [m.ResourceFile(storage_container_url=container_url(f.container), blob_prefix=f.prefix,
                            file_path=f.file_path) for f in spec.resource_files]
    identity = m.UserIdentity(auto_user=m.AutoUserSpecification(scope="pool", elevation_level="admin")) \
        if spec.admin else None
    constraints = m.BatchTaskConstraints(
        max_wall_clock_time=timedelta(seconds=spec.max_wall_clock_seconds) if spec.max_wall_clock_seconds else None,
        max_task_retry_count=spec.max_task_retry_count)
    return m.BatchTaskCreateOptions(
        id=spec.id, display_name=spec.display_name, command_line=spec.command_line,
        resource_files=files or None,
        environment_settings=[m.EnvironmentSetting(name=k, value=v) for k, v in spec.environment.items()] or None,
        user_identity=identity, constraints=constraints,
        affinity_info=affinity if spec.control_plane else None,
        depends_on=m.BatchTaskDependencies(task_ids=list(spec.depends_on)) if spec.depends_on else None)


def task_document(spec: TaskSpec, container_url: Callable[[str], str],
                  affinity: batch_models.BatchAffinityInfo | None = None) -> dict[str, Any]:
    """The create-task request as the REST body (for plan output and logs)."""
    return to_task_options(spec, container_url, affinity).as_dict()
