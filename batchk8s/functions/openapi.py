"""GET /api/openapi.json (function key): the OpenAPI document of every route, with this app as its server."""

from __future__ import annotations

import azure.functions as func

from batchk8s.functions.http import base_url, endpoint, json_response
from batchk8s.settings import Settings

bp = func.Blueprint()


@bp.function_name("openapi")
@bp.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@endpoint
def openapi(req: func.HttpRequest, settings: Settings) -> func.HttpResponse:
    """Keyed like every route but health: the document holds no secret, but it maps the whole surface."""
    from batchk8s.openapi import document

    return json_response(document(base_url(req) or None))
