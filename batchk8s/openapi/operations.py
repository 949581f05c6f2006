"""Every HTTP route as an operation: method, route, parameters, body and the statuses it answers.

Written once here, next to the schemas; tests/unit/test_openapi.py holds it to the functions the host
indexes (route, method, auth level, operation id = function name, path parameters), and schemathesis
holds it to what the handlers actually answer. Error statuses follow the error model: 400 bad input,
404 unknown resource, 409 conflicting state, 413 body over 1 MiB, 502/504 Azure or TES failed or too
slow, 503 the app's own settings are incomplete, 500 only for a defect (logged, no details).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from batchk8s.openapi.schemas import pattern_of
from batchk8s.schedules.service import MAX_HISTORY, MAX_HOURS, MAX_VIEW_DAYS
from batchk8s.settings import BATCH_ID, VMSS_ACTIONS
from batchk8s.tes.client import MAX_PAGE_SIZE, TASK_ID
from batchk8s.tes.samples import sample_names
from batchk8s.tes.validation import STATES, VIEWS
from batchk8s.workflows import workflows

UPSTREAM = (500, 502, 503, 504)  # anything that reaches Azure or TES
LOCAL = (500,)  # answered from the app alone


@dataclass(frozen=True)
class Operation:
    """One route and method. `ok` is its success status; 202 means a long operation with `Location`."""

    name: str
    method: str
    route: str
    tag: str
    summary: str
    ok: int = 200
    also_ok: tuple[int, ...] = ()
    result: str | None = None
    media: str = "application/json"
    errors: tuple[int, ...] = UPSTREAM
    parameters: tuple[dict[str, Any], ...] = ()
    body: str | None = None
    body_required: bool = False
    anonymous: bool = False
    gateway: bool = False  # the TES 1.1 endpoint: the host lets it through, the handler checks engine credentials
    description: str = ""
    location: str = ""
    links: dict[str, dict[str, Any]] = field(default_factory=dict)
    successor: str = ""  # set on an old route kept for one release: the path that replaces it

    @property
    def path(self) -> str:
        return "/api/" + self.route


def renamed(operation: Operation, old_name: str, old_route: str) -> Operation:
    """The same operation under the name and route it had before a rename, answering for one release."""
    return replace(operation, name=old_name, route=old_route, successor=operation.path, links={})


def workflow_names() -> list[str]:
    return [workflow.name for workflow in workflows()]


def path(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


def query(name: str, schema: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    """An optional query parameter; `?name=` with no value means the same as leaving it out."""
    return {"name": name, "in": "query", "required": False, "allowEmptyValue": True, "schema": schema,
            "description": description, **extra}


def whole(low: int, high: int, default: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": low, "maximum": high, "default": default}


def repeated(description: str) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string"}, "description": description}


POOL_ID = path("id", {"type": "string", "pattern": pattern_of(BATCH_ID)}, "pool id")
JOB_ID = path("id", {"type": "string", "pattern": pattern_of(BATCH_ID)}, "job id")
TES_ID = path("id", {"type": "string", "pattern": pattern_of(TASK_ID)}, "TES task id")
VIEW = query("view", {"type": "string", "enum": list(VIEWS)},
             "how much of each task TES returns (default MINIMAL: id and state); case-insensitive")


VMSS_TIMER = Operation("vmss_timer", "get", "vmss/timer", "Scale sets", "The next firings of VmssTriggerSchedule "
                       "(the vmss_schedule timer), in UTC and the configured zone", result="TimerFirings",
                       errors=(400, 500, 503), parameters=(query("count", whole(1, 100, 5), "how many firings"),))


def pool_link(operation: str, **extra: Any) -> dict[str, Any]:
    return {"operationId": operation, "parameters": {"id": "$response.body#/id"}, **extra}


def tes_link(operation: str) -> dict[str, Any]:
    return {"operationId": operation, "parameters": {"id": "$response.body#/id"}}


TES_LIST_PARAMETERS = (query("name_prefix", {"type": "string"}, "tasks whose name starts with this"),
                       query("state", {"type": "string", "enum": list(STATES)}, "tasks in this state; "
                             "case-insensitive"),
                       query("tag_key", {**repeated("tag names"), "items": {"type": "string", "minLength": 1}},
                             "tasks with this tag (repeatable)", style="form", explode=True,
                             allowEmptyValue=False),
                       query("tag_value", repeated("tag values"), "the value of the tag_key at the same "
                             "position (repeatable; a missing one matches any value)", style="form",
                             explode=True),
                       query("page_size", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
                             "tasks per page (the server's default when absent)"),
                       query("page_token", {"type": "string"}, "next_page_token of the previous page"),
                       VIEW)

GATEWAY_ROOT = "ga4gh/tes/v1"
GATEWAY_DESCRIPTION = ("TES 1.1 as the GA4GH specification says, for workflow engines: authenticated with a "
                       "gateway token (`Authorization: Bearer`) or basic credentials, not a function key.")


def gateway_operations() -> tuple[Operation, ...]:
    """The TES 1.1 endpoint (docs/tes-gateway.md): the spec's paths, answers and operation semantics."""
    view = query("view", {"type": "string", "enum": list(VIEWS)}, "MINIMAL (default: id and state), BASIC or FULL")
    return (
        Operation("tes_gateway_service_info", "get", f"{GATEWAY_ROOT}/service-info", "TES 1.1", "Service-info of "
                  "the gateway (TES 1.1), naming the TES server behind it", result="Tes11ServiceInfo", gateway=True,
                  description=GATEWAY_DESCRIPTION),
        Operation("tes_gateway_create", "post", f"{GATEWAY_ROOT}/tasks", "TES 1.1", "Create a task",
                  result="Tes11Created",
                  errors=(400, 413, *UPSTREAM), body="TesTask", body_required=True, gateway=True,
                  description="Every problem in the task is reported at once (400, each with its JSON path) and "
                              "nothing is sent to TES; `azureblob://` inputs become read-only SAS URLs.",
                  links={"GetTask": tes_link("tes_gateway_get"), "CancelTask": tes_link("tes_gateway_cancel")}),
        Operation("tes_gateway_list", "get", f"{GATEWAY_ROOT}/tasks", "TES 1.1", "List tasks", result="TesPage",
                  errors=(400, *UPSTREAM), parameters=TES_LIST_PARAMETERS, gateway=True,
                  description="Filters TESK ignores are applied by batchk8s: a page can then hold fewer tasks than "
                              "page_size and still carry a next_page_token."),
        Operation("tes_gateway_get", "get", GATEWAY_ROOT + "/tasks/{id}", "TES 1.1", "One task", result="TesTaskView",
                  errors=(400, 404, *UPSTREAM), parameters=(TES_ID, view), gateway=True),
        Operation("tes_gateway_cancel", "post", GATEWAY_ROOT + "/tasks/{id}:cancel", "TES 1.1", "Cancel a task",
                  result="Tes11Canceled", errors=(400, 404, *UPSTREAM), parameters=(TES_ID,), gateway=True,
                  description="`{}` once the cancel is sent, and also when the task was already CANCELED or had "
                              "ended otherwise (nothing is left to cancel; GET says how it ended)."),
    )


