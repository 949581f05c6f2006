"""A fake of the Azure Batch data plane, driven through the real `azure.batch.BatchClient`.

It answers the REST paths the SDK (azure-batch 15, api-version 2025-06-01) sends, refuses what the
service refuses with Batch's error codes and JSON shape (`odata.metadata`, `code`, `message.value`,
`values[key, value]`), and simulates pools, nodes and tasks over a controllable clock:

- a pool allocates its nodes (`allocationState` resizing -> steady after `allocation_seconds`);
  nodes go starting -> waitingforstarttask -> idle/running, or starttaskfailed with the start task's
  exit code, failure info and `startup/stderr.txt`; a resize past `node_quota` (`spot_node_quota`) ends
  with `resizeErrors` (AccountCoreQuotaReached, AccountLowPriorityCoreQuotaReached) although the
  allocation becomes steady;
- a task runs once a node is usable and every task it depends on completed with exit code 0; it
  completes `TaskOutcome.seconds` later with its exit code, `stdout.txt` and `stderr.txt`. A task
  whose dependency failed stays active (Batch's default dependency action is to block). A task with
  `affinityInfo` runs on the node with that `affinityId` when that node is usable, else on the first
  usable node (affinity is a preference in Batch too).

State is computed from the clock on every request, so no background thread advances anything and
tests can say "tasks finish after 120 s" and jump the clock instead of sleeping. Simplifications:
task slots are unlimited (every ready task runs at once); files exist only for tasks that started.

`addtaskcollection` accepts at most 100 tasks (the documented limit); more is answered with
RequestBodyTooLarge, which the SDK's `create_tasks` also understands as "send fewer".
"""

from __future__ import annotations

import re
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import unquote

from tests.fakes.aad import FakeAAD
from tests.fakes.https import FakeService, Request, Response

BATCH_AUDIENCE = "https://batch.core.windows.net/"
API_VERSION = "2025-06-01"
MAX_TASKS_PER_COLLECTION = 100
MAX_BODY = 1024 * 1024
ID_RULE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
EPOCH = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)

