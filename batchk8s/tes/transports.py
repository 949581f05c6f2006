"""How a TES request reaches the server: `direct` over HTTP, or `relay` through a Batch task.

A transport sends one request and returns what came back; it neither retries nor interprets
statuses (the client does both, the same way for every transport). It raises `Unreachable` when
no answer came (with `sent` saying whether the request may have reached the server, which decides
whether a non-idempotent call can be retried) and `TimedOut` when the answer was too slow.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from batchk8s.deadline import Deadline

Params = Sequence[tuple[str, str]]


@dataclass
class HttpResult:
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body) if self.body.strip() else None


class Unreachable(Exception):
    """No HTTP answer. `sent` is False only when the request certainly never left (connect failed)."""

    def __init__(self, reason: str, *, sent: bool):
        super().__init__(reason)
        self.reason = reason
        self.sent = sent


class TimedOut(Exception):
    """The server took longer than the timeout to answer."""


class Transport(Protocol):
    name: str
    prefix: str  # path under which TES lives on this transport's server ("" or e.g. "/tesk")
    where: str  # for messages: where requests go (never with credentials)

    def send(self, method: str, path: str, params: Params, body: Any | None, timeout: float,
             deadline: Deadline | None = None) -> HttpResult:
        """One request; `timeout` bounds the answer, `deadline` (the operation's) any calls made to send it."""
        ...


class DirectTransport:
    """HTTP(S) to TESK_API_URL over one pooled `requests.Session`.

    The pool blocks instead of opening throwaway connections when every connection is busy, so a
    burst of concurrent calls shares `max_connections` keep-alive connections (TLS handshakes are
    the expensive part) instead of opening one per call.
    """

    name = "direct"

    def __init__(self, url: str, *, token: str | None = None, basic: tuple[str, str] | None = None,
                 max_connections: int = 4, connect_timeout: float = 5.0):
        import requests
        from requests.adapters import HTTPAdapter

        parts = urlsplit(url.rstrip("/"))
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.prefix = parts.path.rstrip("/")
        self.where = self.origin + self.prefix
        self.connect_timeout = connect_timeout
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max_connections, pool_block=True, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers["Accept"] = "application/json"
        # Proxies and the CA bundle from the environment (HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE) are
        # resolved once here instead of on every call, where they cost a third of the client's time.
        environment = self.session.merge_environment_settings(self.origin, {}, None, None, None)
        self.session.proxies.update(environment["proxies"])
        self.session.verify = environment["verify"]
        self.session.trust_env = False
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        elif basic:
            self.session.auth = basic
        self._requests = requests

    def send(self, method: str, path: str, params: Params, body: Any | None, timeout: float,
             deadline: Deadline | None = None) -> HttpResult:
        exceptions = self._requests.exceptions  # one HTTP request: `timeout` is already fitted to `deadline`
        try:
            response = self.session.request(method, self.origin + path, params=list(params) or None,
                                            json=body, timeout=(self.connect_timeout, timeout))
        except exceptions.ConnectTimeout:
            raise Unreachable("connection timed out", sent=False) from None
        except exceptions.Timeout:
            raise TimedOut() from None
        except exceptions.SSLError:
            raise Unreachable("TLS handshake failed (certificate not trusted?)", sent=False) from None
        except exceptions.ConnectionError as exc:
            raise Unreachable(_connection_reason(exc), sent=not _never_connected(exc)) from None
        return HttpResult(response.status_code, response.content, response.headers)

    def close(self) -> None:
        self.session.close()


def _never_connected(exc: Exception) -> bool:
    """True when the TCP connection was never established, so nothing reached the server.

    requests wraps urllib3's MaxRetryError, whose `reason` is the NewConnectionError; walk the chain.
    """
    from urllib3.exceptions import NewConnectionError

    pending: list[Any] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, NewConnectionError):
            return True
        pending += [getattr(current, "reason", None), current.__cause__, current.__context__, *current.args[:1]]
    return False


def _connection_reason(exc: Exception) -> str:
    text = str(exc).lower()
    for needle, reason in (("refused", "connection refused"), ("reset", "connection reset"),
                           ("aborted", "connection closed"), ("name or service", "host name not found"),
                           ("remote end closed", "connection closed")):
        if needle in text:
            return reason
    return "connection failed"
