"""TES over HTTP (function key): submit, read, list and cancel GA4GH TES tasks on the cluster's TESK.

POST /api/tes/tasks                 body = TES task, or ?sample=NAME -> 202 + Location
GET  /api/tes/tasks/{id}?view=      MINIMAL (default), BASIC or FULL
GET  /api/tes/tasks                 name_prefix, state, tag_key/tag_value (repeatable), page_size, page_token, view
POST /api/tes/tasks/{id}/cancel     -> 202 + Location; 200 when already canceled; 409 TaskAlreadyEnded
GET  /api/tes/service-info

TES is the source of truth: the app stores nothing, a task's status is read back from TES.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import azure.functions as func

from batchk8s.deadline import Deadline
from batchk8s.errors import InputError
from batchk8s.functions.http import accepted, base_url, endpoint, int_param, json_response, query_values, read_json
from batchk8s.settings import Settings

bp = func.Blueprint()


def _location(req: func.HttpRequest, task_id: str) -> str:
    return f"{base_url(req)}/api/tes/tasks/{quote(task_id, safe='')}"


def _submission(req: func.HttpRequest) -> dict[str, Any]:
    from batchk8s.tes import load_sample

    sample = req.params.get("sample")
    body = read_json(req, required=sample is None)
    if sample is None:
        return body
    if body:
        raise InputError.for_field("sample", "give a task in the body or ?sample=NAME, not both")
    return load_sample(sample)


@bp.function_name("tes_create")
@bp.route(route="tes/tasks", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@endpoint
def tes_create(req: func.HttpRequest, settings: Settings, deadline: Deadline) -> func.HttpResponse:
    from batchk8s.tes import client_for, prepare_task

    task = prepare_task(_submission(req), settings, deadline)  # every problem reported before anything is sent
    task_id = client_for(settings).within(deadline).create(task)
    location = _location(req, task_id)
    return accepted({"id": task_id, "location": location}, location)


@bp.function_name("tes_get")
@bp.route(route="tes/tasks/{id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@endpoint
def tes_get(req: func.HttpRequest, settings: Settings, deadline: Deadline) -> func.HttpResponse:
    from batchk8s.tes import client_for

    client = client_for(settings).within(deadline)
    return json_response(client.get(req.route_params.get("id", ""), req.params.get("view") or None))


@bp.function_name("tes_list")
@bp.route(route="tes/tasks", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@endpoint
def tes_list(req: func.HttpRequest, settings: Settings, deadline: Deadline) -> func.HttpResponse:
    from batchk8s.tes import client_for

    return json_response(client_for(settings).within(deadline).list(**list_filters(req)))


def list_filters(req: func.HttpRequest) -> dict[str, Any]:
    """The TES list query (name_prefix, state, tag_key/tag_value pairs, page_size, page_token, view) as
    the client's `list` keywords; shared with the TES 1.1 endpoint, which takes the same parameters."""
    from batchk8s.tes.client import MAX_PAGE_SIZE

    keys, values = query_values(req, "tag_key"), query_values(req, "tag_value")
    if len(values) > len(keys):
        raise InputError.for_field("tag_value", "each tag_value needs a tag_key before it")
    if any(not key for key in keys):
        raise InputError.for_field("tag_key", "must not be empty")
    if len(set(keys)) != len(keys):
        raise InputError.for_field("tag_key", "each key may be given once")
    tags = {key: values[index] if index < len(values) else "" for index, key in enumerate(keys)}
    return {"view": req.params.get("view") or None, "page_size": int_param(req, "page_size", 0, 1, MAX_PAGE_SIZE)
            or None, "page_token": req.params.get("page_token") or None,
            "name_prefix": req.params.get("name_prefix") or None, "state": req.params.get("state") or None,
            "tags": tags}


@bp.function_name("tes_cancel")
@bp.route(route="tes/tasks/{id}/cancel", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@endpoint
def tes_cancel(req: func.HttpRequest, settings: Settings, deadline: Deadline) -> func.HttpResponse:
    from batchk8s.tes import client_for

    task_id = req.route_params.get("id", "")
    result = client_for(settings).within(deadline).cancel(task_id)
    location = _location(req, task_id)
    if not result.requested:
        return json_response({**result.to_dict(), "location": location})
    return accepted({**result.to_dict(), "location": location}, location)


@bp.function_name("tes_service_info")
@bp.route(route="tes/service-info", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@endpoint
def tes_service_info(req: func.HttpRequest, settings: Settings, deadline: Deadline) -> func.HttpResponse:
    from batchk8s.tes import client_for

    return json_response(client_for(settings).within(deadline).describe())
