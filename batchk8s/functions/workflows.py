"""Workflows and their jobs over HTTP (function key).

`POST /api/workflows/{name}/runs` answers 202 once the job and its tasks are in Batch, with the
job's status URL in `Location`; `GET /api/jobs/{id}` reads every task's state, exit code and the
tails of its stdout/stderr back from Batch.
"""

from __future__ import annotations

import azure.functions as func

from batchk8s.deadline import Deadline
from batchk8s.functions.http import accepted, base_url, endpoint, json_response, read_json
from batchk8s.settings import Settings

bp = func.Blueprint()


@bp.function_name("workflow_list")
@bp.route(route="workflows", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@endpoint
def workflow_list(req: func.HttpRequest, settings: Settings) -> func.HttpResponse:
    from batchk8s.workflows import workflows

    return json_response({"workflows": [workflow.to_dict() for workflow in workflows()]})


@bp.function_name("workflow_run")
@bp.route(route="workflows/{name}/runs", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@endpoint
def workflow_run(req: func.HttpRequest, settings: Settings, deadline: Deadline) -> func.HttpResponse:
    """Body (optional): {"poolId": "...", "jobId": "..."}; unknown workflow -> 404 listing the known ones."""
    from batchk8s.workflows.runs import run_workflow

    run = run_workflow(settings, req.route_params.get("name", ""), read_json(req), deadline=deadline)
    return accepted(run.to_dict(), f"{base_url(req)}/api/jobs/{run.job_id}")


@bp.function_name("job_show")
@bp.route(route="jobs/{id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@endpoint
def job_show(req: func.HttpRequest, settings: Settings, deadline: Deadline) -> func.HttpResponse:
    from batchk8s.batch.jobs import job_status

    return json_response(job_status(settings, req.route_params.get("id", ""), deadline=deadline).to_dict())


@bp.function_name("job_delete")
@bp.route(route="jobs/{id}", methods=["DELETE"], auth_level=func.AuthLevel.FUNCTION)
@endpoint
def job_delete(req: func.HttpRequest, settings: Settings, deadline: Deadline) -> func.HttpResponse:
    from batchk8s.batch.jobs import delete_job

    job_id = req.route_params.get("id", "")
    return accepted(delete_job(settings, job_id, deadline=deadline).to_dict(), f"{base_url(req)}/api/jobs/{job_id}")
