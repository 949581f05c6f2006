"""A fake of the Azure Batch data plane, driven through the real `azure.batch.BatchClient`.

It follows the Batch data-plane REST definition, api-version 2025-06-01
(Azure/azure-rest-api-specs `specification/batch/data-plane/Azure.Batch/stable/2025-06-01/BatchService.json`,
the version azure-batch 15 sends); the parts it follows are vendored in
tests/data/batch-service-2025-06-01.excerpt.json and tests/contract/test_fake_batch.py checks its
answers against them. It refuses what the service refuses with Batch's error codes and JSON shape
(`odata.metadata`, `code`, `message.value`, `values[key, value]`), and simulates pools, nodes and
tasks over a controllable clock:

- a pool allocates its nodes (`allocationState` resizing -> steady after `allocation_seconds`);
  nodes go starting -> waitingforstarttask -> idle/running, or starttaskfailed with the start task's
  exit code, failure info and `startup/stderr.txt`; a resize past `node_quota` (`spot_node_quota`) ends
  with `resizeErrors` (AccountCoreQuotaReached, AccountLowPriorityCoreQuotaReached) although the
  allocation becomes steady;
- `set_node_state` puts any node in any of the sixteen `BatchNodeState`s (a preempted spot node,
  an unusable or offline node, ...): from then on it takes no new task unless the state is idle or
  running, and tasks running on a node that stops being usable are requeued (`requeueCount`);
- a task runs once a node is usable, has `requiredSlots` free of the pool's `taskSlotsPerNode`, and
  every task it depends on completed with exit code 0; tasks beyond the free slots queue (active)
  until a slot frees. It completes `TaskOutcome.seconds` later with its exit code, `stdout.txt` and
  `stderr.txt`. A task whose dependency failed stays active (Batch's default dependency action is
  to block). A task with `affinityInfo` runs on the node with that `affinityId` when that node has
  a free slot, else on another usable node with one (affinity is a preference in Batch too);
- deleting a pool or a job leaves it in state `deleting` for `delete_seconds`: meanwhile its id
  answers 409 PoolBeingDeleted / JobBeingDeleted, as Batch does while it reclaims nodes or tasks;
- `add_server_errors` makes add-collection answer `servererror` for chosen tasks a number of times;
- lists page at `maxresults` (at most 1000, the documented limit) with `odata.nextLink`.

State is computed from the clock on every request, so no background thread advances anything and
tests can say "tasks finish after 120 s" and jump the clock instead of sleeping. Files exist only
for tasks that started.

`addtaskcollection` accepts at most 100 tasks (the documented limit); more is answered with
RequestBodyTooLarge.
"""

from __future__ import annotations

import json
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
MAX_RESULTS = 1000
# BatchNodeState in BatchService.json 2025-06-01 (tests/contract checks this against the vendored definition).
NODE_STATES = ("idle", "rebooting", "reimaging", "running", "unusable", "creating", "starting", "waitingforstarttask",
               "starttaskfailed", "unknown", "leavingpool", "offline", "preempted", "upgradingos", "deallocated",
               "deallocating")
USABLE_STATES = ("idle", "running")
JOB_BEING_DELETED = ("JobBeingDeleted",
                     "The specified job has been marked for deletion and is being garbage collected.")