UBUNTU_2404 = {
    "nodeAgentSKUId": "batch.node.ubuntu 24.04",
    "imageReference": {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"},
    "osType": "linux", "capabilities": [], "verificationType": "verified",
    "batchSupportEndOfLife": "2029-04-25T00:00:00Z",
}
UBUNTU_2204 = {
    "nodeAgentSKUId": "batch.node.ubuntu 22.04",
    "imageReference": {"publisher": "canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts",
                       "version": "latest"},
    "osType": "linux", "capabilities": [], "verificationType": "verified",
    "batchSupportEndOfLife": "2027-04-30T00:00:00Z",
}
WINDOWS_2022 = {
    "nodeAgentSKUId": "batch.node.windows amd64",
    "imageReference": {"publisher": "microsoftwindowsserver", "offer": "windowsserver", "sku": "2022-datacenter",
                       "version": "latest"},
    "osType": "windows", "capabilities": [], "verificationType": "verified",
}


class FakeClock:
    """Fake seconds: real time times `speed`, plus whatever `advance` added.

    `speed=0` freezes time so only `advance` moves it (benchmarks pass `advance` as the sleep function
    of a monitor); `speed=60` makes a minute of service time pass in a real second.
    """

    def __init__(self, speed: float = 1.0):
        self.speed = speed
        self._offset = 0.0
        self._real_start = time.monotonic()
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._offset + (time.monotonic() - self._real_start) * self.speed

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += max(0.0, seconds)

    def set_speed(self, speed: float) -> None:
        with self._lock:
            now = self._offset + (time.monotonic() - self._real_start) * self.speed
            self._real_start = time.monotonic()
            self._offset = now
            self.speed = speed

    def datetime(self, seconds: float | None = None) -> datetime:
        return EPOCH + timedelta(seconds=self.now() if seconds is None else seconds)

    def iso(self, seconds: float | None = None) -> str:
        return self.datetime(seconds).isoformat().replace("+00:00", "Z")


@dataclass
class TaskOutcome:
    """How a simulated task (or start task) ends."""

    seconds: float = 10.0
    exit_code: int = 0
    stdout: str = ""
    stderr: str = ""


class BatchFault(Exception):
    """Raised inside a handler to answer with Batch's error shape."""

    def __init__(self, status: int, code: str, message: str, values: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.values = status, code, message, values or {}


NEVER = float("inf")


class FakeBatch(FakeService):
    """The Batch data plane: pools, nodes, supported images, jobs, tasks and their files."""

    def __init__(self, ssl_context: ssl.SSLContext, *, aad: FakeAAD | None = None, clock: FakeClock | None = None,
                 latency: float = 0.0):
        super().__init__(ssl_context, latency)
        self.aad = aad
        self.clock = clock or FakeClock()
        self.supported_images: list[dict[str, Any]] = [UBUNTU_2404, UBUNTU_2204, WINDOWS_2022]
        self.allocation_seconds = 30.0
        self.node_boot_seconds = 60.0
        self.delete_seconds = 0.0
        self.node_quota: int | None = None
        self.spot_node_quota: int | None = None  # the account's separate low-priority (spot) core quota
        self.start_task = TaskOutcome(seconds=120.0, stdout="kubernetes control plane ready\n")
        self.default_task = TaskOutcome()
        self.task_outcomes: dict[str, TaskOutcome] = {}  # task id (lower case) -> outcome
        self.outcome_for: Callable[[dict[str, Any]], TaskOutcome | None] | None = None
        # Like outcome_for, also told the node the task runs on (to run its command line as that node).
        self.outcome_on_node: Callable[[dict[str, Any], str], TaskOutcome | None] | None = None
        self.pools: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self._state_lock = threading.RLock()
        self._register_routes()

    # -- routing ----------------------------------------------------------------------------

    def _register_routes(self) -> None:
        pool, job, task = r"/pools/(?P<pool_id>[^/]+)", r"/jobs/(?P<job_id>[^/]+)", r"/tasks/(?P<task_id>[^/]+)"
        routes: list[tuple[str, str, Callable[..., Any]]] = [
            ("GET", r"/supportedimages", self._supported_images),
            ("POST", r"/pools", self._create_pool),
            ("GET", r"/pools", self._list_pools),
            ("GET", pool, self._get_pool),
            ("HEAD", pool, self._pool_exists),
            ("DELETE", pool, self._delete_pool),
            ("POST", pool + r"/resize", self._resize_pool),
            ("GET", pool + r"/nodes", self._list_nodes),
            ("GET", pool + r"/nodes/(?P<node_id>[^/]+)", self._get_node),
            ("GET", pool + r"/nodes/(?P<node_id>[^/]+)/files/(?P<path>.+)", self._node_file),
            ("POST", r"/jobs", self._create_job),
            ("GET", r"/jobs", self._list_jobs),
            ("GET", job, self._get_job),
            ("DELETE", job, self._delete_job),
            ("POST", job + r"/addtaskcollection", self._add_task_collection),
            ("POST", job + r"/tasks", self._add_task),
            ("GET", job + r"/tasks", self._list_tasks),
            ("GET", job + task, self._get_task),
            ("DELETE", job + task, self._delete_task),
            ("GET", job + task + r"/files/(?P<path>.+)", self._task_file),
        ]
        for method, pattern, handler in routes:
            self.route(method, pattern)(self._guarded(handler))

    def _guarded(self, handler: Callable[..., Any]) -> Callable[..., Response]:
        def serve(request: Request, **groups: str) -> Response:
            try:
                self._check_request(request)
                with self._state_lock:
                    return handler(request, **groups)
            except BatchFault as fault:
                return self.error(fault.status, fault.code, fault.message, fault.values)

        return serve

    def _check_request(self, request: Request) -> None:
        if self.aad is not None and not self.aad.accepts(request.headers.get("authorization"), BATCH_AUDIENCE):
            raise BatchFault(401, "AuthenticationFailed",
                             "Server failed to authenticate the request. Make sure the value of Authorization "
                             "header is formed correctly including the signature.")
        if not request.arg("api-version"):
            raise BatchFault(400, "MissingRequiredQueryParameter",
                             "A query parameter that's mandatory for this request is not specified.",
                             {"QueryParameterName": "api-version"})
        if len(request.body) > MAX_BODY:
            raise BatchFault(413, "RequestBodyTooLarge", "The request body is too large and exceeds the maximum "
                             "permissible limit.", {"MaxLimit": str(MAX_BODY)})

    def not_found(self, request: Request) -> Response:
        return self.error(400, "InvalidUri", "The requested URI does not represent any resource on the server.",
                          {"RequestUri": request.path})

    def error(self, status: int, code: str, message: str, values: dict[str, str] | None = None) -> Response:
        """Batch's error document (what the SDK's BatchErrorFormat parses)."""
        request_id = uuid.uuid4()
        body: dict[str, Any] = {
            "odata.metadata": f"{self.url}/$metadata#Microsoft.Azure.Batch.Protocol.Entities.Container.errors/@Element",
            "code": code,
            "message": {"lang": "en-US",
                        "value": f"{message}\nRequestId:{request_id}\nTime:{self.clock.iso()}"},
        }
        if values:
            body["values"] = [{"key": key, "value": value} for key, value in values.items()]
        return Response(status, body, {"request-id": str(request_id)})

    # -- helpers ----------------------------------------------------------------------------

    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        invalid = BatchFault(400, "InvalidRequestBody", "The specified Request Body is not syntactically valid.")
        try:
            body = request.json()
        except ValueError:
            raise invalid from None
        if not isinstance(body, dict):
            raise invalid
        return body

    @staticmethod
    def _check_id(value: Any, prop: str = "id") -> str:
        if value is None or value == "":
            raise BatchFault(400, "MissingRequiredProperty", "A required property was not specified in the request "
                             "body.", {"PropertyName": prop})
        if not isinstance(value, str) or not ID_RULE.match(value):
            raise BatchFault(400, "InvalidPropertyValue", "The value provided for one of the properties in the "
                             "request body is invalid.",
                             {"PropertyName": prop, "PropertyValue": str(value)[:100],
                              "Reason": "The id can contain any combination of alphanumeric characters including "
                                        "hyphens and underscores, and cannot contain more than 64 characters."})
        return value

    @staticmethod
    def _require(body: dict[str, Any], *path: str) -> Any:
        node: Any = body
        for name in path:
            if not isinstance(node, dict) or node.get(name) in (None, ""):
                raise BatchFault(400, "MissingRequiredProperty", "A required property was not specified in the "
                                 "request body.", {"PropertyName": name})
            node = node[name]
        return node

    def _page(self, request: Request, items: list[dict[str, Any]], kind: str) -> Response:
        limit = int(request.arg("maxresults") or 1000)
        start = int(request.arg("skiptoken") or 0)
        page = items[start:start + limit]
        body: dict[str, Any] = {"odata.metadata": f"{self.url}/$metadata#{kind}", "value": page}
        if start + limit < len(items):
            query = "&".join(f"{k}={v[0]}" for k, v in request.query.items() if k != "skiptoken")
            body["odata.nextLink"] = f"{self.url}{request.path}?{query}&skiptoken={start + limit}"
        return Response(200, body)

    @staticmethod
    def _filtered(request: Request, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Supports the `state eq 'x'` filters (joined with `or`) that clients commonly send."""
        expression = request.arg("$filter")
        if not expression:
            return items
        wanted = set(re.findall(r"state eq '([a-z]+)'", expression))
        if not wanted:
            raise BatchFault(400, "InvalidQueryParameterValue", "Value for one of the query parameters specified "
                             "in the request URI is invalid.", {"QueryParameterName": "$filter"})
        return [item for item in items if item.get("state") in wanted]

    def _etag(self) -> str:
        return f"0x8DE{uuid.uuid4().hex[:12].upper()}"

    # -- supported images -------------------------------------------------------------------

    def _supported_images(self, request: Request) -> Response:
        return self._page(request, list(self.supported_images), "supportedimages")

    # -- pools ------------------------------------------------------------------------------

    def _pool(self, pool_id: str) -> dict[str, Any]:
        pool = self.pools.get(pool_id.lower())
        if pool is None or self._pool_gone(pool):
            raise BatchFault(404, "PoolNotFound", "The specified pool does not exist.")
        return pool

    def _pool_gone(self, pool: dict[str, Any]) -> bool:
        if pool["deleted_at"] is not None and self.clock.now() >= pool["deleted_at"] + self.delete_seconds:
            self.pools.pop(pool["spec"]["id"].lower(), None)
            return True
        return False

    def _create_pool(self, request: Request) -> Response:
        body = self._body(request)
        pool_id = self._check_id(body.get("id"))
        self._require(body, "vmSize")
        vm = self._require(body, "virtualMachineConfiguration")
        self._require(body, "virtualMachineConfiguration", "imageReference")
        sku = self._require(body, "virtualMachineConfiguration", "nodeAgentSKUId")
        if sku not in {image["nodeAgentSKUId"] for image in self.supported_images}:
            raise BatchFault(400, "InvalidPropertyValue", "The value provided for one of the properties in the "
                             "request body is invalid.", {"PropertyName": "nodeAgentSKUId", "PropertyValue": sku})
        image = vm["imageReference"]
        if not image.get("virtualMachineImageId") and not all(image.get(k) for k in ("publisher", "offer", "sku")):
            raise BatchFault(400, "MissingRequiredProperty", "A required property was not specified in the request "
                             "body.", {"PropertyName": "imageReference"})
        if body.get("startTask") is not None:
            self._require(body, "startTask", "commandLine")
        for account in body.get("userAccounts") or []:
            self._require(account, "name")
            self._require(account, "password")
        for name in ("targetDedicatedNodes", "targetLowPriorityNodes"):
            value = body.get(name, 0)
            if not isinstance(value, int) or value < 0:
                raise BatchFault(400, "InvalidPropertyValue", "The value provided for one of the properties in the "
                                 "request body is invalid.", {"PropertyName": name, "PropertyValue": str(value)})
        existing = self.pools.get(pool_id.lower())
        if existing is not None and not self._pool_gone(existing):
            if existing["deleted_at"] is not None:
                raise BatchFault(409, "PoolBeingDeleted", "The specified pool has been marked for deletion and is "
                                 "being reclaimed.")
            raise BatchFault(409, "PoolExists", "The specified pool already exists.")
        now = self.clock.now()
        pool = {"spec": body, "created": now, "deleted_at": None, "nodes": [], "resize_errors": [],
                "etag": self._etag(), "alloc_until": now}
        self.pools[pool_id.lower()] = pool
        self._allocate(pool, body.get("targetDedicatedNodes", 0), body.get("targetLowPriorityNodes", 0))
        return Response(201, None, {"ETag": pool["etag"], "Location": f"{self.url}/pools/{pool_id}",
                                    "DataServiceId": f"{self.url}/pools/{pool_id}"})

    def _allocate(self, pool: dict[str, Any], dedicated: int, spot: int) -> None:
        """Start a resize to the targets: new nodes appear now, the allocation settles later."""
        now = self.clock.now()
        pool["target"] = (dedicated, spot)
        pool["resize_errors"] = []
        pool["alloc_until"] = now + self.allocation_seconds
        live = [n for n in pool["nodes"] if n["removed_at"] is None]
        for dedicated_flag, target in ((True, dedicated), (False, spot)):
            kind = [n for n in live if n["dedicated"] == dedicated_flag]
            quota = self.node_quota if dedicated_flag else self.spot_node_quota
            if quota is not None and target > quota:
                code, kind_name = (("AccountCoreQuotaReached", "dedicated") if dedicated_flag
                                   else ("AccountLowPriorityCoreQuotaReached", "spot"))
                pool["resize_errors"].append({
                    "code": code,
                    "message": f"The specified account has reached VM {'low priority ' if not dedicated_flag else ''}"
                               "core quota.",
                    "values": [{"name": "Reason", "value": f"at most {quota} {kind_name} nodes"}]})
                target = quota
            for node in kind[target:]:
                node["removed_at"] = now
            for _ in range(target - len(kind)):
                pool["nodes"].append({"id": f"tvmps_{uuid.uuid4().hex[:24]}_{'d' if dedicated_flag else 'p'}",
                                      "created": now, "removed_at": None, "dedicated": dedicated_flag,
                                      "ip": f"10.0.0.{len(pool['nodes']) + 4}"})

    def _pool_view(self, pool: dict[str, Any]) -> dict[str, Any]:
        now = self.clock.now()
        spec = pool["spec"]
        live = [n for n in pool["nodes"] if n["removed_at"] is None]
        view = dict(spec)
        view.update({
            "url": f"{self.url}/pools/{spec['id']}", "eTag": pool["etag"],
            "lastModified": self.clock.iso(pool["created"]), "creationTime": self.clock.iso(pool["created"]),
            "state": "deleting" if pool["deleted_at"] is not None else "active",
            "stateTransitionTime": self.clock.iso(pool["deleted_at"] or pool["created"]),
            "allocationState": "resizing" if now < pool["alloc_until"] else "steady",
            "allocationStateTransitionTime": self.clock.iso(min(now, pool["alloc_until"])),
            "currentDedicatedNodes": sum(1 for n in live if n["dedicated"]),
            "currentLowPriorityNodes": sum(1 for n in live if not n["dedicated"]),
            "targetDedicatedNodes": pool["target"][0], "targetLowPriorityNodes": pool["target"][1],
            "enableAutoScale": False, "resizeTimeout": spec.get("resizeTimeout", "PT15M"),
            "taskSlotsPerNode": spec.get("taskSlotsPerNode", 1),
        })
        if pool["resize_errors"] and now >= pool["alloc_until"]:
            view["resizeErrors"] = pool["resize_errors"]
        for secret_holder in view.get("userAccounts") or []:
            secret_holder.pop("password", None)
        return view

    def _list_pools(self, request: Request) -> Response:
        views = [self._pool_view(p) for p in list(self.pools.values()) if not self._pool_gone(p)]
        return self._page(request, self._filtered(request, views), "pools")

    def _get_pool(self, request: Request, pool_id: str) -> Response:
        return Response(200, self._pool_view(self._pool(pool_id)))

    def _pool_exists(self, request: Request, pool_id: str) -> Response:
        self._pool(pool_id)
        return Response(200)

    def _delete_pool(self, request: Request, pool_id: str) -> Response:
        pool = self._pool(pool_id)
        if pool["deleted_at"] is not None:
            raise BatchFault(409, "PoolBeingDeleted", "The specified pool has been marked for deletion and is being "
                             "reclaimed.")
        pool["deleted_at"] = self.clock.now()
        return Response(202)

    def _resize_pool(self, request: Request, pool_id: str) -> Response:
        pool = self._pool(pool_id)
        body = self._body(request)
        if pool["deleted_at"] is not None:
            raise BatchFault(409, "PoolBeingDeleted", "The specified pool has been marked for deletion and is being "
                             "reclaimed.")
        if self.clock.now() < pool["alloc_until"]:
            raise BatchFault(409, "PoolBeingResized", "The specified pool is being resized")
        dedicated = body.get("targetDedicatedNodes", pool["target"][0])
        spot = body.get("targetLowPriorityNodes", pool["target"][1])
        self._allocate(pool, dedicated, spot)
        return Response(202, None, {"ETag": pool["etag"]})

    # -- nodes ------------------------------------------------------------------------------

    def _start_task_window(self, pool: dict[str, Any], node: dict[str, Any]) -> tuple[float, float]:
        """When the node's start task starts and when it ends (the last retry's end)."""
        booted = node["created"] + self.node_boot_seconds
        if not pool["spec"].get("startTask"):
            return booted, booted
        retries = max(0, pool["spec"]["startTask"].get("maxTaskRetryCount", 0))
        attempts = 1 + (retries if self.start_task.exit_code != 0 else 0)
        return booted, booted + self.start_task.seconds * attempts

    def node_ready_at(self, pool: dict[str, Any], node: dict[str, Any]) -> float:
        """When the node can run tasks (never when a start task it waits for fails)."""
        begin, end = self._start_task_window(pool, node)
        start_task = pool["spec"].get("startTask")
        if not start_task:
            return begin
        if start_task.get("waitForSuccess", True):
            return end if self.start_task.exit_code == 0 else NEVER
        return begin

    def _node_view(self, pool: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
        now = self.clock.now()
        begin, end = self._start_task_window(pool, node)
        ready = self.node_ready_at(pool, node)
        start_task = pool["spec"].get("startTask")
        running = self._tasks_running_on(node["id"], now)
        if now < begin:
            state = "starting"
        elif ready == NEVER and now >= end:
            state = "starttaskfailed"
        elif now < ready:
            state = "waitingforstarttask"
        else:
            state = "running" if running else "idle"
        view: dict[str, Any] = {
            "id": node["id"], "url": f"{self.url}/pools/{pool['spec']['id']}/nodes/{node['id']}",
            "state": state, "schedulingState": "enabled", "stateTransitionTime": self.clock.iso(),
            "allocationTime": self.clock.iso(node["created"]), "ipAddress": node["ip"],
            "vmSize": pool["spec"]["vmSize"].lower(), "totalTasksRun": 0, "runningTasksCount": running,
            "isDedicated": node["dedicated"], "affinityId": _affinity(node["id"]),
            "nodeAgentInfo": {"version": "1.12.9", "lastUpdateTime": self.clock.iso(node["created"])},
            "virtualMachineInfo": {"imageReference": pool["spec"]["virtualMachineConfiguration"]["imageReference"]},
        }
        if now >= begin:
            view["lastBootTime"] = self.clock.iso(begin)
        if start_task:
            view["startTask"] = start_task
            if now >= begin:
                view["startTaskInfo"] = self._start_task_info(start_task, begin, end, now)
        return view

    def _start_task_info(self, start_task: dict[str, Any], begin: float, end: float, now: float) -> dict[str, Any]:
        outcome = self.start_task
        retries = max(0, start_task.get("maxTaskRetryCount", 0)) if outcome.exit_code else 0
        attempt = min(retries, int((now - begin) // max(outcome.seconds, 1e-9)))
        info: dict[str, Any] = {"state": "running", "startTime": self.clock.iso(begin + attempt * outcome.seconds),
                                "retryCount": attempt}
        if now >= end:
            info.update({"state": "completed", "endTime": self.clock.iso(end), "exitCode": outcome.exit_code,
                         "retryCount": retries, "result": "success" if outcome.exit_code == 0 else "failure"})
            if outcome.exit_code:
                info["failureInfo"] = _exit_failure()
        return info

    def _tasks_running_on(self, node_id: str, now: float) -> int:
        count = 0
        for job in self.jobs.values():
            for task in job["tasks"].values():
                line = self._timeline(job, task)
                if line and line["node"] == node_id and line["start"] <= now < line["end"]:
                    count += 1
        return count

    def _live_nodes(self, pool: dict[str, Any]) -> list[dict[str, Any]]:
        return [n for n in pool["nodes"] if n["removed_at"] is None]

    def _list_nodes(self, request: Request, pool_id: str) -> Response:
        pool = self._pool(pool_id)
        views = [self._node_view(pool, n) for n in self._live_nodes(pool)]
        return self._page(request, self._filtered(request, views), "nodes")

    def _find_node(self, pool: dict[str, Any], node_id: str) -> dict[str, Any]:
        for node in self._live_nodes(pool):
            if node["id"].lower() == node_id.lower():
                return node
        raise BatchFault(404, "NodeNotFound", "The specified node does not exist.")

    def _get_node(self, request: Request, pool_id: str, node_id: str) -> Response:
        pool = self._pool(pool_id)
        return Response(200, self._node_view(pool, self._find_node(pool, node_id)))

    def _node_file(self, request: Request, pool_id: str, node_id: str, path: str) -> Response:
        path = unquote(path)
        pool = self._pool(pool_id)
        node = self._find_node(pool, node_id)
        begin, _ = self._start_task_window(pool, node)
        files = {}
        if pool["spec"].get("startTask") and self.clock.now() >= begin:
            files = {"startup/stdout.txt": self.start_task.stdout, "startup/stderr.txt": self.start_task.stderr}
        return self._file(request, files, path, f"{self.url}/pools/{pool_id}/nodes/{node_id}/files/{path}")

    # -- jobs -------------------------------------------------------------------------------

    def _job(self, job_id: str) -> dict[str, Any]:
        job = self.jobs.get(job_id.lower())
        if job is None:
            raise BatchFault(404, "JobNotFound", "The specified job does not exist.")
        return job

    def _create_job(self, request: Request) -> Response:
        body = self._body(request)
        job_id = self._check_id(body.get("id"))
        pool_info = self._require(body, "poolInfo")
        if not pool_info.get("poolId") and not pool_info.get("autoPoolSpecification"):
            raise BatchFault(400, "MissingRequiredProperty", "A required property was not specified in the request "
                             "body.", {"PropertyName": "poolId"})
        existing = self.jobs.get(job_id.lower())
        if existing is not None:
            if existing["state"] == "deleting":
                raise BatchFault(409, "JobBeingDeleted", "The specified job has been marked for deletion and is "
                                 "being garbage collected.")
            raise BatchFault(409, "JobExists", "The specified job already exists.")
        now = self.clock.now()
        self.jobs[job_id.lower()] = {"spec": body, "created": now, "state": "active", "tasks": {},
                                     "etag": self._etag(), "order": 0}
        return Response(201, None, {"ETag": self.jobs[job_id.lower()]["etag"],
                                    "Location": f"{self.url}/jobs/{job_id}"})

    def _job_view(self, job: dict[str, Any]) -> dict[str, Any]:
        view = dict(job["spec"])
        view.update({"url": f"{self.url}/jobs/{job['spec']['id']}", "eTag": job["etag"],
                     "lastModified": self.clock.iso(job["created"]), "creationTime": self.clock.iso(job["created"]),
                     "state": job["state"], "stateTransitionTime": self.clock.iso(job["created"]),
                     "usesTaskDependencies": bool(job["spec"].get("usesTaskDependencies")),
                     "priority": job["spec"].get("priority", 0),
                     "onAllTasksComplete": job["spec"].get("onAllTasksComplete", "noaction"),
                     "executionInfo": {"startTime": self.clock.iso(job["created"]),
                                       "poolId": job["spec"]["poolInfo"].get("poolId")}})
        return view

    def _list_jobs(self, request: Request) -> Response:
        return self._page(request, self._filtered(request, [self._job_view(j) for j in self.jobs.values()]), "jobs")

    def _get_job(self, request: Request, job_id: str) -> Response:
        return Response(200, self._job_view(self._job(job_id)))

    def _delete_job(self, request: Request, job_id: str) -> Response:
        job = self._job(job_id)
        if job["state"] == "deleting":
            raise BatchFault(409, "JobBeingDeleted", "The specified job has been marked for deletion and is being "
                             "garbage collected.")
        self.jobs.pop(job_id.lower())  # deletion completes at once in the fake: the poller sees 404
        return Response(202)

    # -- tasks ------------------------------------------------------------------------------

    def _add_task_collection(self, request: Request, job_id: str) -> Response:
        job = self._job(job_id)
        body = self._body(request)
        tasks = body.get("value")
        if not isinstance(tasks, list) or not tasks:
            raise BatchFault(400, "MissingRequiredProperty", "A required property was not specified in the request "
                             "body.", {"PropertyName": "value"})
        if len(tasks) > MAX_TASKS_PER_COLLECTION:
            raise BatchFault(413, "RequestBodyTooLarge", "The request body is too large and exceeds the maximum "
                             "permissible limit.", {"MaxTaskCount": str(MAX_TASKS_PER_COLLECTION),
                                                    "TaskCount": str(len(tasks))})
        results = [self._add_one(job, job_id, task) for task in tasks]
        return Response(200, {"odata.metadata": f"{self.url}/$metadata#taskaddresult", "value": results})

    def _add_task(self, request: Request, job_id: str) -> Response:
        job = self._job(job_id)
        result = self._add_one(job, job_id, self._body(request))
        if result["status"] != "success":
            error = result["error"]
            values = {v["key"]: v["value"] for v in error.get("values", [])}
            status = 409 if error["code"] == "TaskExists" else 400
            raise BatchFault(status, error["code"], error["message"]["value"].split("\n")[0], values)
        return Response(201, None, {"ETag": result["eTag"], "Location": result["location"]})

    def _add_one(self, job: dict[str, Any], job_id: str, task: Any) -> dict[str, Any]:
        task_id = task.get("id") if isinstance(task, dict) else None
        try:
            if not isinstance(task, dict):
                raise BatchFault(400, "InvalidRequestBody", "The specified Request Body is not syntactically valid.")
            self._check_id(task_id)
            self._require(task, "commandLine")
            if job["state"] != "active":
                raise BatchFault(409, "JobNotActive", "The specified job is not in active state.")
            if task.get("dependsOn") and not job["spec"].get("usesTaskDependencies"):
                raise BatchFault(400, "TaskDependenciesNotSpecifiedOnJob", "A task was specified as depending on "
                                 "other tasks, but the job did not specify that it would use task dependencies.")
            if task_id.lower() in job["tasks"]:
                raise BatchFault(409, "TaskExists", "The specified task already exists.")
        except BatchFault as fault:
            error = self.error(fault.status, fault.code, fault.message, fault.values).body
            error.pop("odata.metadata", None)
            return {"status": "clienterror", "taskId": str(task_id), "error": error}
        job["order"] += 1
        etag = self._etag()
        job["tasks"][task_id.lower()] = {"spec": task, "created": self.clock.now(), "etag": etag,
                                         "order": job["order"], "line": None}
        return {"status": "success", "taskId": task_id, "eTag": etag, "lastModified": self.clock.iso(),
                "location": f"{self.url}/jobs/{job_id}/tasks/{task_id}"}

    def _outcome(self, task: dict[str, Any], node_id: str) -> TaskOutcome:
        custom = self.outcome_on_node(task["spec"], node_id) if self.outcome_on_node else None
        custom = custom or (self.outcome_for(task["spec"]) if self.outcome_for else None)
        return custom or self.task_outcomes.get(task["spec"]["id"].lower()) or self.default_task

    def _timeline(self, job: dict[str, Any], task: dict[str, Any], depth: int = 0) -> dict[str, Any] | None:
        """When the task starts and ends, and on which node; None while that is not yet decided."""
        if task["line"] is not None:
            return task["line"]
        if depth > 10000:
            return None
        pool = self.pools.get((job["spec"]["poolInfo"].get("poolId") or "").lower())
        if pool is None or pool["deleted_at"] is not None:
            return None
        ready_nodes = sorted((self.node_ready_at(pool, n), n["id"]) for n in self._live_nodes(pool))
        if not ready_nodes or ready_nodes[0][0] == NEVER:
            return None
        wanted = (task["spec"].get("affinityInfo") or {}).get("affinityId")
        preferred = [(at, node_id) for at, node_id in ready_nodes if at != NEVER and _affinity(node_id) == wanted]
        ready_at, node_id = preferred[0] if preferred else ready_nodes[0]  # affinity is a preference only
        start = max(task["created"], ready_at)
        for dep_id in _dependency_ids(task["spec"]):
            dep = job["tasks"].get(dep_id.lower())
            line = self._timeline(job, dep, depth + 1) if dep else None
            if line is None or line["exit_code"] != 0:
                return None  # waits (or, after a failure, stays blocked)
            start = max(start, line["end"])
        outcome = self._outcome(task, node_id)
        line = {"start": start, "end": start + outcome.seconds, "exit_code": outcome.exit_code,
                "node": node_id, "outcome": outcome}
        if self.clock.now() >= start:
            task["line"] = line  # decided once it started: later pool changes do not rewrite history
        return line

    def _task_view(self, job: dict[str, Any], task: dict[str, Any]) -> dict[str, Any]:
        now = self.clock.now()
        spec = task["spec"]
        line = self._timeline(job, task)
        view = dict(spec)
        view.update({"url": f"{self.url}/jobs/{job['spec']['id']}/tasks/{spec['id']}", "eTag": task["etag"],
                     "creationTime": self.clock.iso(task["created"]), "lastModified": self.clock.iso(task["created"]),
                     "constraints": spec.get("constraints") or {"maxWallClockTime": "P10675199DT2H48M5.4775807S",
                                                                "retentionTime": "P7D", "maxTaskRetryCount": 0},
                     "requiredSlots": spec.get("requiredSlots", 1)})
        if line is None or now < line["start"]:
            view.update({"state": "active", "stateTransitionTime": self.clock.iso(task["created"]),
                         "executionInfo": {"retryCount": 0, "requeueCount": 0}})
            return view
        node_info = {"affinityId": _affinity(line["node"]), "nodeId": line["node"],
                     "poolId": job["spec"]["poolInfo"]["poolId"],
                     "nodeUrl": f"{self.url}/pools/{job['spec']['poolInfo']['poolId']}/nodes/{line['node']}",
                     "taskRootDirectory": f"workitems/{job['spec']['id']}/job-1/{spec['id']}"}
        execution: dict[str, Any] = {"startTime": self.clock.iso(line["start"]), "retryCount": 0, "requeueCount": 0}
        if now < line["end"]:
            view.update({"state": "running", "stateTransitionTime": self.clock.iso(line["start"]),
                         "previousState": "active", "executionInfo": execution, "nodeInfo": node_info})
            return view
        execution.update({"endTime": self.clock.iso(line["end"]), "exitCode": line["exit_code"],
                          "result": "success" if line["exit_code"] == 0 else "failure"})
        if line["exit_code"]:
            execution["failureInfo"] = _exit_failure()
        view.update({"state": "completed", "stateTransitionTime": self.clock.iso(line["end"]),
                     "previousState": "running", "executionInfo": execution, "nodeInfo": node_info})
        return view

    def _list_tasks(self, request: Request, job_id: str) -> Response:
        job = self._job(job_id)
        views = [self._task_view(job, t) for t in sorted(job["tasks"].values(), key=lambda t: t["order"])]
        views = self._filtered(request, views)
        selected = request.arg("$select")
        if selected:
            names = {name.strip() for name in selected.split(",")}
            views = [{k: v for k, v in view.items() if k in names} for view in views]
        return self._page(request, views, "tasks")

    def _task(self, job: dict[str, Any], task_id: str) -> dict[str, Any]:
        task = job["tasks"].get(task_id.lower())
        if task is None:
            raise BatchFault(404, "TaskNotFound", "The specified task does not exist.")
        return task

    def _get_task(self, request: Request, job_id: str, task_id: str) -> Response:
        job = self._job(job_id)
        return Response(200, self._task_view(job, self._task(job, task_id)))

    def _delete_task(self, request: Request, job_id: str, task_id: str) -> Response:
        """Batch removes the task and its files on the node (ending it if it still runs): 200, no body."""
        job = self._job(job_id)
        self._task(job, task_id)
        del job["tasks"][task_id.lower()]
        return Response(200)

    def _task_file(self, request: Request, job_id: str, task_id: str, path: str) -> Response:
        path = unquote(path)
        job = self._job(job_id)
        task = self._task(job, task_id)
        line = self._timeline(job, task)
        files = {}
        if line is not None and self.clock.now() >= line["start"]:
            done = self.clock.now() >= line["end"]
            files = {"stdout.txt": line["outcome"].stdout if done else "",
                     "stderr.txt": line["outcome"].stderr if done else ""}
        return self._file(request, files, path, f"{self.url}/jobs/{job_id}/tasks/{task_id}/files/{path}")

    def _file(self, request: Request, files: dict[str, str], path: str, url: str) -> Response:
        if path not in files:
            raise BatchFault(404, "FileNotFound", "The specified file does not exist.")
        data = files[path].encode()
        headers = {"ocp-batch-file-url": url, "ocp-batch-file-isdirectory": "false", "ocp-batch-file-mode": "0o100644",
                   "ocp-creation-time": format_datetime(self.clock.datetime(), usegmt=True),
                   "Last-Modified": format_datetime(self.clock.datetime(), usegmt=True),
                   "Content-Type": "application/octet-stream"}
        wanted = request.headers.get("ocp-range")
        if wanted:
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", wanted)
            if not match or int(match.group(1)) > max(len(data) - 1, 0):
                raise BatchFault(416, "InvalidRange", "The range specified is invalid for the current size of the "
                                 "resource.")
            first = int(match.group(1))
            last = int(match.group(2)) if match.group(2) else len(data) - 1
            data = data[first:last + 1]
        return Response(200, data, headers)


def _affinity(node_id: str) -> str:
    """A node's affinityId: opaque to clients (Batch's look like this), and not the node id itself."""
    return f"TVM:{node_id}"


def _dependency_ids(spec: dict[str, Any]) -> list[str]:
    depends = spec.get("dependsOn") or {}
    ids = list(depends.get("taskIds") or [])
    for span in depends.get("taskIdRanges") or []:
        ids.extend(str(i) for i in range(int(span["start"]), int(span["end"]) + 1))
    return ids


def _exit_failure() -> dict[str, Any]:
    message = "The task process exited with an unexpected exit code"
    return {"category": "usererror", "code": "FailureExitCode", "message": message,
            "details": [{"name": "Message", "value": message}]}
