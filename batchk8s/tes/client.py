"""The TES client: one API over any transport, for TES 1.1 (`/ga4gh/tes/v1`) and 1.0 (`/v1`) servers.

Retries: GET calls and cancel are retried on 429/502/503/504, timeouts and lost connections, with
exponential backoff and jitter (Retry-After honoured). Cancel counts as idempotent: the spec defines
it as moving the task to CANCELING/CANCELED, so a repeated cancel leaves the same state. Create is
not idempotent (a retry after a lost answer could start the task twice), so it is retried only
when the server certainly did not act on it: a 429, or a connection that was never established.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

from batchk8s.errors import (
    ConflictError,
    InputError,
    NotFoundError,
    UpstreamError,
    UpstreamTimeoutError,
)
from batchk8s.tes.transports import HttpResult, Params, TimedOut, Transport, Unreachable
from batchk8s.tes.validation import STATES, TERMINAL_STATES, VIEWS, check_choice, validate_task

log = logging.getLogger("batchk8s.tes")

RETRY_STATUSES = frozenset({429, 502, 503, 504})
# Where TES lives, newest first: elixircloud TESK serves 1.1 at /ga4gh/tes/v1; tesk-api 0.4 served 1.0 at /v1.
BASES = (("/ga4gh/tes/v1", "1.1", "/service-info"), ("/v1", "1.0", "/tasks/service-info"))
MAX_PAGE_SIZE = 2047  # the spec: "Must be less than 2048"
TASK_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_SAS_SIGNATURE = re.compile(r"(sig=)[^&\s\"']+", re.IGNORECASE)


class TaskWaitTimeout(UpstreamTimeoutError):
    """The task did not reach a terminal state in time; `task` is the last view of it."""

    code = "TaskWaitTimeout"

    def __init__(self, message: str, task: dict[str, Any]):
        super().__init__(message, details=[{"field": "state", "message": str(task.get("state", "UNKNOWN"))}])
        self.task = task


class TesClient:
    """TES calls over one transport. Thread-safe: the functions host shares one client per configuration.

    `clock` and `sleep` drive waits and retry pauses; tests and benchmarks pass a fake clock's.
    """

    def __init__(self, transport: Transport, *, timeout: float = 30.0, retries: int = 3, backoff: float = 0.25,
                 max_backoff: float = 8.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.transport = transport
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.clock = clock
        self.sleep = sleep
        self._base: str | None = None
        self._version: str | None = None
        self._probe_info: dict[str, Any] | None = None
        self._lock = threading.Lock()
        for base, version, _ in BASES:
            if transport.prefix.endswith(base):  # TESK_API_URL already names the API root
                self._base, self._version = transport.prefix, version
                break

    # -- discovery --------------------------------------------------------------------------

    @property
    def base(self) -> str:
        """The API root path (discovered on first use)."""
        return self._root()[0]

    @property
    def version(self) -> str:
        """"1.1" or "1.0" (discovered on first use)."""
        return self._root()[1]

    def _root(self) -> tuple[str, str]:
        if self._base is None or self._version is None:
            self._discover()
        assert self._base is not None and self._version is not None
        return self._base, self._version

    def _discover(self) -> None:
        """Find the API root once; later calls (and other threads) reuse it."""
        with self._lock:
            if self._base is not None:
                return
            for base, version, info_path in BASES:
                path = self.transport.prefix + base
                result = self._send("GET", path + info_path, (), None, idempotent=True, what="TES discovery")
                if result.status == 404:
                    continue
                info = self._decode(self._checked(result, "TES service info"), "TES service info")
                self._probe_info = info if isinstance(info, dict) else {}
                self._base, self._version = path, version
                log.info("TES %s found at %s%s", version, self.transport.where, path)
                return
        tried = " and ".join(self.transport.prefix + base for base, _, _ in BASES)
        raise UpstreamError(f"no TES API at {self.transport.where}: tried {tried} (both answered 404)",
                            upstream_status=404, code="TesNotFound")

    # -- the calls --------------------------------------------------------------------------

    def service_info(self) -> dict[str, Any]:
        base, version = self._root()
        with self._lock:
            info, self._probe_info = self._probe_info, None
        if info is not None:
            return info
        info_path = next(path for _, known, path in BASES if known == version)
        info = self._json("GET", base + info_path, what="TES service info")
        if not isinstance(info, dict):
            raise UpstreamError("TES service info: the answer is not a JSON object", code="TesBadAnswer")
        return info

    def describe(self) -> dict[str, Any]:
        """What the doors show for service-info: the server's document plus where and how it was reached."""
        info = self.service_info()
        return {"tesVersion": self.version, "apiRoot": self.base, "transport": self.transport.name,
                "serviceInfo": info}

    def create(self, task: Mapping[str, Any]) -> str:
        """Validate and submit `task`; return the id the server assigned."""
        validate_task(task)
        answer = self._json("POST", self.base + "/tasks", body=dict(task), idempotent=False, what="TES create task")
        task_id = answer.get("id") if isinstance(answer, dict) else None
        if not isinstance(task_id, str) or not task_id:
            raise UpstreamError("TES create task: the answer has no task id", code="TesBadAnswer")
        return task_id

    def get(self, task_id: str, view: str | None = "MINIMAL") -> dict[str, Any]:
        params = _params(view=check_choice("view", view, VIEWS))
        task = self._json("GET", self._task_path(task_id), params, what=f"TES task {task_id}", task_id=task_id)
        if not isinstance(task, dict):
            raise UpstreamError(f"TES task {task_id}: the answer is not a JSON object", code="TesBadAnswer")
        return task

    def list(self, *, view: str | None = None, page_size: int | None = None, page_token: str | None = None,
             name_prefix: str | None = None, state: str | None = None,
             tags: Mapping[str, str] | None = None) -> dict[str, Any]:
        """One page: {"tasks": [...], "next_page_token": str or absent}.

        TES 1.0 has no state or tag filters; against a 1.0 server they are applied here, on each page
        (fetched with the BASIC view when tags are needed), so callers get the same answer either way.
        """
        view = check_choice("view", view, VIEWS)
        state = check_choice("state", state, STATES)
        tags = _check_tags(tags)
        if page_size is not None and (isinstance(page_size, bool) or not 1 <= page_size <= MAX_PAGE_SIZE):
            raise InputError.for_field("page_size", f"must be a whole number from 1 to {MAX_PAGE_SIZE}")
        local_filter = self.version == "1.0" and bool(state or tags)
        wire_view = "BASIC" if local_filter and tags and view in (None, "MINIMAL") else view
        params = _params(view=wire_view, page_size=page_size, page_token=page_token, name_prefix=name_prefix)
        if not local_filter:
            params += _params(state=state)
            for key, value in (tags or {}).items():
                params += [("tag_key", key), ("tag_value", value)]
        try:
            page = self._json("GET", self.base + "/tasks", params, what="TES list tasks")
        except UpstreamError as error:
            # Every parameter but the opaque page_token (and the free-text name_prefix, which servers
            # take as given) was checked above, so a 400 for a request carrying a token is the token's.
            if error.upstream_status == 400 and page_token:
                raise InputError.for_field("page_token", "TES refused it; give a next_page_token from an "
                                           "earlier page of the same listing") from None
            raise
        tasks = page.get("tasks") if isinstance(page, dict) else None
        if not isinstance(tasks, list):
            raise UpstreamError("TES list tasks: the answer has no 'tasks' list", code="TesBadAnswer")
        if local_filter:
            tasks = [task for task in tasks if _matches(task, state, tags)]
            if wire_view != view:
                tasks = [{"id": task.get("id"), "state": task.get("state")} for task in tasks]
        result: dict[str, Any] = {"tasks": tasks}
        if page.get("next_page_token"):
            result["next_page_token"] = page["next_page_token"]
        return result

    def iter_tasks(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every task matching `filters` (the `list` keywords), walking all pages."""
        token = filters.pop("page_token", None)
        seen: set[str] = set()
        while True:
            page = self.list(page_token=token, **filters)
            yield from page["tasks"]
            token = page.get("next_page_token")
            if not token:
                return
            if token in seen:
                raise UpstreamError("TES list tasks: the server repeated a page token", code="TesBadAnswer")
            seen.add(token)

    def cancel(self, task_id: str) -> None:
        self._json("POST", self._task_path(task_id) + ":cancel", body={}, what=f"TES cancel task {task_id}",
                   task_id=task_id)

    def wait(self, task_id: str, timeout: float, *, view: str = "MINIMAL", first_interval: float = 2.0,
             max_interval: float = 10.0, on_poll: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Poll until the task is terminal; return its last view.

        Intervals double from `first_interval` up to `max_interval`, so a short task is seen soon
        and a long one costs one request per `max_interval` (a 120 s task: 15 requests, seen within
        10 s of ending). Raises TaskWaitTimeout, carrying the last view, after `timeout` seconds.
        """
        from batchk8s.batch.polling import Backoff, Waiter

        last: dict[str, Any] = {}

        def probe() -> tuple[bool, dict[str, Any]]:
            task = last["task"] = self.get(task_id, view)
            if on_poll:
                on_poll(task)
            return (task.get("state") or "UNKNOWN") in TERMINAL_STATES, task

        waiter = Waiter(Backoff(first_interval, 2.0, max_interval), self.clock, self.sleep)
        try:
            return waiter.until(probe, timeout, f"TES task {task_id}")
        except UpstreamTimeoutError as error:
            if error.code != "Timeout" or "task" not in last:  # TES itself too slow: not the task's fault
                raise
            state = last["task"].get("state") or "UNKNOWN"
            raise TaskWaitTimeout(f"TES task {task_id} is still {state} after {timeout:g} s", last["task"]) from None

    # -- plumbing ---------------------------------------------------------------------------

    def _task_path(self, task_id: str) -> str:
        if not isinstance(task_id, str) or not TASK_ID.fullmatch(task_id):
            raise InputError.for_field("id", "must be a TES task id: 1-128 letters, digits, '.', '_', ':' or '-'")
        return f"{self.base}/tasks/{quote(task_id, safe='')}"

    def _json(self, method: str, path: str, params: Params = (), *, body: Any | None = None, what: str,
              idempotent: bool = True, task_id: str | None = None) -> Any:
        result = self._send(method, path, params, body, idempotent=idempotent, what=what)
        return self._decode(self._checked(result, what, task_id), what)

    def _send(self, method: str, path: str, params: Params, body: Any | None, *, idempotent: bool,
              what: str) -> HttpResult:
        attempt = 0
        while True:
            try:
                result = self.transport.send(method, path, params, body, self.timeout)
            except Unreachable as exc:
                if (idempotent or not exc.sent) and attempt < self.retries:
                    attempt = self._pause(attempt, None, what, exc.reason)
                    continue
                raise UpstreamError(f"{what}: could not reach TES at {self.transport.where} ({exc.reason})"
                                    + ("" if idempotent else "; the task may or may not have been created"),
                                    code="TesUnreachable") from None
            except TimedOut:
                if idempotent and attempt < self.retries:
                    attempt = self._pause(attempt, None, what, "timed out")
                    continue
                raise UpstreamTimeoutError(
                    f"{what}: TES at {self.transport.where} did not answer within {self.timeout:g} s"
                    + ("" if idempotent else "; the task may or may not have been created")) from None
            if result.status in RETRY_STATUSES and (idempotent or result.status == 429) and attempt < self.retries:
                attempt = self._pause(attempt, result, what, f"answered {result.status}")
                continue
            return result

    def _pause(self, attempt: int, result: HttpResult | None, what: str, reason: str) -> int:
        delay = min(self.max_backoff, self.backoff * 2**attempt) * (0.5 + random.random() / 2)
        retry_after = _retry_after(result.headers.get("Retry-After")) if result is not None else None
        if retry_after is not None:
            delay = min(retry_after, self.max_backoff * 4)
        log.info("%s: %s; retry %d in %.2f s", what, reason, attempt + 1, delay)
        self.sleep(delay)
        return attempt + 1

    def _checked(self, result: HttpResult, what: str, task_id: str | None = None) -> HttpResult:
        status = result.status
        if 200 <= status < 300:
            return result
        message = _upstream_message(result)
        suffix = f": {message}" if message else ""
        if status == 404:
            raise NotFoundError(f"TES task {task_id} not found" if task_id else f"{what}: not found{suffix}",
                                code="TaskNotFound" if task_id else "NotFound")
        if status == 409:
            raise ConflictError(f"{what}: TES answered 409{suffix}")
        if status in (401, 403):
            raise UpstreamError(f"{what}: TES refused our credentials ({status}); check TES_TOKEN or "
                                f"TES_USERNAME/TES_PASSWORD", upstream_status=status, code="TesUnauthorized")
        if status == 400:
            # We validate before sending, so a 400 is the server's own rule: its failure, not the caller's input.
            raise UpstreamError(f"{what}: TES refused the request (400){suffix}", upstream_status=400,
                                code="TesBadRequest")
        raise UpstreamError(f"{what}: TES answered {status}{suffix}", upstream_status=status, code="TesError")

    @staticmethod
    def _decode(result: HttpResult, what: str) -> Any:
        try:
            return result.json() or {}
        except ValueError:
            raise UpstreamError(f"{what}: TES answered {result.status} with a body that is not JSON",
                                upstream_status=result.status, code="TesBadAnswer") from None


def _params(**values: Any) -> list[tuple[str, str]]:
    return [(name, str(value)) for name, value in values.items() if value is not None and value != ""]


def _check_tags(tags: Mapping[str, str] | None) -> dict[str, str] | None:
    if not tags:
        return None
    problems = [{"field": f"tags.{key}", "message": "tag keys and values must be strings, keys not empty"}
                for key, value in tags.items() if not isinstance(key, str) or not key or not isinstance(value, str)]
    if problems:
        raise InputError.from_problems(problems, "invalid tag filter")
    return dict(tags)


def _matches(task: Mapping[str, Any], state: str | None, tags: Mapping[str, str] | None) -> bool:
    """The spec's filter rules: state equal; every tag key present and, when a value is given, equal."""
    if state and task.get("state") != state:
        return False
    task_tags = task.get("tags") or {}
    return all(key in task_tags and (not value or task_tags[key] == value) for key, value in (tags or {}).items())


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _upstream_message(result: HttpResult) -> str:
    """A short reason from a TES error body (its shapes vary by server), with SAS signatures removed."""
    try:
        body = result.json()
    except ValueError:
        body = result.body.decode("utf-8", "replace")
    if isinstance(body, dict):
        error = body.get("error")
        body = (body.get("message") or body.get("msg") or body.get("detail")
                or (error.get("message") if isinstance(error, dict) else error) or "")
    text = " ".join(str(body or "").split())
    return _SAS_SIGNATURE.sub(r"\1***", text)[:300]


def is_terminal(state: str | None) -> bool:
    return state in TERMINAL_STATES