POOL_BEING_DELETED = ("PoolBeingDeleted", "The specified pool has been marked for deletion and is being reclaimed.")
SERVER_ERROR = ("InternalError", "Server encountered an internal error. Please try again after some time.")
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
        # task id (lower case) -> how many more add-collection answers are `servererror` for it
        self.add_server_errors: dict[str, float] = {}
        self.pools: dict[str, dict[str, Any]] = {}
        self.patches: list[tuple[str, dict[str, Any]]] = []  # (pool id, body) of every accepted Pool - Patch
        self.jobs: dict[str, dict[str, Any]] = {}
        self._plan: dict[int, dict[str, Any] | None] | None = None  # task placements, computed once per request
        # Every answer a handler gave: (method, path, query, status, JSON body), for the contract tests.
        self.answers: list[tuple[str, str, dict[str, list[str]], int, Any]] = []
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
            ("PATCH", pool, self._patch_pool),
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
                    self._plan = None
                    response = self._selected(request, handler(request, **groups))
            except BatchFault as fault:
                response = self.error(fault.status, fault.code, fault.message, fault.values)
            return self._recorded(request, response)

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
        return self._recorded(request, self.error(400, "InvalidUri", "The requested URI does not represent any "
                                                  "resource on the server.", {"RequestUri": request.path}))

    def _recorded(self, request: Request, response: Response) -> Response:
        if isinstance(response.body, dict):
            self.answers.append((request.method, request.path, dict(request.query), response.status,
                                 json.loads(json.dumps(response.body))))
        return response

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

    @staticmethod
    def _selected(request: Request, response: Response) -> Response:
        """Apply `$select` (a comma list of top-level properties) to a resource or a list page."""
        wanted = request.arg("$select")
        if not wanted or request.method != "GET" or not isinstance(response.body, dict):
            return response
        names = {name.strip() for name in wanted.split(",")}
        trim = lambda item: {k: v for k, v in item.items() if k in names}  # noqa: E731
        if isinstance(response.body.get("value"), list):
            response.body["value"] = [trim(item) for item in response.body["value"]]
        else:
            response.body = trim(response.body)
        return response

    def _page(self, request: Request, items: list[dict[str, Any]], kind: str) -> Response:
        raw = request.arg("maxresults") or str(MAX_RESULTS)
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_RESULTS:
            raise BatchFault(400, "InvalidQueryParameterValue", "Value for one of the query parameters specified "
                             "in the request URI is invalid.", {"QueryParameterName": "maxresults",
                                                                "QueryParameterValue": raw,
                                                                "Reason": f"must be from 1 to {MAX_RESULTS}"})
        limit = int(raw)
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
        pool_id = self.add_pool(self._body(request))
        pool = self.pools[pool_id.lower()]
        return Response(201, None, {"ETag": pool["etag"], "Location": f"{self.url}/pools/{pool_id}",
                                    "DataServiceId": f"{self.url}/pools/{pool_id}"})

    def add_pool(self, body: dict[str, Any], *, identity: dict[str, Any] | None = None) -> str:
        """Create a pool from a data-plane create body, with the data plane's checks (BatchFault when one
        fails); `identity` (data-plane shape) is what only the management plane can set."""
        with self._state_lock:
            return self._add_pool(body, identity)

    def _add_pool(self, body: dict[str, Any], identity: dict[str, Any] | None) -> str:
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
                raise BatchFault(409, *POOL_BEING_DELETED)
            raise BatchFault(409, "PoolExists", "The specified pool already exists.")
        now = self.clock.now()
        pool = {"spec": body, "created": now, "deleted_at": None, "nodes": [], "resize_errors": [],
                "etag": self._etag(), "alloc_until": now, "identity": identity}
        self.pools[pool_id.lower()] = pool
        self._allocate(pool, body.get("targetDedicatedNodes", 0), body.get("targetLowPriorityNodes", 0))
        return pool_id

    def pool_view(self, pool_id: str) -> dict[str, Any]:
        """The pool as Pool - Get answers it (for the management plane, which reports the same pool)."""
        with self._state_lock:
            return self._pool_view(self.pools[pool_id.lower()])

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
        if pool.get("identity"):
            view["identity"] = pool["identity"]
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
            raise BatchFault(409, *POOL_BEING_DELETED)
        pool["deleted_at"] = self.clock.now()
        return Response(202)

    # Pool - Patch (2025-06-01): the properties BatchPoolUpdateOptions lets a PATCH change; an element given
    # replaces the pool's one wholly (a startTask replaces the start task), one left out is unchanged.
    PATCHABLE = ("startTask", "metadata", "applicationPackageReferences", "targetNodeCommunicationMode",
                 "displayName", "vmSize", "enableInterNodeCommunication", "taskSlotsPerNode", "taskSchedulingPolicy",
                 "networkConfiguration", "resourceTags", "userAccounts", "mountConfiguration", "upgradePolicy",
                 "virtualMachineConfiguration")

    def _patch_pool(self, request: Request, pool_id: str) -> Response:
        pool = self._pool(pool_id)
        body = self._body(request)
        if pool["deleted_at"] is not None:
            raise BatchFault(409, *POOL_BEING_DELETED)
        match = request.headers.get("if-match")  # an HTTP entity tag: quoted, around the body's bare eTag
        if match and match.strip('"') not in ("*", pool["etag"]):
            raise BatchFault(412, "ConditionNotMet", "The condition specified using HTTP conditional header(s) is "
                             "not met.")
        for name in body:
            if name not in self.PATCHABLE:
                raise BatchFault(400, "InvalidPropertyValue", "The value provided for one of the properties in the "
                                 "request body is invalid.", {"PropertyName": name})
        if body.get("startTask") is not None:
            self._require(body, "startTask", "commandLine")
        pool["spec"].update(body)
        self.patches.append((pool["spec"]["id"], body))
        pool["etag"] = self._etag()
        return Response(200, None, {"ETag": pool["etag"]})

    def _resize_pool(self, request: Request, pool_id: str) -> Response:
        pool = self._pool(pool_id)
        body = self._body(request)
        if pool["deleted_at"] is not None:
            raise BatchFault(409, *POOL_BEING_DELETED)
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

    def _usable_window(self, pool: dict[str, Any], node: dict[str, Any]) -> tuple[float, float]:
        """From when to when new tasks can start on the node (a forced state decides from its moment on)."""
        ready, until = self.node_ready_at(pool, node), NEVER
        forced = node.get("forced")
        if forced is not None:
            state, since = forced
            if state in USABLE_STATES:
                ready = min(ready, since)
            else:
                until = min(until, since)
        return ready, until

    def set_node_state(self, pool_id: str, node: int | str, state: str) -> str:
        """Put a node (index in the pool, or id) in any BatchNodeState from now on; returns its id.

        A node that is not idle or running takes no new task, and tasks still running on it are
        requeued (they run again elsewhere or when a node is usable), as Batch does on preemption.
        """
        if state not in NODE_STATES:
            raise ValueError(f"{state!r} is not a BatchNodeState ({', '.join(NODE_STATES)})")
        with self._state_lock:
            pool = self.pools[pool_id.lower()]
            live = self._live_nodes(pool)
            target = live[node] if isinstance(node, int) else self._find_node(pool, node)
            now = self.clock.now()
            target["forced"] = (state, now)
            if state not in USABLE_STATES:
                for job in self.jobs.values():
                    for task in job["tasks"].values():
                        line = task["line"]
                        if line and line["node"] == target["id"] and line["end"] > now:
                            task["line"] = None
                            task["created"] = now  # back in the queue from now on
                            task["requeues"] = task.get("requeues", 0) + 1
            self._plan = None
            return target["id"]

    def _node_view(self, pool: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
        now = self.clock.now()
        begin, end = self._start_task_window(pool, node)
        ready = self.node_ready_at(pool, node)
        start_task = pool["spec"].get("startTask")
        running = self._tasks_running_on(node["id"], now)
        forced = node.get("forced")
        if forced is not None and forced[0] not in USABLE_STATES:
            state = forced[0]
        elif forced is None and now < begin:
            state = "starting"
        elif forced is None and ready == NEVER and now >= end:
            state = "starttaskfailed"
        elif forced is None and now < ready:
            state = "waitingforstarttask"
        else:
            state = "running" if running or (forced and forced[0] == "running") else "idle"
        view: dict[str, Any] = {
            "id": node["id"], "url": f"{self.url}/pools/{pool['spec']['id']}/nodes/{node['id']}",
            "state": state, "schedulingState": "disabled" if state == "offline" else "enabled",
            "stateTransitionTime": self.clock.iso(forced[1] if forced else node["created"]),
            "lastBootTime": self.clock.iso(node["created"]),
            "allocationTime": self.clock.iso(node["created"]), "ipAddress": node["ip"],
            "vmSize": pool["spec"]["vmSize"].lower(), "totalTasksRun": self._tasks_ended_on(node["id"], now),
            "runningTasksCount": len(running), "runningTaskSlotsCount": sum(slots for _, slots in running),
            "isDedicated": node["dedicated"], "affinityId": _affinity(node["id"]),
            "nodeAgentInfo": {"version": "1.12.9", "lastUpdateTime": self.clock.iso(node["created"])},
            "virtualMachineInfo": {"imageReference": pool["spec"]["virtualMachineConfiguration"]["imageReference"]},
        }
        if state == "unusable":
            view["errors"] = [{"code": "NodeUnusable", "message": "The node is unusable because of errors.",
                               "errorDetails": [{"name": "Reason", "value": "set by the test"}]}]
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

    def _tasks_running_on(self, node_id: str, now: float) -> list[tuple[str, int]]:
        """(task id, slots) of every task running on the node now."""
        return [(line["task"], line["slots"]) for line in self._schedule().values()
                if line and line["node"] == node_id and line["start"] <= now < line["end"]]

    def _tasks_ended_on(self, node_id: str, now: float) -> int:
        return sum(1 for line in self._schedule().values() if line and line["node"] == node_id and line["end"] <= now)

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
        if job is not None and job["deleted_at"] is not None \
                and self.clock.now() >= job["deleted_at"] + self.delete_seconds:
            del self.jobs[job_id.lower()]
            job = None
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
        try:
            existing: dict[str, Any] | None = self._job(job_id)
        except BatchFault:
            existing = None
        if existing is not None:
            if existing["state"] == "deleting":
                raise BatchFault(409, *JOB_BEING_DELETED)
            raise BatchFault(409, "JobExists", "The specified job already exists.")
        now = self.clock.now()
        self.jobs[job_id.lower()] = {"spec": body, "created": now, "state": "active", "tasks": {},
                                     "etag": self._etag(), "order": 0, "deleted_at": None}
        return Response(201, None, {"ETag": self.jobs[job_id.lower()]["etag"],
                                    "Location": f"{self.url}/jobs/{job_id}"})

    def _job_view(self, job: dict[str, Any]) -> dict[str, Any]:
        view = dict(job["spec"])
        view.update({"url": f"{self.url}/jobs/{job['spec']['id']}", "eTag": job["etag"],
                     "lastModified": self.clock.iso(job["created"]), "creationTime": self.clock.iso(job["created"]),
                     "state": job["state"],
                     "stateTransitionTime": self.clock.iso(job.get("state_since", job["created"])),
                     "usesTaskDependencies": bool(job["spec"].get("usesTaskDependencies")),
                     "priority": job["spec"].get("priority", 0),
                     "onAllTasksComplete": job["spec"].get("onAllTasksComplete", "noaction"),
                     "executionInfo": {"startTime": self.clock.iso(job["created"]),
                                       "poolId": job["spec"]["poolInfo"].get("poolId")}})
        return view

    def _list_jobs(self, request: Request) -> Response:
        live = [job for job in list(self.jobs.values()) if self._job_alive(job)]
        return self._page(request, self._filtered(request, [self._job_view(j) for j in live]), "jobs")

    def _job_alive(self, job: dict[str, Any]) -> bool:
        try:
            self._job(job["spec"]["id"])
        except BatchFault:
            return False
        return True

    def _get_job(self, request: Request, job_id: str) -> Response:
        return Response(200, self._job_view(self._job(job_id)))

    def _delete_job(self, request: Request, job_id: str) -> Response:
        job = self._job(job_id)
        if job["state"] == "deleting":
            raise BatchFault(409, *JOB_BEING_DELETED)
        job.update({"state": "deleting", "deleted_at": self.clock.now(), "state_since": self.clock.now()})
        if self.delete_seconds <= 0:
            del self.jobs[job_id.lower()]  # no delay set: gone at once
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
            status = {"TaskExists": 409, "JobBeingDeleted": 409, "JobNotActive": 409}.get(error["code"], 400)
            status = 500 if result["status"] == "servererror" else status
            raise BatchFault(status, error["code"], error["message"]["value"].split("\n")[0], values)
        return Response(201, None, {"ETag": result["eTag"], "Location": result["location"]})

    def _add_one(self, job: dict[str, Any], job_id: str, task: Any) -> dict[str, Any]:
        task_id = task.get("id") if isinstance(task, dict) else None
        try:
            if not isinstance(task, dict):
                raise BatchFault(400, "InvalidRequestBody", "The specified Request Body is not syntactically valid.")
            self._check_id(task_id)
            self._require(task, "commandLine")
            if job["state"] == "deleting":
                raise BatchFault(409, *JOB_BEING_DELETED)
            if job["state"] != "active":
                raise BatchFault(409, "JobNotActive", "The specified job is not in active state.")
            if task.get("dependsOn") and not job["spec"].get("usesTaskDependencies"):
                raise BatchFault(400, "TaskDependenciesNotSpecifiedOnJob", "A task was specified as depending on "
                                 "other tasks, but the job did not specify that it would use task dependencies.")
            if task_id.lower() in job["tasks"]:
                raise BatchFault(409, "TaskExists", "The specified task already exists.")
            if self.add_server_errors.get(task_id.lower(), 0) > 0:
                self.add_server_errors[task_id.lower()] -= 1
                raise BatchFault(500, *SERVER_ERROR)
        except BatchFault as fault:
            error = self.error(fault.status, fault.code, fault.message, fault.values).body
            error.pop("odata.metadata", None)
            status = "servererror" if fault.status >= 500 else "clienterror"
            return {"status": status, "taskId": str(task_id), "error": error}
        job["order"] += 1
        etag = self._etag()
        job["tasks"][task_id.lower()] = {"spec": task, "created": self.clock.now(), "etag": etag,
                                         "order": job["order"], "line": None, "requeues": 0}
        self._plan = None
        return {"status": "success", "taskId": task_id, "eTag": etag, "lastModified": self.clock.iso(),
                "location": f"{self.url}/jobs/{job_id}/tasks/{task_id}"}

    def _outcome(self, task: dict[str, Any], node_id: str) -> TaskOutcome:
        custom = self.outcome_on_node(task["spec"], node_id) if self.outcome_on_node else None
        custom = custom or (self.outcome_for(task["spec"]) if self.outcome_for else None)
        return custom or self.task_outcomes.get(task["spec"]["id"].lower()) or self.default_task

    def _schedule(self) -> dict[int, dict[str, Any] | None]:
        """Where and when every task runs (None: not decided, it waits), computed once per request.

        Tasks are placed in the order they were added (jobs by creation): each starts at the first
        moment after its creation and its dependencies' ends when a usable node of the job's pool
        has `requiredSlots` free for the whole run, preferring its affinity node. Placements that
        have started are kept, so later pool changes do not rewrite history.
        """
        if self._plan is not None:
            return self._plan
        plan: dict[int, dict[str, Any] | None] = {}
        busy: dict[str, list[tuple[float, float, int]]] = {}  # node id -> (start, end, slots)
        ordered = [(job, task) for job in sorted(self.jobs.values(), key=lambda j: j["created"])
                   for task in sorted(job["tasks"].values(), key=lambda t: t["order"])]
        for _, task in ordered:
            if task["line"] is not None:
                plan[id(task)] = line = task["line"]
                busy.setdefault(line["node"], []).append((line["start"], line["end"], line["slots"]))
        for job, task in ordered:
            self._place(job, task, plan, busy, 0)
        now = self.clock.now()
        for _, task in ordered:
            line = plan.get(id(task))
            if line is not None and now >= line["start"]:
                task["line"] = line
        self._plan = plan
        return plan

    def _place(self, job: dict[str, Any], task: dict[str, Any], plan: dict[int, dict[str, Any] | None],
               busy: dict[str, list[tuple[float, float, int]]], depth: int) -> dict[str, Any] | None:
        if id(task) in plan:
            return plan[id(task)]
        plan[id(task)] = None  # while deciding (a dependency cycle waits forever)
        if depth > 500 or job["state"] == "deleting":
            return None
        earliest = task["created"]
        for dep_id in _dependency_ids(task["spec"]):
            dep = job["tasks"].get(dep_id.lower())
            line = self._place(job, dep, plan, busy, depth + 1) if dep else None
            if line is None or line["exit_code"] != 0:
                return None  # waits (or, after a failure, stays blocked)
            earliest = max(earliest, line["end"])
        pool = self.pools.get((job["spec"]["poolInfo"].get("poolId") or "").lower())
        if pool is None or pool["deleted_at"] is not None:
            return None
        capacity = pool["spec"].get("taskSlotsPerNode") or 1
        slots = task["spec"].get("requiredSlots") or 1
        windows = {n["id"]: self._usable_window(pool, n) for n in self._live_nodes(pool)}
        wanted = (task["spec"].get("affinityInfo") or {}).get("affinityId")
        order = sorted(windows, key=lambda node_id: (_affinity(node_id) != wanted, windows[node_id][0], node_id))
        moments = {earliest} | {w[0] for w in windows.values() if earliest < w[0] < NEVER}
        moments |= {end for spans in busy.values() for _, end, _ in spans if end > earliest}
        for moment in sorted(moments):
            for node_id in order:
                ready, until = windows[node_id]
                spans = busy.setdefault(node_id, [])
                if not ready <= moment < until or _load(spans, moment) + slots > capacity:
                    continue
                outcome = self._outcome(task, node_id)
                end = moment + outcome.seconds
                if any(_load(spans, start) + slots > capacity for start, _, _ in spans if moment < start < end):
                    continue
                spans.append((moment, end, slots))
                plan[id(task)] = {"start": moment, "end": end, "exit_code": outcome.exit_code, "node": node_id,
                                  "outcome": outcome, "slots": slots, "task": task["spec"]["id"]}
                return plan[id(task)]
        return None

    def _task_view(self, job: dict[str, Any], task: dict[str, Any]) -> dict[str, Any]:
        now = self.clock.now()
        spec = task["spec"]
        line = self._schedule().get(id(task))
        view = dict(spec)
        view.update({"url": f"{self.url}/jobs/{job['spec']['id']}/tasks/{spec['id']}", "eTag": task["etag"],
                     "creationTime": self.clock.iso(task["created"]), "lastModified": self.clock.iso(task["created"]),
                     "constraints": spec.get("constraints") or {"maxWallClockTime": "P10675199DT2H48M5.4775807S",
                                                                "retentionTime": "P7D", "maxTaskRetryCount": 0},
                     "requiredSlots": spec.get("requiredSlots", 1)})
        if line is None or now < line["start"]:
            view.update({"state": "active", "stateTransitionTime": self.clock.iso(task["created"]),
                         "executionInfo": {"retryCount": 0, "requeueCount": task.get("requeues", 0)}})
            return view
        node_info = {"affinityId": _affinity(line["node"]), "nodeId": line["node"],
                     "poolId": job["spec"]["poolInfo"]["poolId"],
                     "nodeUrl": f"{self.url}/pools/{job['spec']['poolInfo']['poolId']}/nodes/{line['node']}",
                     "taskRootDirectory": f"workitems/{job['spec']['id']}/job-1/{spec['id']}"}
        execution: dict[str, Any] = {"startTime": self.clock.iso(line["start"]), "retryCount": 0,
                                     "requeueCount": task.get("requeues", 0)}
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
        return self._page(request, self._filtered(request, views), "tasks")

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
        line = self._schedule().get(id(task))
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


def _load(spans: list[tuple[float, float, int]], moment: float) -> int:
    """Slots in use at `moment` on a node with these runs."""
    return sum(slots for start, end, slots in spans if start <= moment < end)


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
