"""A fake GA4GH TES server in three shapes:

- `mode="spec"`, `version="1.1"`: TES 1.1 at /ga4gh/tes/v1 as the specification says
  (ga4gh/task-execution-schemas `openapi/task_execution_service.openapi.yaml`, tag v1.1, vendored as
  tests/data/tes-openapi-1.1.0.yaml);
- `mode="spec"`, `version="1.0"`: TES 1.0 at /v1, service-info under /tasks (tesk-api 0.4);
- `mode="tesk"`: TESK as its Helm chart deploys it, elixircloud/tesk-api 1.1.0, following that
  release's sources (elixir-cloud-aai/tesk-api, tag v1.1, commit e703b3e3c5617c1e4e7521939108670256ce172b):
  `tes/api/TasksApiController.java` and `TasksApi.java` (routes, an empty 200 for cancel),
  `tes/service/TesServiceImpl.java` (list passes only page_size and page_token on, as a Kubernetes
  `limit` and `continue`; cancel refuses a task whose state is in `Constants.COMPLETED_STATES`),
  `tes/exception/CancelNotRunningTask.java` / `TaskNotFoundException.java` (400 / 404 and their
  messages), `k8s/exception/KubernetesException.java` (every Kubernetes error becomes a 500),
  `config/CustomErrorHandler.java` (Spring Boot's error attributes as the error body),
  `k8s/convert/TesKubernetesConverter.java` (states and logs), `tes/model/TesState.java` (no
  CANCELING or PREEMPTED) and `resources/service-info.yaml` (`type.version` 1.0). So in tesk mode:
  `GET /tasks` ignores `name_prefix`, `state` and `tag_key`/`tag_value`, lists in task-id order
  (Kubernetes lists by name), returns everything when no page_size is given, and pages with a
  Kubernetes continue token that expires once the revision it names is compacted (the API server
  compacts every 5 minutes: here, `continue_ttl` seconds after a newer revision exists); an expired
  or forged token is a 500. Cancel is an empty 200, or a 400 for a task already CANCELED, COMPLETE,
  EXECUTOR_ERROR or SYSTEM_ERROR; a cancelled task is CANCELED at once. Task logs carry no
  `outputs`, executor logs have `exit_code` only once the executor ended and `stdout` "" outside
  FULL, and a run ends COMPLETE, EXECUTOR_ERROR or SYSTEM_ERROR (anything else TESK cannot tell
  apart ends SYSTEM_ERROR, the converter's last branch).

Tasks move QUEUED -> INITIALIZING -> RUNNING -> outcome over a controllable clock (the Batch fake's
FakeClock: jump it instead of sleeping); state is computed from the clock on every request. Each
task's timing and outcome come from the fake's defaults, or per task from the tags `fake-outcome`
and `fake-seconds` (run time), so tests that submit through the app can still choose them.

In every mode it refuses a task without executors, an executor without image or command, and an
input without path (400); in spec mode lists page with `page_size` (default 256, capped at 2048)
and an opaque `next_page_token`, filter by `name_prefix` (and, 1.1 only, `state` and
`tag_key`/`tag_value`); every mode shapes each task by view (MINIMAL: id and state; BASIC: no
stdout/stderr, input content or system logs; FULL: everything). Faults (503, delays, resets) come
from the FakeService base.
"""

from __future__ import annotations

import base64
import copy
import json
import ssl
import threading
import uuid
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any

from tests.fakes.batch import FakeClock
from tests.fakes.https import FakeService, Request, Response

