"""Pools over HTTP (function key): create-or-reuse, status, resize, delete.

Allocation and node bootstrap take minutes, so changes answer 202 with the pool's status URL in
`Location`; the status is read back from Azure Batch each time.
"""

from __future__ import annotations

import azure.functions as func

from batchk8s.deadline import Deadline
from batchk8s.functions.http import accepted, base_url, endpoint, json_response, read_json
from batchk8s.settings import Settings

bp = func.Blueprint()


def _location(req: func.HttpRequest, pool_id: str) -> str:
    return f"{base_url(req)}/api/pools/{pool_id}"


@bp.function_name("pool_create")
@bp.route(route="pools", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@endpoint
def pool_create(req: func.HttpRequest, settings: Settings, deadline: Deadline) -> func.HttpResponse:
    """Body (all optional): id, vmSize, dedicatedNodes, spotNodes, imageId, nodeAgentSkuId, metadata."""
    from batchk8s.batch.pools import create_pool

    status = create_pool(settings, read_json(req), deadline=deadline)
    return accepted(status.to_dict(), _location(req, status.id))


@bp.function_name("pool_show")
@bp.route(route="pools/{id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@endpoint
def pool_show(req: func.HttpRequest, settings: Settings, deadline: Deadline) -> func.HttpResponse:
    from batchk8s.batch.pools import pool_status

    return json_response(pool_status(settings, req.route_params.get("id", ""), deadline=deadline).to_dict())


@bp.function_name("pool_resize")
@bp.route(route="pools/{id}/resize", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@endpoint
def pool_resize(req: func.HttpRequest, settings: Settings, deadline: Deadline) -> func.HttpResponse:
    """Body: {"dedicatedNodes": N, "spotNodes": M} (either or both)."""
    from batchk8s.batch.pools import resize_pool

    pool_id = req.route_params.get("id", "")
    status = resize_pool(settings, pool_id, read_json(req, required=True), deadline=deadline)
    return accepted(status.to_dict(), _location(req, pool_id))


@bp.function_name("pool_delete")
@bp.route(route="pools/{id}", methods=["DELETE"], auth_level=func.AuthLevel.FUNCTION)
@endpoint
def pool_delete(req: func.HttpRequest, settings: Settings, deadline: Deadline) -> func.HttpResponse:
    from batchk8s.batch.pools import delete_pool

    pool_id = req.route_params.get("id", "")
    return accepted(delete_pool(settings, pool_id, deadline=deadline).to_dict(), _location(req, pool_id))
