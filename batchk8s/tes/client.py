"""The TES client: one API over any transport, for TES 1.1 servers and TES 1.0 ones such as TESK.

The API root is found by path (`/ga4gh/tes/v1`, else `/v1` for tesk-api 0.4), but the TES version
comes from service-info's `type.version`: tesk-api 1.1.0, what TESK's chart deploys, serves
`/ga4gh/tes/v1` and speaks TES 1.0 there. The path decides the version only when service-info does
not say. What a 1.0 server lacks, the client makes up for, so every answer is the same whatever
the server: list filters it ignores are applied here, a cancel of a task that already ended is
answered from the task's state, and an expired page token is reported as the caller's page_token.

Retries: GET calls and cancel are retried on 429/502/503/504, timeouts and lost connections, with
exponential backoff and jitter (Retry-After honoured). Cancel counts as idempotent: the spec defines
it as moving the task to CANCELING/CANCELED, so a repeated cancel leaves the same state. Create is
not idempotent (a retry after a lost answer could start the task twice), so it is retried only
when the server certainly did not act on it: a 429, or a connection that was never established.
"""

from __future__ import annotations

import copy
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from batchk8s.deadline import Deadline
from batchk8s.errors import (
    ConflictError,
    InputError,
    NotFoundError,
    UpstreamError,
    UpstreamTimeoutError,
)
from batchk8s.problems import Problems, whole_number_problem
from batchk8s.retry import retry_after_seconds
from batchk8s.tes.transports import HttpResult, Params, TimedOut, Transport, Unreachable
from batchk8s.tes.validation import STATES, TERMINAL_STATES, VIEWS, check_choice, validate_task

log = logging.getLogger("batchk8s.tes")

RETRY_STATUSES = frozenset({429, 502, 503, 504})
TES = "TES"
# Where TES lives, newest first, with the version to assume when service-info does not name one:
# /ga4gh/tes/v1 (TES 1.1, and tesk-api 1.x, whose service-info says 1.0); tesk-api 0.4 served 1.0 at /v1.
BASES = (("/ga4gh/tes/v1", "1.1", "/service-info"), ("/v1", "1.0", "/tasks/service-info"))
# TES 1.1 added the state and tag filters; a server below it may ignore them (tesk-api 1.1.0 also ignores name_prefix).
SERVER_FILTERS_SINCE = (1, 1)
_VERSION = re.compile(r"\s*v?(\d+)\.(\d+)")
MAX_PAGE_SIZE = 2047  # the spec: "Must be less than 2048"
TASK_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_SAS_SIGNATURE = re.compile(r"(sig=)[^&\s\"']+", re.IGNORECASE)


class TaskWaitTimeout(UpstreamTimeoutError):
    """The task did not reach a terminal state in time; `task` is the last view of it."""

    code = "TaskWaitTimeout"

    def __init__(self, message: str, task: dict[str, Any]):
        super().__init__(message, details=[{"field": "state", "message": str(task.get("state", "UNKNOWN"))}])
        self.task = task


class TaskAlreadyEnded(ConflictError):
    """Cancel asked for a task that already ended otherwise than CANCELED: nothing is left to cancel."""

    code = "TaskAlreadyEnded"

    def __init__(self, task_id: str, state: str):
        super().__init__(f"TES task {task_id} already ended {state}: there is nothing to cancel",
                         details=[{"field": "state", "message": state}])
        self.state = state


@dataclass(frozen=True)
class CancelResult:
    """What a cancel did: `requested` is False when the task was already CANCELED (or CANCELING),
    and `state` is the task's state when the cancel was asked."""

    id: str
    state: str
    requested: bool

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "canceling": self.requested, "state": self.state}


def version_from_info(info: Any) -> str | None:
    """"MAJOR.MINOR" from a service-info document's `type.version` ("1.0", "1.1.0", "v1.1"), else None."""
    kind = info.get("type") if isinstance(info, dict) else None
    raw = kind.get("version") if isinstance(kind, dict) else None
    match = _VERSION.match(str(raw)) if isinstance(raw, (str, int, float)) and not isinstance(raw, bool) else None
    return f"{int(match[1])}.{int(match[2])}" if match else None