TERMINAL = {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED"}
STATES_10 = ("UNKNOWN", "QUEUED", "INITIALIZING", "RUNNING", "PAUSED", "COMPLETE", "EXECUTOR_ERROR",
             "SYSTEM_ERROR", "CANCELED")
STATES_11 = (*STATES_10, "PREEMPTED", "CANCELING")
# tesk-api's Constants.COMPLETED_STATES: a cancel of a task in one of these is a 400.
TESK_COMPLETED = ("CANCELED", "COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR")
TESK_OUTCOMES = ("COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR")
TESK_USER = "anonymousUser"  # the noauth profile's principal, stored as the job's creator-user-id label
MODES = ("spec", "tesk")
EPOCH = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


class FakeTES(FakeService):
    def __init__(self, ssl_context: ssl.SSLContext, *, version: str = "1.1", mode: str = "spec",
                 clock: FakeClock | None = None, latency: float = 0.0, token: str | None = None,
                 basic: tuple[str, str] | None = None):
        super().__init__(ssl_context, latency)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        if version not in ("1.0", "1.1"):
            raise ValueError("version must be 1.0 or 1.1")
        self.mode = mode
        self.tesk = mode == "tesk"
        self.version = "1.0" if self.tesk else version
        self.base = "/ga4gh/tes/v1" if self.tesk or version == "1.1" else "/v1"
        self.clock = clock or FakeClock()
        self.token = token
        self.basic = basic
        self.queue_seconds = 1.0
        self.init_seconds = 1.0
        self.run_seconds = 5.0
        self.outcome = "COMPLETE"
        self.cancel_seconds = 2.0  # CANCELING -> CANCELED (1.1; a 1.0 server cancels at once)
        self.continue_ttl = 300.0  # tesk: a continue token's revision is compacted this long after a newer one
        self.tasks: dict[str, dict[str, Any]] = {}
        self._order: list[str] = []
        self._revisions: list[float] = []  # tesk: when each Kubernetes revision (1, 2, ...) was made
        self._state_lock = threading.Lock()
        info = r"/tasks/service-info" if self.base == "/v1" else r"/service-info"
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

    def in_list_order(self, ids: list[str]) -> list[str]:
        """`ids` (in creation order) as this server lists them: TESK by name, as Kubernetes does."""
        return sorted(ids) if self.tesk else list(ids)

    def never_ending(self) -> tuple[dict[str, str], str]:
        """Tags for a task that never ends, and the state it stays in (TESK never pauses: it stays RUNNING)."""
        return ({"fake-seconds": "1000000"}, "RUNNING") if self.tesk else ({"fake-outcome": "PAUSED"}, "PAUSED")

    def state_of(self, task_id: str) -> str:
        with self._state_lock:
            return self._state(self.tasks[task_id])

    # -- plumbing ---------------------------------------------------------------------------

    def _guarded(self, handler: Any) -> Any:
        def serve(request: Request, **groups: str) -> Response:
            if not self._authorized(request.headers.get("authorization")):
                return self._error(request, 401, "Full authentication is required to access this resource")
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
        return self._error(request, 404, f"No handler found for {request.method} {request.path}")

    def _error(self, request: Request, status: int, message: str) -> Response:
        if not self.tesk:
            return _error(status, message)
        # Spring Boot's DefaultErrorAttributes, as tesk-api's CustomErrorHandler returns them.
        return Response(status, {"timestamp": self._iso(self.clock.now()), "status": status,
                                 "error": HTTPStatus(status).phrase, "message": message, "path": request.path})

    def _iso(self, seconds: float) -> str:
        when = EPOCH + timedelta(seconds=seconds)
        if self.tesk:  # Joda's ISODateTimeFormat.dateTime() in UTC
            return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
        return when.isoformat()

    def _revise(self) -> None:
        """A change in Kubernetes: a new revision (the continue tokens of older ones start to age)."""
        self._revisions.append(self.clock.now())

    # -- the state machine ------------------------------------------------------------------

    def _store(self, task: dict[str, Any]) -> str:
        task_id = "task-" + uuid.uuid4().hex[:8]
        tags = task.get("tags") or {}
        outcome = tags.get("fake-outcome", self.outcome)
        if self.tesk and outcome not in TESK_OUTCOMES:
            outcome = "SYSTEM_ERROR"
        run = float(tags.get("fake-seconds", self.run_seconds))
        self.tasks[task_id] = {"doc": copy.deepcopy(task), "created": self.clock.now(), "outcome": outcome,
                               "run": run, "canceled_at": None}
        self._order.append(task_id)
        self._revise()
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
        if self.tesk:
            return self._tesk_view(task_id, record, state, view)
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

    def _tesk_view(self, task_id: str, record: dict[str, Any], state: str, view: str) -> dict[str, Any]:
        """TesKubernetesConverter.fromK8sJobsToTesTaskBasic, plus the pod logs TesServiceImpl adds for FULL."""
        task = copy.deepcopy(record["doc"])
        if view == "BASIC":
            for entry in task.get("inputs", []):
                entry.pop("content", None)
        task.update(id=task_id, state=state, creation_time=self._iso(record["created"]))
        start, running, end = self._timeline(record)
        log: dict[str, Any] = {"logs": [], "metadata": {"USER_ID": TESK_USER}}
        now = self.clock.now()
        if now >= start:
            log["start_time"] = self._iso(start)
        ended = state in TESK_COMPLETED and record["canceled_at"] is None
        if ended:
            log["end_time"] = self._iso(end)
        if now >= running:  # executor jobs exist once the taskmaster started them
            for _ in task.get("executors", []):
                executor: dict[str, Any] = {"start_time": self._iso(running),
                                            "stdout": "hello\n" if view == "FULL" else ""}
                if ended:
                    executor["end_time"] = self._iso(end)
                    executor["exit_code"] = 1 if state == "EXECUTOR_ERROR" else 0
                log["logs"].append(executor)
        if view == "FULL" and now >= start:
            log["system_logs"] = [f"taskmaster of {task_id}: ran in the fake TESK"]
        task["logs"] = [log]
        return task

    # -- handlers ---------------------------------------------------------------------------

    def _service_info(self, request: Request) -> Response:
        info: dict[str, Any] = {"id": "org.example.fake-tes", "name": "fake TES", "version": "1.0.0",
                                "organization": {"name": "example", "url": "https://example.org"},
                                "type": {"group": "org.ga4gh", "artifact": "tes", "version": self.version + ".0"},
                                "storage": ["https://storage.example.org"]}
        if self.tesk:  # tesk-api's bundled service-info.yaml
            info = {"id": "uk.ac.ebi.tsc.tesk", "name": "TESK",
                    "type": {"group": "org.ga4gh", "artifact": "TES", "version": "1.0"},
                    "description": "GA4GH TES Server implementation for Kubernetes",
                    "organization": {"name": "EMBL-EBI", "url": "https://www.ebi.ac.uk/"},
                    "contactUrl": "https://github.com/EMBL-EBI-TSI/TESK/issues",
                    "documentationUrl": "https://github.com/EMBL-EBI-TSI/TESK",
                    "createdAt": "2021-04-06T00:00:00Z", "environment": "dev", "version": "1.0",
                    "storage": ["ftp://ftp-private.ebi.ac.uk"]}
        elif self.version == "1.0":
            info = {"name": "fake TES", "doc": "TES 1.0", "storage": ["https://storage.example.org"]}
        return Response(200, info)

    def _create(self, request: Request) -> Response:
        try:
            task = request.json()
        except ValueError:
            return self._error(request, 400, "Malformed JSON request body")
        problem = _refusal(task)
        if problem:
            return self._error(request, 400, problem)
        return Response(200, {"id": self._store(task)})

    def _view_param(self, request: Request) -> str | Response:
        view = request.arg("view") or "MINIMAL"
        if view not in ("MINIMAL", "BASIC", "FULL"):
            return self._error(request, 400, f"Invalid view: {view}")
        return view

    def _get(self, request: Request, task_id: str) -> Response:
        view = self._view_param(request)
        if isinstance(view, Response):
            return view
        record = self.tasks.get(task_id)
        if record is None:
            return self._not_found_task(request, task_id)
        return Response(200, self._view(task_id, record, view))

    def _not_found_task(self, request: Request, task_id: str) -> Response:
        message = f"Job with ID={task_id} not found." if self.tesk else f"Task {task_id} not found"
        return self._error(request, 404, message)

    def _list(self, request: Request) -> Response:
        view = self._view_param(request)
        if isinstance(view, Response):
            return view
        if self.tesk:
            return self._tesk_list(request, view)
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

    def _tesk_list(self, request: Request, view: str) -> Response:
        """Kubernetes' list of taskmaster jobs: name order, `limit` = page_size, `continue` = page_token."""
        try:
            limit = int(request.arg("page_size")) if request.arg("page_size") else None
        except ValueError:
            return self._error(request, 400, "Failed to convert value of type 'java.lang.String' to required type "
                                             "'java.lang.Long'")
        names = sorted(self.tasks)
        token = request.arg("page_token")
        revision = len(self._revisions)
        if token:
            try:
                decoded = json.loads(base64.b64decode(token, validate=True))
                revision, start = int(decoded["rv"]), str(decoded["start"])
            except (ValueError, KeyError, TypeError):
                return self._error(request, 500, "Bad Request")  # Kubernetes' 400, wrapped as a KubernetesException
            if self._compacted(revision):
                return self._error(request, 500, "Gone")  # Kubernetes' 410: the token's revision was compacted
            names = [name for name in names if name >= start]  # start = the last name + NUL: strictly after it
        page = names[:limit] if limit and limit > 0 else names
        body: dict[str, Any] = {"tasks": [self._view(name, self.tasks[name], view) for name in page]}
        if len(page) < len(names):
            cursor = {"v": "meta.k8s.io/v1", "rv": revision, "start": page[-1] + "\x00"}
            body["next_page_token"] = base64.b64encode(json.dumps(cursor).encode()).decode()
        return Response(200, body)

    def _compacted(self, revision: int) -> bool:
        """A revision is compacted once a newer one has existed for `continue_ttl` seconds."""
        return revision < len(self._revisions) and self.clock.now() - self._revisions[revision] >= self.continue_ttl

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
            return self._not_found_task(request, task_id)
        if self.tesk:
            if self._state(record) in TESK_COMPLETED:
                return self._error(request, 400, f"Job with ID={task_id} has no pods in RUNNING status.")
            record["canceled_at"] = self.clock.now()
            self._revise()
            return Response(200, None)  # ResponseEntity<Object>(HttpStatus.OK): no body at all
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
