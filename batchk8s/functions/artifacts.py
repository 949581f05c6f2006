"""POST /api/artifacts/upload (function key): push scripts, manifests and TES tasks into Blob storage.

The deployed app uploads the copies it was deployed with, so a pipeline can refresh the artifacts a
pool's start task downloads without a portal upload. Callers cannot name a directory: the app only
ever uploads its own trees.
"""

from __future__ import annotations

import azure.functions as func

from batchk8s.deadline import Deadline
from batchk8s.functions.http import endpoint, json_response, read_json
from batchk8s.problems import Problems
from batchk8s.settings import Settings

bp = func.Blueprint()


@bp.function_name("artifacts_upload")
@bp.route(route="artifacts/upload", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@endpoint
def artifacts_upload(req: func.HttpRequest, settings: Settings, deadline: Deadline) -> func.HttpResponse:
    problems = Problems()
    problems.unknown_fields(read_json(req), ())
    problems.raise_if_any("unexpected fields")
    from batchk8s.storage import upload_artifacts

    return json_response(upload_artifacts(settings, deadline=deadline).to_dict())