def operations() -> tuple[Operation, ...]:
    """Every operation, built per call: workflows registered after import and the bundled samples show up."""
    return (
        Operation("health", "get", "health", "App", "Liveness: answers without a key and says nothing about the "
                  "configuration", result="Health", errors=(), anonymous=True),
        Operation("openapi", "get", "openapi.json", "App", "This document", result="OpenApiDocument", errors=LOCAL,
                  description="Needs a function key like every route but health: it names no secret, but it maps "
                              "every operation the app offers. `python -m batchk8s openapi` prints the same document "
                              "without a deployed app."),
        Operation("config", "get", "config", "App", "The settings report: secrets masked, problems, feature readiness",
                  result="ConfigReport", errors=LOCAL),
        VMSS_TIMER,
        renamed(VMSS_TIMER, "schedule", "schedule"),
        Operation("vmss_status", "get", "vmss", "Scale sets", "Power state per scale set and instance",
                  result="VmssStatus", errors=(400, 404, 409, *UPSTREAM),
                  parameters=(query("name", repeated("scale sets (repeat, or comma-separate); default AZURE_VMSS_NAME"),
                                    "scale sets to read", style="form", explode=True),)),
        Operation("vmss_action", "post", "vmss/{action}", "Scale sets", "Start or deallocate scale sets",
                  ok=202, also_ok=(200,), result="VmssActionResult", errors=(400, 404, 409, 413, *UPSTREAM),
                  body="VmssAction",
                  parameters=(path("action", {"type": "string", "enum": list(VMSS_ACTIONS)}, "what to do"),),
                  location="/api/vmss?name=...",
                  description="202 while operations run (poll `Location`, the power-state read, until every "
                              "instance is in the wanted state); 200 when nothing is left to run (dry run, already "
                              "in state, or finished within `waitSeconds`)."),
        Operation("schedules", "get", "schedules", "Scheduling", "Every firing of the schedule document in the next "
                  "hours, per target", result="ScheduleWindow", errors=(400, *UPSTREAM),
                  parameters=(query("hours", whole(1, MAX_HOURS, 24), "window length in hours"),)),
        Operation("schedules_history", "get", "schedules/history", "Scheduling", "What the reconciler applied, "
                  "skipped or failed, newest first", result="ScheduleHistory", errors=(400, *UPSTREAM),
                  parameters=(query("limit", whole(1, MAX_HISTORY, 100), "most entries returned"),)),
        Operation("schedules_view", "get", "schedules/view", "Scheduling", "The schedule document's timeline: "
                  "planned actions, holds and recorded outcomes on one self-contained HTML page",
                  result="HtmlPage", media="text/html", errors=(400, *UPSTREAM),
                  description="Served under a strict Content-Security-Policy (no script, no external resource); "
                              "with no document configured the page says so, still 200.",
                  parameters=(query("days", whole(1, MAX_VIEW_DAYS, 7), "days shown"),
                              query("tz", {"type": "string"}, "IANA zone whose nights and weekends are shaded "
                                    "(default UTC)"),
                              query("after", {"type": "string"}, "ISO 8601 start of the window (default now)"))),
        Operation("artifacts_upload", "post", "artifacts/upload", "Artifacts", "Upload the deployed scripts, manifests "
                  "and TES samples to their containers", result="UploadReport", errors=(400, 413, *UPSTREAM),
                  body="EmptyBody"),
        Operation("pool_create", "post", "pools", "Pools", "Create the Kubernetes pool, or reuse an identical one",
                  ok=202, result="PoolStatus", errors=(400, 409, 413, *UPSTREAM), body="PoolCreate",
                  location="/api/pools/{id}",
                  description="409 PoolExistsWithDifferentSpec (one detail per differing field) when a pool of that id "
                              "exists with another spec; `created: false` when an identical one was reused.",
                  links={"GetPool": pool_link("pool_show"), "ResizePool": pool_link("pool_resize"),
                         "DeletePool": pool_link("pool_delete")}),
        Operation("pool_show", "get", "pools/{id}", "Pools", "Allocation state, resize errors and every node's start "
                  "task", result="PoolStatus", errors=(400, 404, *UPSTREAM), parameters=(POOL_ID,)),
        Operation("pool_resize", "post", "pools/{id}/resize", "Pools", "Change the node counts", ok=202,
                  result="PoolStatus", errors=(400, 404, 409, 413, *UPSTREAM), body="PoolResize", body_required=True,
                  parameters=(POOL_ID,), location="/api/pools/{id}",
                  links={"GetPool": pool_link("pool_show"), "DeletePool": pool_link("pool_delete")}),
        Operation("pool_delete", "delete", "pools/{id}", "Pools", "Delete the pool", ok=202, result="Deleting",
                  errors=(400, 404, 409, *UPSTREAM), parameters=(POOL_ID,), location="/api/pools/{id}",
                  description="Poll `Location` until it answers 404."),
        Operation("workflow_list", "get", "workflows", "Workflows", "The registered workflows", result="Workflows",
                  errors=LOCAL),
        Operation("workflow_run", "post", "workflows/{name}/runs", "Workflows", "Run a workflow as a Batch job on "
                  "the pool", ok=202, result="WorkflowRunResult", errors=(400, 404, 409, 413, *UPSTREAM),
                  body="WorkflowRun", parameters=(path("name", {"type": "string", "enum": workflow_names()},
                                                         "a registered workflow (GET /api/workflows)"),),
                  location="/api/jobs/{jobId}",
                  description="404 for an unknown workflow or pool; 409 JobExistsWithDifferentSpec when the job exists "
                              "on another pool.",
                  links={"GetJob": {"operationId": "job_show", "parameters": {"id": "$response.body#/jobId"}}}),
        Operation("job_show", "get", "jobs/{id}", "Workflows", "Every task's state, exit code and output tails",
                  result="JobStatus", errors=(400, 404, *UPSTREAM), parameters=(JOB_ID,),
                  description="Done when `complete` is true; `succeeded` says how."),
        Operation("job_delete", "delete", "jobs/{id}", "Workflows", "Delete the job and its tasks", ok=202,
                  result="Deleting", errors=(400, 404, 409, *UPSTREAM), parameters=(JOB_ID,),
                  location="/api/jobs/{id}"),
        Operation("tes_create", "post", "tes/tasks", "TES", "Submit a TES task (the body, or a bundled sample)",
                  ok=202, result="TesAccepted", errors=(400, 413, *UPSTREAM), body="TesTask",
                  parameters=(query("sample", {"type": "string", "enum": sample_names()},
                                    "submit this bundled sample instead of a body", allowEmptyValue=False),),
                  location="/api/tes/tasks/{id}",
                  description="Every problem in the task is reported at once, with its JSON path, before anything "
                              "is sent.",
                  links={"GetTask": tes_link("tes_get"), "CancelTask": tes_link("tes_cancel")}),
        Operation("tes_get", "get", "tes/tasks/{id}", "TES", "One TES task", result="TesTaskView",
                  errors=(400, 404, *UPSTREAM), parameters=(TES_ID, VIEW),
                  description="Done when `state` is COMPLETE, EXECUTOR_ERROR, SYSTEM_ERROR, CANCELED or PREEMPTED."),
        Operation("tes_list", "get", "tes/tasks", "TES", "One page of TES tasks", result="TesPage",
                  errors=(400, *UPSTREAM),
                  parameters=TES_LIST_PARAMETERS),
        Operation("tes_cancel", "post", "tes/tasks/{id}/cancel", "TES", "Cancel a TES task", ok=202, also_ok=(200,),
                  result="TesAccepted", errors=(400, 404, 409, *UPSTREAM), parameters=(TES_ID,),
                  location="/api/tes/tasks/{id}",
                  description="202: the cancel was sent; poll `Location` until the state is CANCELED. 200: the task "
                              "was already CANCELED (or CANCELING), nothing was sent. 409 TaskAlreadyEnded: it "
                              "ended otherwise, and the error names its final state."),
        Operation("tes_service_info", "get", "tes/service-info", "TES", "The TES server's service-info, its API root "
                  "and transport", result="TesService", errors=UPSTREAM),
        *gateway_operations(),
    )

STATUS_TEXT = {200: "OK", 202: "Accepted: poll the Location header", 400: "Bad input: `details` names each field",
               401: "No valid function key (answered by the Functions host, no body)",
               404: "Not found", 409: "Conflicting state", 413: "Body over 1 MiB",
               500: "Unexpected internal error (logged; no details returned)",
               502: "Azure or TES refused or failed: `code` and `upstreamStatus` say what it answered",
               503: "The app's settings are incomplete for this operation: `details` names the settings",
               504: "Azure or TES did not answer in time"}
