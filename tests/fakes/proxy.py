"""A fault-injecting HTTPS proxy in front of a real service (Azurite, for Blob storage).

Blob storage in the tests is Azurite, which cannot be told to throttle, fail, stall or drop a
connection. This proxy forwards every request unchanged to Azurite (same method, path, query,
headers and body; SharedKey signatures do not cover the host) and passes Azurite's answer back
unchanged, except where a test injected a fault through the FakeService base: then the fault is the
answer (a status with headers and body, a delay, or a reset connection) and Azurite never sees the
request. So every answer a test gets is either Azurite's own or an injected fault, never a made-up
success.
"""

from __future__ import annotations

import http.client
import ssl
from urllib.parse import urlencode, urlsplit

from tests.fakes.https import FakeService, Request, Response

HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "host"})


class FaultProxy(FakeService):
    def __init__(self, ssl_context: ssl.SSLContext, *, upstream: str, latency: float = 0.0):
        super().__init__(ssl_context, latency)
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.upstream_path = parts.path.rstrip("/")

    def endpoint(self) -> str:
        """The blob endpoint to give the app: the proxy's URL with the upstream's account path."""
        return self.url + self.upstream_path

    def dispatch(self, request: Request) -> Response:
        query = urlencode([(name, value) for name, values in request.query.items() for value in values])
        target = request.path + (f"?{query}" if query else "")
        headers = {name: value for name, value in request.headers.items() if name not in HOP_BY_HOP}
        connection = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=30)
        try:
            connection.request(request.method, target, body=request.body or None, headers=headers)
            answer = connection.getresponse()
            body = answer.read()
            head = request.method == "HEAD"  # a HEAD keeps its Content-Length: it describes the blob
            kept = {name: value for name, value in answer.getheaders()
                    if name.lower() not in HOP_BY_HOP or (head and name.lower() == "content-length")}
            return Response(answer.status, body, kept)
        finally:
            connection.close()
