"""A fake GA4GH TES server: TES 1.1 at /ga4gh/tes/v1 (TESK today) or 1.0 at /v1 (tesk-api 0.4).

Tasks move QUEUED -> INITIALIZING -> RUNNING -> outcome over a controllable clock (the Batch fake's
FakeClock: jump it instead of sleeping); state is computed from the clock on every request. Each
task's timing and outcome come from the fake's defaults, or per task from the tags `fake-outcome`
and `fake-seconds` (run time), so tests that submit through the app can still choose them.

Like TESK it refuses a task without executors, an executor without image or command, and an input
without path (400 `{"code", "message"}`); lists page with `page_size` (default 256, capped at 2048)
and an opaque `next_page_token`; filters by `name_prefix`, `state`, `tag_key`/`tag_value` (1.1 only);
and shapes each task by view (MINIMAL: id and state; BASIC: no stdout/stderr, input content or
system logs; FULL: everything). Faults (503, delays, resets) come from the FakeService base.
"""

from __future__ import annotations

import base64
import copy
import ssl
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.fakes.batch import FakeClock
from tests.fakes.https import FakeService, Request, Response

TERMINAL = {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED"}
STATES_10 = ("UNKNOWN", "QUEUED", "INITIALIZING", "RUNNING", "PAUSED", "COMPLETE", "EXECUTOR_ERROR",
             "SYSTEM_ERROR", "CANCELED")
STATES_11 = (*STATES_10, "PREEMPTED", "CANCELING")
EPOCH = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


class FakeTES(FakeService):
    def __init__(self, ssl_context: ssl.SSLContext, *, version: str = "1.1", clock: FakeClock | None = None,
                 latency: float = 0.0, token: str | None = None, basic: tuple[str, str] | None = None):
        super().__init__(ssl_context, latency)
        if version not in ("1.0", "1.1"):
            raise ValueError("version must be 1.0 or 1.1")
        self.version = version
        self.base = "/ga4gh/tes/v1" if version == "1.1" else "/v1"
        self.clock = clock or FakeClock()
        self.token = token
        self.basic = basic
        self.queue_seconds = 1.0
        self.init_seconds = 1.0
        self.run_seconds = 5.0
        self.outcome = "COMPLETE"
        self.cancel_seconds = 2.0  # CANCELING -> CANCELED (1.1; a 1.0 server cancels at once)
        self.tasks: dict[str, dict[str, Any]] = {}
        self._order: list[str] = []
        self._state_lock = threading.Lock()
        info = r"/service-info" if version == "1.1" else r"/tasks/service-info"
        for method, pattern, handler in (
            ("GET", info, self._service_info),
            ("POST", r"/tasks", self._create),
            ("GET", r"/tasks", self._list),
            ("GET", r"/tasks/(?P<task_id>[^/:]+)", self._get),
            ("POST", r"/tasks/(?P<task_id>[^/:]+):cancel", self._cancel),
        ):
            self.route(method, self.base.replace(".", r"\.") + pattern)(self._guarded(handler))

    # -- test controls ----------------------------------------------------------------------

    @property
    def states(self) -> tuple[str, ...]:
        return STATES_11 if self.version == "1.1" else STATES_10

    def add_task(self, task: dict[str, Any]) -> str:
        """Store a task as if it had been submitted (for listing tests: no HTTP round trip)."""
        with self._state_lock:
            return self._store(task)

    def state_of(self, task_id: str) -> str:
        with self._state_lock:
            return self._state(self.tasks[task_id])

    # -- plumbing ---------------------------------------------------------------------------

    def _guarded(self, handler: Any) -> Any:
        def serve(request: Request, **groups: str) -> Response:
            if not self._authorized(request.headers.get("authorization")):
                return _error(401, "Full authentication is required to access this resource")
            with self._state_lock:
                return handler(request, **groups)

        return serve

    def _authorized(self, header: str | None) -> bool:
        if self.token:
            return header == f"Bearer {self.token}"
        if self.basic:
            expected = base64.b64encode(f"{self.basic[0]}:{self.basic[1]}".encode()).decode()
            return header == f"Basic {expected}"
        return True

    def not_found(self, request: Request) -> Response:
        return _error(404, f"No handler found for {request.method} {request.path}")

    def _iso(self, seconds: float) -> str:
        return (EPOCH + timedelta(seconds=seconds)).isoformat()

    # -- the state machine ------------------------------------------------------------------

    def _store(self, task: dict[str, Any]) -> str:
        task_id = "task-" + uuid.uuid4().hex[:8]
        tags = task.get("tags") or {}
        outcome = tags.get("fake-outcome", self.outcome)
        run = float(tags.get("fake-seconds", self.run_seconds))
        self.tasks[task_id] = {"doc": copy.deepcopy(task), "created": self.clock.now(), "outcome": outcome,
                               "run": run, "canceled_at": None}
        self._order.append(task_id)
        return task_id

    def _timeline(self, record: dict[str, Any]) -> tuple[float, float, float]:
        start = record["created"] + self.queue_seconds
        running = start + self.init_seconds
        return start, running, running + record["run"]

    def _state(self, record: dict[str, Any]) -> str:
        now = self.clock.now()
        start, running, end = self._timeline(record)
        canceled = record["canceled_at"]
        if canceled is not None:
            if self.version == "1.0" or now >= canceled + self.cancel_seconds:
                return "CANCELED"
            return "CANCELING"
        if now < start:
            return "QUEUED"
        if now < running:
            return "INITIALIZING"
        if now < end:
            return "RUNNING"
        return record["outcome"]

    def _view(self, task_id: str, record: dict[str, Any], view: str) -> dict[str, Any]:
        state = self._state(record)
        if view == "MINIMAL":
            return {"id": task_id, "state": state}
        task = copy.deepcopy(record["doc"])
        task.update(id=task_id, state=state, creation_time=self._iso(record["created"]))
        start, _, end = self._timeline(record)
        if state not in ("QUEUED", "UNKNOWN"):
            failed = state == "EXECUTOR_ERROR"
            log: dict[str, Any] = {"start_time": self._iso(start), "outputs": [],
                                   "logs": [{"exit_code": 1 if failed else 0, "stdout": "hello\n",
                                             "stderr": "boom\n" if failed else ""}],
                                   "system_logs": [f"task {task_id} ran in the fake TES"]}
            if state in TERMINAL:
                log["end_time"] = self._iso(end)
            task["logs"] = [log]
        if view == "BASIC":
            for entry in task.get("inputs", []):
                entry.pop("content", None)
            for log in task.get("logs", []):
                log.pop("system_logs", None)
                for executor in log["logs"]:
                    executor.pop("stdout", None)
                    executor.pop("stderr", None)
        return task

    # -- handlers ---------------------------------------------------------------------------

    def _service_info(self, request: Request) -> Response:
        info: dict[str, Any] = {"id": "org.example.fake-tes", "name": "fake TES", "version": "1.0.0",
                                "organization": {"name": "example", "url": "https://example.org"},
                                "type": {"group": "org.ga4gh", "artifact": "tes", "version": self.version + ".0"},
                                "storage": ["https://storage.example.org"]}
        if self.version == "1.0":
            info = {"name": "fake TES", "doc": "TES 1.0", "storage": ["https://storage.example.org"]}
        return Response(200, info)

    def _create(self, request: Request) -> Response:
        try:
            task = request.json()
        except ValueError:
            return _error(400, "Malformed JSON request body")
        problem = _refusal(task)
        if problem:
            return _error(400, problem)
        return Response(200, {"id": self._store(task)})

    def _view_param(self, request: Request) -> str | Response:
        view = request.arg("view") or "MINIMAL"
        if view not in ("MINIMAL", "BASIC", "FULL"):
            return _error(400, f"Invalid view: {view}")
        return view

    def _get(self, request: Request, task_id: str) -> Response:
        view = self._view_param(request)
        if isinstance(view, Response):
            return view
        record = self.tasks.get(task_id)
        if record is None:
            return _error(404, f"Task {task_id} not found")
        return Response(200, self._view(task_id, record, view))

    def _list(self, request: Request) -> Response:
        view = self._view_param(request)
        if isinstance(view, Response):
            return view
        try:
            size = min(int(request.arg("page_size") or 256), 2048)
            offset = int(base64.urlsafe_b64decode(request.arg("page_token") or "MA==").decode())
        except ValueError:
            return _error(400, "Invalid page_size or page_token")
        if size < 1:
            return _error(400, "page_size must be positive")
        matching = [task_id for task_id in self._order if self._matches(request, task_id)]
        page = matching[offset:offset + size]
        body: dict[str, Any] = {"tasks": [self._view(task_id, self.tasks[task_id], view) for task_id in page]}
        if offset + size < len(matching):
            body["next_page_token"] = base64.urlsafe_b64encode(str(offset + size).encode()).decode()
        return Response(200, body)

    def _matches(self, request: Request, task_id: str) -> bool:
        record = self.tasks[task_id]
        prefix = request.arg("name_prefix")
        if prefix and not str(record["doc"].get("name", "")).startswith(prefix):
            return False
        if self.version == "1.0":  # 1.0 knows no state or tag filters: it ignores them, as servers do
            return True
        state = request.arg("state")
        if state and self._state(record) != state:
            return False
        keys, values = request.query.get("tag_key", []), request.query.get("tag_value", [])
        tags = record["doc"].get("tags") or {}
        for index, key in enumerate(keys):
            value = values[index] if index < len(values) else ""
            if key not in tags or (value and tags[key] != value):
                return False
        return True

    def _cancel(self, request: Request, task_id: str) -> Response:
        record = self.tasks.get(task_id)
        if record is None:
            return _error(404, f"Task {task_id} not found")
        if record["canceled_at"] is None and self._state(record) not in TERMINAL:
            record["canceled_at"] = self.clock.now()
        return Response(200, {})


def _refusal(task: Any) -> str | None:
    """What TESK refuses outright (it leaves finer checks to the task's run)."""
    if not isinstance(task, dict):
        return "Task must be a JSON object"
    executors = task.get("executors")
    if not isinstance(executors, list) or not executors:
        return "executors: must not be empty"
    for index, executor in enumerate(executors):
        if not isinstance(executor, dict) or not executor.get("image"):
            return f"executors[{index}].image: must not be blank"
        if not isinstance(executor.get("command"), list) or not executor["command"]:
            return f"executors[{index}].command: must not be empty"
    for index, entry in enumerate(task.get("inputs") or []):
        if not isinstance(entry, dict) or not entry.get("path"):
            return f"inputs[{index}].path: must not be blank"
    return None


def _error(status: int, message: str) -> Response:
    return Response(status, {"code": status, "message": message})
