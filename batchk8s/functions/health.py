"""GET /api/health (anonymous) and GET /api/config (function key)."""

from __future__ import annotations

import azure.functions as func

from batchk8s import __version__
from batchk8s.functions.http import endpoint, json_response
from batchk8s.settings import Settings

bp = func.Blueprint()


@bp.function_name("health")
@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    """Liveness for load balancers and probes: says nothing about the configuration."""
    return json_response({"status": "ok", "version": __version__})


@bp.function_name("config")
@bp.route(route="config", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@endpoint
def config(req: func.HttpRequest, settings: Settings) -> func.HttpResponse:
    return json_response(settings.report())
