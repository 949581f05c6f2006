"""A small HTTPS server that the service fakes build on.

Azure SDKs refuse bearer tokens over plain http, so every fake speaks TLS with a throwaway CA that
the test session trusts through REQUESTS_CA_BUNDLE. The server is HTTP/1.1 with keep-alive (so
connection reuse can be measured), threaded (so concurrency is real), and every request can be
delayed or answered by an injected fault: a status with headers, or a dropped connection.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        self.headers.setdefault("Content-Type", "application/json; charset=utf-8")
        return json.dumps(self.body).encode()


@dataclass
class Fault:
    method: str | None
    path: re.Pattern[str] | None
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    times: int = 1
    delay: float = 0.0
    reset: bool = False

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (self.path is None or bool(self.path.search(path)))


Handler = Callable[..., Response]


class FakeService:
    """Routes requests to handlers; records them; injects latency and faults."""

    def __init__(self, ssl_context: ssl.SSLContext | None, latency: float = 0.0):
        self.ssl_context = ssl_context
        self.latency = latency
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.faults: list[Fault] = []
        self.log: list[tuple[str, str, dict[str, list[str]]]] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- setup ------------------------------------------------------------------------------

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        """Register `handler(request, **groups)` for `method` on paths matching `pattern` in full."""

        def register(handler: Handler) -> Handler:
            self.routes.append((method, re.compile(pattern + r"\Z"), handler))
            return handler

        return register

    def inject(self, *, method: str | None = None, path: str | None = None, status: int = 503,
               headers: dict[str, str] | None = None, body: Any = None, times: int = 1, delay: float = 0.0,
               reset: bool = False) -> Fault:
        fault = Fault(method, re.compile(path) if path else None, status, dict(headers or {}), body, times, delay,
                      reset)
        with self._lock:
            self.faults.append(fault)
        return fault

    # -- observation ------------------------------------------------------------------------

    def count(self, method: str | None = None, path: str | None = None) -> int:
        pattern = re.compile(path) if path else None
        with self._lock:
            return sum(1 for m, p, _ in self.log
                       if (method is None or m == method) and (pattern is None or pattern.search(p)))

    def reset_log(self) -> None:
        with self._lock:
            self.log.clear()
            self.connections = 0

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        scheme = "https" if self.ssl_context else "http"  # plain http only for a platform-local endpoint
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeService:
        service = self

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128

            def get_request(self) -> tuple[socket.socket, Any]:
                sock, address = self.socket.accept()
                # Headers and body go out in separate writes: without NODELAY, Nagle plus the client's
                # delayed ACK adds ~40 ms to every keep-alive response.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with service._lock:
                    service.connections += 1
                if service.ssl_context is None:
                    return sock, address
                return service.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

        class RequestHandler(_Handler):
            fake = service

        self._server = Server(("127.0.0.1", 0), RequestHandler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- dispatch ---------------------------------------------------------------------------

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and fault.matches(method, path):
                    fault.times -= 1
                    return fault
        return None

    def dispatch(self, request: Request) -> Response:
        for method, pattern, handler in self.routes:
            if method != request.method:
                continue
            match = pattern.match(request.path)
            if match:
                return handler(request, **match.groupdict())
        return self.not_found(request)

    def not_found(self, request: Request) -> Response:
        """How the service answers an unknown path; fakes override with the real shape."""
        message = f"no route for {request.method} {request.path}"
        return Response(404, {"error": {"code": "NotFound", "message": message}})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeService

    def setup(self) -> None:
        if not isinstance(self.request, ssl.SSLSocket):
            super().setup()
            return
        try:
            self.request.do_handshake()
        except (ssl.SSLError, OSError):
            self.request.close()
            raise
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read fake.log instead
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = Request(self.command, parts.path, parse_qs(parts.query, keep_blank_values=True),
                          {k.lower(): v for k, v in self.headers.items()}, body)
        fake = self.fake
        with fake._lock:
            fake.log.append((request.method, request.path, request.query))
        fault = fake._take_fault(request.method, request.path)
        delay = fake.latency + (fault.delay if fault else 0.0)
        if delay:
            time.sleep(delay)
        if fault and fault.reset:
            self.close_connection = True
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.connection.close()
            return
        if fault:
            response = Response(fault.status, fault.body, dict(fault.headers))
        else:
            try:
                response = fake.dispatch(request)
            except Exception as exc:  # a bug in the fake must show up in the test, not hang it
                response = Response(599, {"error": {"code": "FakeCrashed", "message": repr(exc)}})
        payload = response.encoded()
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if not any(name.lower() == "content-length" for name in response.headers):  # a proxied HEAD keeps its own
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve
