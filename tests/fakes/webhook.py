"""A local HTTPS receiver standing in for an incoming webhook (Teams Workflows, Slack, a Logic App trigger).

What it checks is what those receivers require of a sender: a POST of a JSON body with a JSON content
type; anything else is a 400 (Slack answers `invalid_payload`, a Logic App request trigger 400 with
`InvalidRequestContent`). It records every body it accepted; faults (503 with Retry-After, 429, a 400,
dropped connections, delays) come from FakeService.inject.
"""

from __future__ import annotations

import json
import ssl
from typing import Any

from tests.fakes.https import FakeService, Request, Response

PATH = "/hooks/T000/B000/s3cr3tW3bh00kT0k3n"  # the secret part of a webhook URL is its path (or query)


class FakeWebhook(FakeService):
    def __init__(self, ssl_context: ssl.SSLContext, latency: float = 0.0):
        super().__init__(ssl_context, latency)
        self.received: list[Any] = []
        self.route("POST", PATH + "$")(self._receive)

    @property
    def hook_url(self) -> str:
        return self.url + PATH

    def _receive(self, request: Request) -> Response:
        if not request.headers.get("content-type", "").startswith("application/json"):
            return Response(400, "invalid_payload")
        try:
            body = json.loads(request.body)
        except ValueError:
            return Response(400, "invalid_payload")
        with self._lock:
            self.received.append(body)
        return Response(200, "ok")
