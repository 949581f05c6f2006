"""Running a workflow: its tasks as one Batch job on a pool, then (optionally) watching it.

A run is create-or-reuse all the way down: the job is reused when it exists on the same pool, and
tasks that already exist are left alone, so repeating a request after a timeout finishes the run
instead of failing or doubling it. On a multi-node (`auto`) pool the tasks are sent to the
control-plane node, the only one with the admin kubeconfig (see `control_plane`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from batchk8s.batch import jobs
from batchk8s.batch.control_plane import CONTROL_PLANE_BLOB, control_plane_affinity
from batchk8s.batch.polling import Waiter
from batchk8s.batch.pool_spec import node_identity
from batchk8s.batch.reports import JobReport
from batchk8s.batch.tasks import BlobFiles, TaskSpec, check_task_specs, file_path, task_document, to_task_options
from batchk8s.deadline import Deadline
from batchk8s.errors import ConfigError
from batchk8s.problems import Problems
from batchk8s.settings import BATCH_ID, BATCH_ID_RULE, Settings
from batchk8s.workflows import Workflow, WorkflowContext, get_workflow

RUN_FIELDS = ("poolId", "jobId")
PLACEHOLDER_SAS = "<placeholder: a read-only SAS URL for each blob under {container}/{prefix}>"
PLACEHOLDER_IDENTITY = "<placeholder: the URL of each blob under {container}/{prefix}, read with the pool identity>"
# Workflow tasks read their inputs within minutes of submission (a retry within the hour): a day of read
# access to each blob they read is ample, and no more than that is handed out.
WORKFLOW_SAS_HOURS = 24
PLACEHOLDER_AFFINITY = "<placeholder: affinityId of the control-plane node named in {container}/{blob}>"


def run_target(settings: Settings, name: str, body: dict[str, Any] | None,
               now: datetime | None = None) -> tuple[Workflow, WorkflowContext]:
    """The workflow (404 when unknown) and validated pool/job ids (job defaults to '<name>-<UTC time>')."""
    workflow = get_workflow(name)
    body = dict(body or {})
    problems = Problems()
    problems.unknown_fields(body, RUN_FIELDS)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    # Absent means the default; present means exactly that id ("", 0, false, [] or null are refused).
    pool_id = problems.matches("poolId", body.get("poolId", settings.pool_id), BATCH_ID, BATCH_ID_RULE)
    job_id = problems.matches("jobId", body.get("jobId", f"{name}-{stamp}"), BATCH_ID, BATCH_ID_RULE)
    problems.raise_if_any("invalid workflow run")
    return workflow, WorkflowContext(pool_id=pool_id, job_id=job_id)


def workflow_tasks(settings: Settings, workflow: Workflow, context: WorkflowContext) -> list[TaskSpec]:
    specs = list(workflow.build(settings, context))
    check_task_specs(specs)
    return specs


@dataclass(frozen=True)
class WorkflowRun:
    """A run Batch accepted: its job (created or reused), its task ids, how their submission went
    (added now, already in the job, resubmitted after a server error) and, after a wait, the job's report."""

    workflow: str
    pool_id: str
    job_id: str
    job_created: bool
    tasks: list[str] = field(default_factory=list)
    added: int = 0
    existing: int = 0
    resubmitted: int = 0
    affinity_id: str | None = None
    status: JobReport | None = None

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"workflow": self.workflow, "poolId": self.pool_id, "jobId": self.job_id,
                                "jobCreated": self.job_created, "tasks": list(self.tasks), "added": self.added,
                                "existing": self.existing, "resubmitted": self.resubmitted,
                                "affinityId": self.affinity_id}
        if self.status is not None:
            body["status"] = self.status.to_dict()
        return body


def run_workflow(settings: Settings, name: str, body: dict[str, Any] | None = None, *, wait: bool = False,
                 timeout: float = 3600, waiter: Waiter | None = None, deadline: Deadline | None = None) -> WorkflowRun:
    """Create (or reuse) the job on the pool and add the workflow's tasks; with `wait`, monitor it."""
    from batchk8s import storage

    settings.require("batch")
    workflow, context = run_target(settings, name, body)
    specs = workflow_tasks(settings, workflow, context)
    # Before any change: 404 for a missing pool, 409 for an auto pool without a usable control plane.
    affinity = control_plane_affinity(settings, context.pool_id, deadline=deadline)

    identity = node_identity(settings)

    @functools.cache
    def blob_urls(files: BlobFiles) -> list[tuple[str, str]]:
        names = storage.list_blob_names(settings, files.container, files.prefix, deadline=deadline)
        if not names:
            raise ConfigError(f"no blobs under {files.container}/{files.prefix} for workflow {name}: upload the "
                              "artifacts first (artifacts upload)", code="WorkflowInputsMissing",
                              details=[{"field": "container", "message": f"{files.container}/{files.prefix} is empty"}])
        if identity:  # the nodes read with the pool identity: no SAS at all
            return [(file_path(files, blob), storage.blob_url(settings, files.container, blob)) for blob in names]
        return [(file_path(files, blob), storage.blob_sas_url(settings, files.container, blob, hours=WORKFLOW_SAS_HOURS,
                                                              deadline=deadline)) for blob in names]

    options = [to_task_options(spec, blob_urls, affinity, identity) for spec in specs]
    created = jobs.create_job(settings, context.job_id, context.pool_id, display_name=f"workflow {name}",
                              deadline=deadline)
    tally = jobs.add_tasks(settings, context.job_id, options, deadline=deadline)
    status = jobs.monitor(settings, context.job_id, timeout=timeout, waiter=waiter, deadline=deadline) if wait else None
    return WorkflowRun(name, context.pool_id, context.job_id, created, [spec.id for spec in specs], tally["added"],
                       tally["existing"], tally["resubmitted"], affinity.affinity_id if affinity else None, status)


def planned_run(settings: Settings, name: str, body: dict[str, Any] | None = None,
                now: datetime | None = None) -> dict[str, Any]:
    """The job and task requests a run would send, with placeholder SAS URLs (for `plan`)."""
    workflow, context = run_target(settings, name, body, now)
    specs = workflow_tasks(settings, workflow, context)
    text = PLACEHOLDER_IDENTITY if settings.pool_identity_id else PLACEHOLDER_SAS

    def placeholder(files: BlobFiles) -> list[tuple[str, str]]:
        return [(file_path(files, files.prefix), text.format(container=files.container, prefix=files.prefix))]

    affinity = None
    if settings.k8s_node_role == "auto":
        from azure.batch import models as m

        from batchk8s.batch.pool_spec import cluster_container

        affinity = m.BatchAffinityInfo(affinity_id=PLACEHOLDER_AFFINITY.format(
            container=cluster_container(context.pool_id), blob=CONTROL_PLANE_BLOB))
    return {"workflow": name,
            "job": jobs.job_spec(context.job_id, context.pool_id, f"workflow {name}").as_dict(),
            "tasks": [task_document(spec, placeholder, affinity, node_identity(settings)) for spec in specs]}
