"""A WSGI face on the indexed Functions app, so schemathesis can drive it in-process.

It does what the Functions host does in front of our code and nothing more: match the route
template (one path segment per `{name}`, percent-decoded after splitting, so `%2F` stays inside a
parameter; a complex segment such as `{id}:cancel` matches its literal from the right), enforce the
function key on every route that is not anonymous (401, no body), build a `func.HttpRequest` with
the URL, query, route parameters, headers and body, and call the indexed function exactly as the
other tests do. A method that no route declares is a 404, as on the host.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, unquote

import azure.functions as func

HOST = "https://app.example.net"
PREFIX = "/api/"


@dataclass(frozen=True)
class Route:
    name: str
    template: str
    methods: frozenset[str]
    anonymous: bool
    call: Callable[[func.HttpRequest], func.HttpResponse]

    def match(self, segments: list[str]) -> dict[str, str] | None:
        parts = self.template.split("/")
        if len(parts) != len(segments):
            return None
        params: dict[str, str] = {}
        for part, segment in zip(parts, segments, strict=True):
            if "{" in part:
                found = segment_pattern(part).fullmatch(segment)
                if not found:
                    return None
                params.update(found.groupdict())
            elif part.lower() != segment.lower():
                return None
        return params


def segment_pattern(part: str) -> re.Pattern[str]:
    """A template segment as ASP.NET Core routing matches it: `{id}` takes the whole (non-empty) segment;
    a complex segment such as `{id}:cancel` matches its literals case-insensitively from the right, so the
    parameter takes everything before the last `:cancel`."""
    pattern = "".join(f"(?P<{piece[1:-1]}>.+)" if piece.startswith("{") else re.escape(piece)
                      for piece in re.split(r"(\{\w+\})", part) if piece)
    return re.compile(pattern, re.IGNORECASE | re.DOTALL)


def routes(functions: dict[str, Any]) -> list[Route]:
    """Every HTTP-triggered function with its declared route, methods and auth level."""
    found = []
    for name, function in functions.items():
        trigger = function.get_bindings()[0]
        if trigger.type != "httpTrigger":
            continue
        level = str(getattr(trigger.auth_level, "value", trigger.auth_level)).lower()
        methods = frozenset(str(getattr(m, "value", m)).upper() for m in trigger.methods)
        found.append(Route(name, trigger.route, methods, level == "anonymous", function.get_user_function()))
    return found


class FunctionsWsgi:
    """The WSGI application; `key` is the one function key it accepts."""

    def __init__(self, functions: dict[str, Any], key: str):
        self.routes = routes(functions)
        self.key = key
        self.calls: list[tuple[str, int, float]] = []  # (function, status, seconds) of every call that reached one

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"].upper()
        raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "")
        raw_path = raw.split("?", 1)[0]
        query = environ.get("QUERY_STRING", "")
        if not raw_path.startswith(PREFIX):
            return self._reply(start_response, 404)
        segments = [unquote(segment) for segment in raw_path[len(PREFIX):].split("/")]
        matched = [(route, found) for route in self.routes
                   if (found := route.match(segments)) is not None and method in route.methods]
        if not matched:
            return self._reply(start_response, 404)
        # Literal segments win over parameters, as in ASP.NET routing (tes/tasks/{id} vs tes/service-info).
        route, route_params = min(matched, key=lambda pair: len(pair[1]))
        # The host hands the worker one string per name: repeated values joined with ',' (ASP.NET StringValues).
        params: dict[str, str] = {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            params[name] = f"{params[name]},{value}" if name in params else value
        headers = {name[5:].replace("_", "-").lower(): value for name, value in environ.items()
                   if name.startswith("HTTP_")}
        for name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(name):
                headers[name.replace("_", "-").lower()] = environ[name]
        if not route.anonymous and self.key not in (headers.get("x-functions-key"), params.get("code")):
            return self._reply(start_response, 401)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        host = environ.get("HTTP_HOST")
        origin = f"{environ.get('wsgi.url_scheme', 'https')}://{host}" if host else HOST
        url = origin + raw_path + (f"?{query}" if query else "")  # the test client may keep the query out of RAW_URI
        request = func.HttpRequest(method, url, headers=headers, params=params,
                                   route_params=route_params, body=body)
        started = time.monotonic()
        response = route.call(request)
        self.calls.append((route.name, response.status_code, time.monotonic() - started))
        reply_headers = dict(response.headers)
        if response.mimetype and not any(name.lower() == "content-type" for name in reply_headers):
            reply_headers["Content-Type"] = f"{response.mimetype}; charset={response.charset or 'utf-8'}"
        return self._reply(start_response, response.status_code, reply_headers, response.get_body() or b"")

    @staticmethod
    def _reply(start_response: Callable[..., Any], status: int, headers: dict[str, str] | None = None,
               body: bytes = b"") -> list[bytes]:
        start_response(f"{status} {HTTPStatus(status).phrase}",
                       [*(headers or {}).items(), ("Content-Length", str(len(body)))])
        return [body]
