"""What a Batch task is to this app: a TaskSpec, and how it becomes a create-task request.

Workflows describe tasks with TaskSpec (plain data, no SDK), so they stay testable and `plan` can
show them. Resource files name a container and blob prefix; the URLs that let the node fetch them
(one read-only SAS per blob, never one for the whole container) are issued only when the task is
submitted (`to_task_options` takes the function that lists and signs them).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from batchk8s.problems import Problems, pattern_problem
from batchk8s.settings import BATCH_ID, BATCH_ID_RULE

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
    problems = Problems()
    seen: set[str] = set()
    for spec in specs:
        if problem := pattern_problem(spec.id, BATCH_ID, BATCH_ID_RULE):
            problems.add(f"tasks.{spec.id}", f"id {problem}")
        if spec.id.lower() in seen:
            problems.add(f"tasks.{spec.id}", "duplicate task id")
        seen.add(spec.id.lower())
    for spec in specs:
        for dep in spec.depends_on:
            if dep.lower() not in seen:
                problems.add(f"tasks.{spec.id}.dependsOn", f"unknown task {dep!r}")
    problems.raise_if_any("invalid workflow tasks")


# (file path on the node, URL) of each blob a BlobFiles names.
BlobUrls = Callable[[BlobFiles], list[tuple[str, str]]]


def to_task_options(spec: TaskSpec, blob_urls: BlobUrls,
                    affinity: batch_models.BatchAffinityInfo | None = None,
                    identity: batch_models.BatchNodeIdentityReference | None = None,
                    ) -> batch_models.BatchTaskCreateOptions:
    """The create-task request; `blob_urls(files)` returns (file path, read SAS URL of that one blob) for
    each blob the task reads (or placeholders); `affinity` (the control-plane node of an `auto` pool) is
    applied to tasks with `control_plane`; with `identity` (the pool's managed identity) the nodes fetch
    the files with it and the URLs carry no SAS."""
    from azure.batch import models as m

    files = [m.ResourceFile(http_url=url, file_path=path, identity_reference=identity)
             for f in spec.resource_files for path, url in blob_urls(f)]
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


def task_document(spec: TaskSpec, blob_urls: BlobUrls, affinity: batch_models.BatchAffinityInfo | None = None,
                  identity: batch_models.BatchNodeIdentityReference | None = None) -> dict[str, Any]:
    """The create-task request as the REST body (for plan output and logs)."""
    return to_task_options(spec, blob_urls, affinity, identity).as_dict()


def file_path(files: BlobFiles, blob_name: str) -> str:
    """Where Batch would put `blob_name` for a container resource file with this prefix and file path:
    the blob's name under `file_path` (so one-blob-per-URL files land exactly where they used to)."""
    return f"{files.file_path.rstrip('/')}/{blob_name}" if files.file_path else blob_name
