"""What every HTTP function shares: JSON in and out, and one error shape.

Handlers are written as `def handler(req, settings) -> HttpResponse` and wrapped with `@endpoint`,
which loads the settings, turns our errors into `{"error": {...}}` with their status, and turns
anything unexpected into a logged 500 that carries no traceback or secret to the caller. A handler
that calls Azure or TES also takes `deadline`: the request's `Deadline`, which ends before the host's
230 s cut, and which it hands to every service it calls.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Callable
from typing import Any

import azure.functions as func

from batchk8s import deprecation_headers
from batchk8s.deadline import Deadline
from batchk8s.errors import BatchK8sError, InputError, PayloadTooLargeError
from batchk8s.problems import parse_whole_number
from batchk8s.settings import current_settings

MAX_BODY = 1024 * 1024
log = logging.getLogger("batchk8s.http")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body, indent=2, default=str), status_code=status,
                             headers=headers, mimetype="application/json")


def error_response(error: BatchK8sError) -> func.HttpResponse:
    return json_response(error.to_dict(), error.status, getattr(error, "headers", None))


def accepted(body: Any, location: str) -> func.HttpResponse:
    """202 with a Location the caller polls; Azure (Batch, ARM, TES) stays the source of truth."""
    return json_response(body, 202, {"Location": location})


def endpoint(handler: Callable[..., func.HttpResponse]) -> Callable[..., func.HttpResponse]:
    wants_deadline = "deadline" in inspect.signature(handler).parameters

    def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        deadline = Deadline.for_http()  # from the moment the request arrives
        try:
            if wants_deadline:
                return handler(req, current_settings(), deadline=deadline)
            return handler(req, current_settings())
        except BatchK8sError as error:
            log.warning("%s %s -> %s %s", req.method, req.url.split("?")[0], error.status, error.code)
            return error_response(error)
        except Exception:
            log.exception("unexpected failure in %s", handler.__name__)
            return error_response(BatchK8sError("unexpected internal error; see the function's log"))

    return named_as(handler, wrapper)


def named_as(handler: Callable[..., Any], wrapper: Callable[..., Any]) -> Callable[..., Any]:
    """`wrapper` under `handler`'s name and docstring, but not its signature (no __wrapped__): the
    Functions worker reads the signature to match bindings, and it must see `req` alone, not the
    `settings` and `deadline` the wrapper injects."""
    for attribute in ("__name__", "__qualname__", "__doc__", "__module__"):
        setattr(wrapper, attribute, getattr(handler, attribute))
    return wrapper


def deprecated(successor: str) -> Callable[[Callable[..., func.HttpResponse]], Callable[..., func.HttpResponse]]:
    """Wraps an `@endpoint` kept under an old route for one release: the same answers (errors too), each
    marked deprecated and pointing at the route that replaces it."""

    def decorate(handler: Callable[..., func.HttpResponse]) -> Callable[..., func.HttpResponse]:
        def wrapper(req: func.HttpRequest) -> func.HttpResponse:
            response = handler(req)
            for name, value in deprecation_headers(successor).items():
                response.headers[name] = value
            return response

        return named_as(handler, wrapper)

    return decorate


def read_json(req: func.HttpRequest, *, required: bool = False) -> dict[str, Any]:
    """The JSON object in the body ({} when there is none and none is required).

    Only a body of no bytes is "no body": whitespace alone is malformed JSON, as it is to every parser.
    """
    body = req.get_body() or b""
    if len(body) > MAX_BODY:
        raise PayloadTooLargeError(f"request body is {len(body)} bytes; the limit is {MAX_BODY}")
    if not body:
        if required:
            raise InputError.for_field("body", "a JSON object is required")
        return {}
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError.for_field("body", f"malformed JSON ({exc})") from None
    except RecursionError:  # a 1 MiB body can nest arrays deeper than the parser's stack
        raise InputError.for_field("body", "JSON nested too deeply") from None
    if not isinstance(document, dict):
        raise InputError.for_field("body", "must be a JSON object")
    return document


def int_param(req: func.HttpRequest, name: str, default: int, low: int, high: int) -> int:
    """A whole-number query parameter from `low` to `high`; `default` when absent or empty."""
    raw = req.params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return parse_whole_number(raw, low, high)
    except ValueError as exc:
        raise InputError.for_field(name, str(exc)) from None


def query_values(req: func.HttpRequest, name: str) -> list[str]:
    """Every value of a repeatable query parameter (`req.params` keeps only one)."""
    from urllib.parse import parse_qs, urlsplit

    values = parse_qs(urlsplit(req.url).query, keep_blank_values=True).get(name)
    if values is not None:
        return values
    return [req.params[name]] if name in req.params else []


def base_url(req: func.HttpRequest) -> str:
    """Scheme and host of the request, for Location headers that point back at this app."""
    from urllib.parse import urlsplit

    parts = urlsplit(req.url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else ""
