"""GA4GH TES 1.1 for workflow engines, at /api/ga4gh/tes/v1 (the spec's paths and answers):

GET  /api/ga4gh/tes/v1/service-info
POST /api/ga4gh/tes/v1/tasks              body = TES task -> 200 {"id"}
GET  /api/ga4gh/tes/v1/tasks              name_prefix, state, tag_key/tag_value, page_size, page_token, view
GET  /api/ga4gh/tes/v1/tasks/{id}         view
POST /api/ga4gh/tes/v1/tasks/{id}:cancel  -> 200 {}

Engines send `Authorization: Bearer` or basic credentials, not function keys, so the host lets
these routes through (anonymous) and each handler authenticates first: a request without an
accepted credential is a 401 with `WWW-Authenticate` before its body is read or TES is called.
The cancel route is an ASP.NET Core complex segment, `{id}:cancel`: the host matches its literal
`:cancel` from the right, so the id is everything before the last `:cancel`.
"""

from __future__ import annotations

from collections.abc import Callable

import azure.functions as func

from batchk8s.deadline import Deadline
from batchk8s.functions.http import base_url, endpoint, json_response, read_json
from batchk8s.functions.tes import list_filters
from batchk8s.settings import Settings

bp = func.Blueprint()
ROOT = "ga4gh/tes/v1"

Handler = Callable[..., func.HttpResponse]


def authenticated(handler: Handler) -> Handler:
    """Run `handler` only for a caller with an accepted gateway credential (else UnauthorizedError -> 401)."""

    def checked(req: func.HttpRequest, settings: Settings, deadline: Deadline) -> func.HttpResponse:
        from batchk8s.tes.gateway import authenticate

        authenticate(settings, req.headers.get("authorization"))
        return handler(req, settings, deadline)

    for attribute in ("__name__", "__qualname__", "__doc__", "__module__"):
        setattr(checked, attribute, getattr(handler, attribute))
    return checked


@bp.function_name("tes_gateway_service_info")
@bp.route(route=f"{ROOT}/service-info", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
@authenticated
def tes_gateway_service_info(req: func.HttpRequest, settings: Settings, deadline: Deadline) -> func.HttpResponse:
    from batchk8s.tes import gateway

    return json_response(gateway.service_info(settings, f"{base_url(req)}/api/{ROOT}", deadline))


@bp.function_name("tes_gateway_create")
@bp.route(route=f"{ROOT}/tasks", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
@authenticated
def tes_gateway_create(req: func.HttpRequest, settings: Settings, deadline: Deadline) -> func.HttpResponse:
    from batchk8s.tes import gateway

    return json_response(gateway.create(settings, read_json(req, required=True), deadline))


@bp.function_name("tes_gateway_list")
@bp.route(route=f"{ROOT}/tasks", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
@authenticated
def tes_gateway_list(req: func.HttpRequest, settings: Settings, deadline: Deadline) -> func.HttpResponse:
    from batchk8s.tes import gateway

    return json_response(gateway.list_page(settings, deadline, **list_filters(req)))


@bp.function_name("tes_gateway_get")
@bp.route(route=ROOT + "/tasks/{id}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
@authenticated
def tes_gateway_get(req: func.HttpRequest, settings: Settings, deadline: Deadline) -> func.HttpResponse:
    from batchk8s.tes import gateway

    return json_response(gateway.get(settings, req.route_params.get("id", ""), req.params.get("view") or None,
                                     deadline))


@bp.function_name("tes_gateway_cancel")
@bp.route(route=ROOT + "/tasks/{id}:cancel", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
@authenticated
def tes_gateway_cancel(req: func.HttpRequest, settings: Settings, deadline: Deadline) -> func.HttpResponse:
    from batchk8s.tes import gateway

    return json_response(gateway.cancel(settings, req.route_params.get("id", ""), deadline))