@dataclass
class _Found:
    """What discovery learnt about the server, shared by a client and its `within` views."""

    base: str | None = None
    version: str | None = None
    version_source: str = ""
    probe_info: dict[str, Any] | None = None


def _shared(name: str) -> Any:
    return property(lambda self: getattr(self._found, name), lambda self, value: setattr(self._found, name, value))


class TesClient:
    """TES calls over one transport. Thread-safe: the functions host shares one client per configuration.

    `clock` and `sleep` drive waits and retry pauses; tests and benchmarks pass a fake clock's.
    `within(deadline)` is the same client for one operation: every attempt's timeout and every pause
    (Retry-After included) then fits that deadline, and running out is 504 UpstreamTimeout.
    """

    _base = _shared("base")
    _version = _shared("version")
    _version_source = _shared("version_source")
    _probe_info = _shared("probe_info")

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
        self.deadline: Deadline | None = None
        self._found = _Found()
        self._lock = threading.Lock()
        if any(transport.prefix.endswith(base) for base, _, _ in BASES):  # TESK_API_URL already names the root
            self._base = transport.prefix

    def within(self, deadline: Deadline | None) -> TesClient:
        """This client for one operation bounded by `deadline` (discovery and connections stay shared)."""
        view = copy.copy(self)
        view.deadline = deadline
        return view

    # -- discovery --------------------------------------------------------------------------

    @property
    def base(self) -> str:
        """The API root path (discovered on first use)."""
        if self._base is None:
            self._discover()
        assert self._base is not None
        return self._base

    @property
    def version(self) -> str:
        """The TES version the server speaks, "MAJOR.MINOR" (read from service-info on first use)."""
        if self._version is None:
            self._learn_version()
        assert self._version is not None
        return self._version

    def _discover(self) -> None:
        """Find the API root once, keeping the probe's answer as service-info; later calls reuse both."""
        with self._lock:
            if self._base is not None:
                return
            for base, _, info_path in BASES:
                path = self.transport.prefix + base
                result = self._send("GET", path + info_path, (), None, idempotent=True, what="TES discovery")
                if result.status == 404:
                    continue
                info = self._decode(self._checked(result, "TES service info"), "TES service info")
                self._base = path
                self._remember(info if isinstance(info, dict) else {})
                log.info("TES %s found at %s%s", self._version, self.transport.where, path)
                return
        tried = " and ".join(self.transport.prefix + base for base, _, _ in BASES)
        raise UpstreamError(f"no TES API at {self.transport.where}: tried {tried} (both answered 404)",
                            upstream_status=404, code="TesNotFound")

    def _learn_version(self) -> None:
        """The root was given (or found) without a service-info answer: read it once for the version."""
        base = self.base
        if self._version is not None:
            return
        info = self._fetch_info(base)
        with self._lock:
            if self._version is None:
                self._remember(info)

    def _remember(self, info: dict[str, Any]) -> None:
        """Keep `info` for the next service_info() call and take the version from it (the path's when it is silent)."""
        assert self._base is not None
        declared = version_from_info(info)
        self._probe_info = info
        self._version = declared or _path_version(self._base)
        self._version_source = "service-info" if declared else "path"

    def _fetch_info(self, base: str) -> dict[str, Any]:
        info = self._json("GET", base + _info_path(base), what="TES service info")
        if not isinstance(info, dict):
            raise UpstreamError("TES service info: the answer is not a JSON object", code="TesBadAnswer")
        return info

    @property
    def server_filters(self) -> bool:
        """Whether the server applies the state and tag filters itself (TES 1.1 and later)."""
        match = _VERSION.match(self.version)
        return bool(match) and (int(match[1]), int(match[2])) >= SERVER_FILTERS_SINCE

    # -- the calls --------------------------------------------------------------------------

    def service_info(self) -> dict[str, Any]:
        base = self.base
        self._learn_version()
        with self._lock:
            info, self._probe_info = self._probe_info, None
        return info if info is not None else self._fetch_info(base)

    def describe(self) -> dict[str, Any]:
        """What the doors show for service-info: the server's document plus where and how it was reached."""
        info = self.service_info()
        return {"tesVersion": self.version, "versionFrom": self._version_source, "apiRoot": self.base,
                "transport": self.transport.name, "serverFilters": self.server_filters, "serviceInfo": info}

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

        A server below TES 1.1 may ignore the filters (tesk-api 1.1.0 ignores state, tags and
        name_prefix alike), so against one they are also applied here, on each page as it is read
        (fetched with the BASIC view when the name or tags are needed, then cut back to the view
        asked for). A filtered page can then hold fewer tasks than page_size, or none, and still
        have a next_page_token; walking the pages gives the same tasks as a 1.1 server would.
        """
        view = check_choice("view", view, VIEWS)
        state = check_choice("state", state, STATES)
        tags = _check_tags(tags)
        if page_size is not None and (problem := whole_number_problem(page_size, 1, MAX_PAGE_SIZE)):
            raise InputError.for_field("page_size", problem)
        local_filter = not self.server_filters and bool(state or tags or name_prefix)
        needs_fields = local_filter and bool(tags or name_prefix)
        wire_view = "BASIC" if needs_fields and view in (None, "MINIMAL") else view
        params = _params(view=wire_view, page_size=page_size, page_token=page_token, name_prefix=name_prefix)
        if not local_filter:
            params += _params(state=state)
            for key, value in (tags or {}).items():
                params += [("tag_key", key), ("tag_value", value)]
        page = self._list_page(params, page_token)
        tasks = page.get("tasks") if isinstance(page, dict) else None
        if not isinstance(tasks, list):
            raise UpstreamError("TES list tasks: the answer has no 'tasks' list", code="TesBadAnswer")
        if local_filter:
            tasks = [task for task in tasks if _matches(task, state, tags, name_prefix)]
            if wire_view != view:
                tasks = [{"id": task.get("id"), "state": task.get("state")} for task in tasks]
        result: dict[str, Any] = {"tasks": tasks}
        if page.get("next_page_token"):
            result["next_page_token"] = page["next_page_token"]
        return result

    def _list_page(self, params: Params, page_token: str | None) -> Any:
        """GET /tasks, telling a refused page token (the caller's input) from a failing server.

        Every parameter but the opaque page_token (and the free-text name_prefix, which servers take
        as given) is checked before sending, so a 400 or 410 for a request carrying a token is the
        token's. tesk-api answers 500 instead (its page tokens are Kubernetes continue tokens; when
        one has expired, Kubernetes answers 410 and tesk-api turns every Kubernetes error into a
        500), so a 500 for a request with a token is checked by asking for the first page: if that
        works, the server is fine and the token is what it refused.
        """
        what = "TES list tasks"
        result = self._send("GET", self.base + "/tasks", params, None, idempotent=True, what=what)
        if page_token and result.status in (400, 410, 500):
            first_page = [("view", "MINIMAL"), ("page_size", "1")]  # the cheapest listing there is
            if result.status != 500 or self._answers("GET", self.base + "/tasks", first_page, what):
                raise InputError.for_field(
                    "page_token", "TES no longer accepts it: it expired (tesk-api's tokens are Kubernetes continue "
                    "tokens, which expire within minutes) or is not from this listing; list again from the first page")
        return self._decode(self._checked(result, what), what)

    def _answers(self, method: str, path: str, params: Params, what: str) -> bool:
        try:
            return 200 <= self._send(method, path, params, None, idempotent=True, what=what).status < 300
        except UpstreamError:
            return False

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

    def cancel(self, task_id: str) -> CancelResult:
        """Cancel a task, idempotently, with the same answer from any server.

        The task's state is read first (tesk-api reads it too, before it refuses to cancel a task
        that ended): a task already CANCELED or CANCELING is a success with nothing sent, one that
        ended otherwise raises TaskAlreadyEnded naming its state. When the server refuses the
        cancel (tesk-api answers 400 for a task that ended meanwhile), the state is read again to
        tell that race from a real refusal.
        """
        what = f"TES cancel task {task_id}"
        path = self._task_path(task_id) + ":cancel"
        state = self._state(task_id)
        over = _nothing_to_cancel(task_id, state)
        if over:
            return over
        result = self._send("POST", path, (), {}, idempotent=True, what=what)
        if result.status in (400, 409):
            over = _nothing_to_cancel(task_id, self._state(task_id))
            if over:
                return over
        self._checked(result, what, task_id)
        return CancelResult(task_id, state, requested=True)

    def _state(self, task_id: str) -> str:
        return str(self.get(task_id).get("state") or "UNKNOWN")

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
            return waiter.until(probe, timeout, f"TES task {task_id}", deadline=self.deadline)
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
            timeout = self.timeout
            if self.deadline is not None:
                self.deadline.check(TES, what)
                timeout = min(timeout, self.deadline.remaining())
            try:
                result = self.transport.send(method, path, params, body, timeout, deadline=self.deadline)
            except Unreachable as exc:
                if (idempotent or not exc.sent) and (retry := self._pause(attempt, None, what, exc.reason)):
                    attempt = retry
                    continue
                raise UpstreamError(f"{what}: could not reach TES at {self.transport.where} ({exc.reason})"
                                    + ("" if idempotent else "; the task may or may not have been created"),
                                    code="TesUnreachable") from None
            except TimedOut:
                if idempotent and (retry := self._pause(attempt, None, what, "timed out")):
                    attempt = retry
                    continue
                raise UpstreamTimeoutError(
                    f"{what}: TES at {self.transport.where} did not answer within {timeout:g} s"
                    + ("" if idempotent else "; the task may or may not have been created")) from None
            if (result.status in RETRY_STATUSES and (idempotent or result.status == 429)
                    and (retry := self._pause(attempt, result, what, f"answered {result.status}"))):
                attempt = retry
                continue
            return result

    def _pause(self, attempt: int, result: HttpResult | None, what: str, reason: str) -> int | None:
        """Wait before retry `attempt + 1` and return its number; None when retries are used up or the
        pause would not leave time before the deadline (the caller then reports what it last got)."""
        if attempt >= self.retries:
            return None
        delay = min(self.max_backoff, self.backoff * 2**attempt) * (0.5 + random.random() / 2)
        retry_after = _retry_after(result.headers.get("Retry-After")) if result is not None else None
        if retry_after:  # absent, unreadable, negative or 0: the backoff
            delay = min(retry_after, self.max_backoff * 4)
        if self.deadline is not None and not self.deadline.allows(delay):
            log.info("%s: %s; no retry: a pause of %.2f s would pass the deadline", what, reason, delay)
            return None
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
    problems = Problems()
    for key, value in tags.items():
        if not isinstance(key, str) or not key or not isinstance(value, str):
            problems.add(f"tags.{key}", "tag keys and values must be strings, keys not empty")
    problems.raise_if_any("invalid tag filter")
    return dict(tags)


def _matches(task: Mapping[str, Any], state: str | None, tags: Mapping[str, str] | None,
             name_prefix: str | None = None) -> bool:
    """The spec's filter rules: name starts with the prefix; state equal; every tag key present and,
    when a value is given, equal."""
    if name_prefix and not str(task.get("name") or "").startswith(name_prefix):
        return False
    if state and task.get("state") != state:
        return False
    task_tags = task.get("tags") or {}
    return all(key in task_tags and (not value or task_tags[key] == value) for key, value in (tags or {}).items())


def _nothing_to_cancel(task_id: str, state: str) -> CancelResult | None:
    """A result when the task is already CANCELED or CANCELING; TaskAlreadyEnded when it ended otherwise."""
    if state in ("CANCELED", "CANCELING"):
        return CancelResult(task_id, state, requested=False)
    if state in TERMINAL_STATES:
        raise TaskAlreadyEnded(task_id, state)
    return None


def _info_path(base: str) -> str:
    """Where service-info lives under an API root: tesk-api 0.4 (`/v1`) kept it under /tasks."""
    return next((path for known, _, path in BASES if base.endswith(known)), "/service-info")


def _path_version(base: str) -> str:
    return next((version for known, version, _ in BASES if base.endswith(known)), "1.1")


def _retry_after(value: str | None) -> float | None:
    return retry_after_seconds(value)


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
