"""JSON Schemas (OpenAPI 3.0 dialect) of the request bodies the services validate and of what the routes answer.

Limits and patterns come from the constants the validators use (pool and job ids, VM sizes, node
counts, wait seconds, page sizes), so a change to a rule changes the document with it. A schema may be
looser than its validator where OpenAPI 3.0 cannot say a rule (a TES input needs `url` unless it has
`content`), never stricter: anything the document calls invalid, the app refuses with a 400.
"""

from __future__ import annotations

import re
from typing import Any

from batchk8s.batch.pool_spec import MAX_NODES, NODE_AGENT_SKU
from batchk8s.settings import BATCH_ID, GALLERY_IMAGE_ID, VM_SIZE, VMSS_NAME
from batchk8s.tes.validation import FILE_TYPES, INT32_MAX, STATES
from batchk8s.vmss import MAX_TARGETS, MAX_WAIT_SECONDS

Schema = dict[str, Any]


def pattern_of(pattern: re.Pattern[str]) -> str:
    """The OpenAPI `pattern` for a validator's regular expression: anchored, because JSON Schema searches
    where batchk8s matches the whole string (`fullmatch`), and case-folded by hand (see `any_case`)."""
    return f"^(?:{any_case(pattern)})$"


def any_case(pattern: re.Pattern[str]) -> str:
    """`pattern` as an ECMA regular expression that matches what it matches: OpenAPI patterns have no
    flags, so an IGNORECASE letter `a` becomes `[aA]` and a class range `a-z` gains `A-Z`."""
    source = pattern.pattern
    if not pattern.flags & re.IGNORECASE:
        return source
    out: list[str] = []
    index, in_class = 0, False
    while index < len(source):
        char = source[index]
        if char == "\\":
            out.append(source[index:index + 2])
            index += 2
            continue
        if in_class:
            if char == "]":
                in_class = False
                out.append(char)
            elif char.isalpha() and source[index + 1:index + 2] == "-" and source[index + 2:index + 3].isalpha():
                low, high = char, source[index + 2]
                out.append(f"{low.lower()}-{high.lower()}{low.upper()}-{high.upper()}")
                index += 3
                continue
            else:
                out.append(char + char.swapcase() if char.isalpha() else char)
        elif char == "[":
            in_class = True
            out.append(char)
            if source[index + 1:index + 2] == "^":
                out.append("^")
                index += 1
        elif char.isascii() and char.isalpha():
            out.append(f"[{char.lower()}{char.upper()}]")
        else:
            out.append(char)
        index += 1
    return "".join(out)


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def string_map(description: str) -> Schema:
    return {"type": "object", "additionalProperties": {"type": "string"}, "description": description}


BATCH_ID_SCHEMA: Schema = {"type": "string", "pattern": pattern_of(BATCH_ID),
                           "description": "1-64 letters, digits, '-' or '_' (Batch ids are case-insensitive)"}
NODE_COUNT: Schema = {"type": "integer", "minimum": 0, "maximum": MAX_NODES}

ERROR: Schema = {
    "type": "object", "required": ["error"], "additionalProperties": False,
    "description": "Bad input lists every offending field at once in `details`, each `{field, message}`; a rule "
                   "reads the same on every route: `must be a whole number from 0 to 1000, not 2.5`, `unknown "
                   "field 'nmae' (did you mean 'name'?)`, `must be 1-64 letters, digits, '-' or '_', not 'a b'`.",
    "properties": {"error": {
        "type": "object", "required": ["code", "message"],
        "properties": {
            "code": {"type": "string", "description": "stable code: InvalidInput, NotFound, PoolExists..., or the "
                                                      "upstream service's code"},
            "message": {"type": "string"},
            "details": {"type": "array", "items": {
                "type": "object", "description": "usually {field, message}: one entry per offending field",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}},
            "upstreamStatus": {"type": "integer", "description": "the status Azure or TES answered (502 only)"},
        },
    }},
}

POOL_CREATE: Schema = {
    "type": "object", "additionalProperties": False,
    "description": "Every field optional; the settings' defaults fill the rest.",
    "properties": {
        "id": BATCH_ID_SCHEMA,
        "vmSize": {"type": "string", "pattern": pattern_of(VM_SIZE), "example": "STANDARD_D2_V3",
                   "description": "Azure VM size, any case; default AZURE_BATCH_VM_SIZE"},
        "dedicatedNodes": {**NODE_COUNT, "description": "default AZURE_BATCH_VM_NODE_COUNT"},
        "spotNodes": {**NODE_COUNT, "description": "spot (low-priority) nodes"},
        "imageId": {"type": "string", "nullable": True, "pattern": pattern_of(GALLERY_IMAGE_ID),
                    "description": "Shared Image Gallery image (version) resource id; null for the marketplace "
                                   "Ubuntu LTS image even when AZURE_BATCH_VM_IMAGE_ID is set"},
        "nodeAgentSkuId": {"type": "string", "nullable": True, "pattern": pattern_of(NODE_AGENT_SKU),
                           "example": "batch.node.ubuntu 24.04"},
        "metadata": string_map("pool metadata items (name -> value)"),
    },
}

POOL_RESIZE: Schema = {
    "type": "object", "additionalProperties": False, "minProperties": 1,
    "description": "dedicatedNodes, spotNodes or both; the one left out keeps its target.",
    "properties": {"dedicatedNodes": NODE_COUNT, "spotNodes": NODE_COUNT},
}

WORKFLOW_RUN: Schema = {
    "type": "object", "additionalProperties": False,
    "properties": {"poolId": {**BATCH_ID_SCHEMA, "description": "default AZURE_BATCH_POOL_ID"},
                   "jobId": {**BATCH_ID_SCHEMA, "description": "default '<workflow>-<UTC yyyymmdd-HHMMSS>'"}},
}

VMSS_ACTION: Schema = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "names": {"type": "array", "minItems": 1, "maxItems": MAX_TARGETS,
                  "items": {"type": "string", "pattern": pattern_of(VMSS_NAME)},
                  "description": "scale sets in AZURE_RES_GROUP_NAME; default AZURE_VMSS_NAME"},
        "dryRun": {"type": "boolean", "default": False},
        "waitSeconds": {"type": "integer", "minimum": 0, "maximum": MAX_WAIT_SECONDS, "default": 0,
                        "description": "wait up to this long for the operations before answering"},
    },
}

EMPTY_BODY: Schema = {"type": "object", "maxProperties": 0, "description": "empty, or {}"}

ABSOLUTE_PATH: Schema = {"type": "string", "pattern": "^/", "description": "absolute path inside the container"}
NON_BLANK: Schema = {"type": "string", "pattern": r"\S"}
TES_FILE_TYPE: Schema = {"type": "string", "enum": list(FILE_TYPES)}

TES_TASK: Schema = {
    "type": "object", "required": ["executors"], "additionalProperties": False,
    "description": "A GA4GH TES 1.1 task. Unknown fields are refused at every level (a typo would be ignored "
                   "by the server), and so are the server's read-only fields (id, state, logs, creation_time). "
                   "An input needs a non-empty url unless it has content; an output whose path has wildcards "
                   "needs path_prefix; the first command element must not be blank.",
    "properties": {
        "name": {"type": "string"},
        "description": {"type": "string"},
        "inputs": {"type": "array", "items": {
            "type": "object", "required": ["path"], "additionalProperties": False,
            "properties": {"name": {"type": "string"}, "description": {"type": "string"}, "url": {"type": "string"},
                           "path": ABSOLUTE_PATH, "type": TES_FILE_TYPE, "content": {"type": "string"},
                           "streamable": {"type": "boolean"}}}},
        "outputs": {"type": "array", "items": {
            "type": "object", "required": ["path", "url"], "additionalProperties": False,
            "properties": {"name": {"type": "string"}, "description": {"type": "string"}, "url": NON_BLANK,
                           "path": ABSOLUTE_PATH, "path_prefix": {"type": "string"}, "type": TES_FILE_TYPE}}},
        "resources": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "cpu_cores": {"type": "integer", "minimum": 1, "maximum": INT32_MAX},
                "preemptible": {"type": "boolean"},
                "ram_gb": {"type": "number", "exclusiveMinimum": True, "minimum": 0},
                "disk_gb": {"type": "number", "exclusiveMinimum": True, "minimum": 0},
                "zones": {"type": "array", "items": {"type": "string"}},
                "backend_parameters": string_map("backend-specific parameters"),
                "backend_parameters_strict": {"type": "boolean"},
            }},
        "executors": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["image", "command"], "additionalProperties": False,
            "properties": {
                "image": NON_BLANK,
                "command": {"type": "array", "minItems": 1, "items": {"type": "string"},
                            "description": "argv; the first element (the program) must not be blank"},
                "workdir": ABSOLUTE_PATH, "stdin": ABSOLUTE_PATH, "stdout": ABSOLUTE_PATH, "stderr": ABSOLUTE_PATH,
                "env": string_map("environment variables"),
                "ignore_error": {"type": "boolean"},
            }}},
        "volumes": {"type": "array", "items": ABSOLUTE_PATH},
        "tags": string_map("free-form tags, listed and filtered with tag_key / tag_value"),
    },
}

# --- responses -------------------------------------------------------------------------------------

HEALTH: Schema = {"type": "object", "required": ["status", "version"],
                  "properties": {"status": {"type": "string", "enum": ["ok"]}, "version": {"type": "string"}}}

CONFIG_REPORT: Schema = {
    "type": "object", "required": ["settings", "problems", "features", "warnings"],
    "properties": {
        "settings": {"type": "object", "description": "every setting by name; secrets masked; an invalid value "
                     "as given (see `invalid`), not its default"},
        "invalid": {"type": "array", "items": {"type": "string"},
                    "description": "settings whose given value failed validation"},
        "problems": {"type": "array", "items": {"type": "object"}},
        "features": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["ready", "missing"],
            "properties": {"ready": {"type": "boolean"}, "missing": {"type": "array"}}}},
        "warnings": {"type": "array", "items": {"type": "string"}},
    },
}

TARGET_REF: Schema = {"type": "object", "required": ["resourceGroup", "name"],
                      "properties": {"resourceGroup": {"type": "string", "nullable": True},
                                     "name": {"type": "string"}}}

TIMER_FIRINGS: Schema = {
    "type": "object", "required": ["schedule", "action", "targets", "timeZone", "firings", "warnings"],
    "properties": {
        "schedule": {"type": "string"}, "action": {"type": "string", "nullable": True},
        "targets": {"type": "array", "items": TARGET_REF},
        "timeZone": {"type": "string"}, "configuredTimeZone": {"type": "string"},
        "firings": {"type": "array", "items": {"type": "object", "required": ["utc", "local"], "properties": {
            "utc": {"type": "string", "format": "date-time"}, "local": {"type": "string", "format": "date-time"}}}},
        "warnings": {"type": "array", "items": {"type": "string"}},
    },
}

SCALE_SET_REPORT: Schema = {
    "type": "object", "required": ["resourceGroup", "name", "outcome", "instances", "warnings"],
    "properties": {
        "resourceGroup": {"type": "string"}, "name": {"type": "string"},
        "action": {"type": "string", "nullable": True},
        "outcome": {"type": "string", "description": "reported (status read), accepted, completed, nothing-to-do, "
                                                     "dry-run, not-found or failed"},
        "instances": {"type": "array", "items": {
            "type": "object", "required": ["instanceId", "powerState"],
            "properties": {"instanceId": {"type": "string"}, "powerState": {"type": "string"},
                           "outcome": {"type": "string"}}}},
        "warnings": {"type": "array", "items": {"type": "string"}},
        "operation": {"type": "object"}, "error": {"type": "object"},
    },
}

VMSS_STATUS: Schema = {"type": "object", "required": ["scaleSets"],
                       "properties": {"scaleSets": {"type": "array", "items": ref("ScaleSetReport")}}}

VMSS_ACTION_RESULT: Schema = {
    "type": "object", "required": ["action", "dryRun", "summary", "targets"],
    "properties": {"action": {"type": "string", "enum": ["start", "deallocate"]}, "dryRun": {"type": "boolean"},
                   "summary": {"type": "object", "additionalProperties": {"type": "integer"},
                               "description": "scale sets per outcome"},
                   "targets": {"type": "array", "items": ref("ScaleSetReport")}},
}

SCHEDULE_WINDOW: Schema = {
    "type": "object", "required": ["from", "to", "hours", "targets", "firings", "holds"],
    "properties": {"from": {"type": "string", "format": "date-time"}, "to": {"type": "string", "format": "date-time"},
                   "hours": {"type": "integer"}, "document": {"type": "object"},
                   "targets": {"type": "array", "items": {"type": "object"}},
                   "firings": {"type": "integer", "description": "firings in the window, all targets"},
                   "holds": {"type": "array", "items": {"type": "object"}}},
}

SCHEDULE_HISTORY: Schema = {
    "type": "object", "required": ["entries", "total"],
    "properties": {"entries": {"type": "array", "items": {"type": "object"}, "description": "newest first"},
                   "total": {"type": "integer"},
                   "requests": {"type": "object", "additionalProperties": {"type": "integer"}}},
}

UPLOAD_REPORT: Schema = {
    "type": "object", "required": ["containers", "counts", "bytes", "blobs"],
    "properties": {
        "root": {"type": "string"}, "containers": {"type": "array", "items": {"type": "string"}},
        "counts": {"type": "object", "properties": {"uploaded": {"type": "integer"}, "unchanged": {"type": "integer"},
                                                    "total": {"type": "integer"}}},
        "bytes": {"type": "object", "properties": {"uploaded": {"type": "integer"}, "total": {"type": "integer"}}},
        "seconds": {"type": "number"},
        "blobs": {"type": "array", "items": {"type": "object", "required": ["container", "name", "status"],
                                             "properties": {"container": {"type": "string"},
                                                            "name": {"type": "string"},
                                                            "status": {"type": "string"},
                                                            "bytes": {"type": "integer"},
                                                            "contentType": {"type": "string"}}}},
    },
}

POOL_STATUS: Schema = {
    "type": "object",
    "required": ["id", "state", "allocationState", "targetDedicatedNodes", "targetSpotNodes", "resizeErrors",
                 "nodeCounts", "nodes", "ready", "failed"],
    "properties": {
        "id": {"type": "string"}, "state": {"type": "string", "nullable": True},
        "allocationState": {"type": "string", "nullable": True}, "vmSize": {"type": "string", "nullable": True},
        "image": {"type": "object", "nullable": True}, "nodeAgentSkuId": {"type": "string", "nullable": True},
        "targetDedicatedNodes": {"type": "integer"}, "targetSpotNodes": {"type": "integer"},
        "currentDedicatedNodes": {"type": "integer", "nullable": True},
        "currentSpotNodes": {"type": "integer", "nullable": True},
        "resizeErrors": {"type": "array", "items": {"type": "object", "properties": {
            "code": {"type": "string", "nullable": True}, "message": {"type": "string", "nullable": True},
            "values": {"type": "object"}}}},
        "nodeCounts": {"type": "object", "additionalProperties": {"type": "integer"}},
        "nodes": {"type": "array", "items": {"type": "object", "required": ["id", "state"], "properties": {
            "id": {"type": "string"}, "state": {"type": "string", "nullable": True},
            "dedicated": {"type": "boolean", "nullable": True}, "ipAddress": {"type": "string", "nullable": True},
            "startTask": {"type": "object", "description": "state, exitCode, retryCount, result, failure and "
                                                           "stderrTail (the end of startup/stderr.txt)"}}}},
        "ready": {"type": "boolean", "description": "allocation steady and every node idle or running"},
        "failed": {"type": "boolean", "description": "a node failed its start task or is unusable, or resize errors"},
        "created": {"type": "boolean", "description": "create only: false when an identical pool was reused"},
        "note": {"type": "string"},
    },
}

DELETING: Schema = {"type": "object", "required": ["id", "state"],
                    "properties": {"id": {"type": "string"}, "state": {"type": "string", "enum": ["deleting"]}}}

WORKFLOWS: Schema = {"type": "object", "required": ["workflows"], "properties": {"workflows": {
    "type": "array", "items": {"type": "object", "required": ["name", "description"],
                               "properties": {"name": {"type": "string"}, "description": {"type": "string"}}}}}}

WORKFLOW_RUN_RESULT: Schema = {
    "type": "object", "required": ["workflow", "jobId", "poolId"],
    "properties": {"workflow": {"type": "string"}, "jobId": {"type": "string"}, "poolId": {"type": "string"},
                   "jobCreated": {"type": "boolean"}, "added": {"type": "integer"}, "existing": {"type": "integer"}},
}

JOB_STATUS: Schema = {
    "type": "object",
    "required": ["id", "taskCounts", "complete", "succeeded", "failedTasks", "blockedTasks", "tasks"],
    "properties": {
        "id": {"type": "string"}, "poolId": {"type": "string", "nullable": True},
        "state": {"type": "string", "nullable": True},
        "taskCounts": {"type": "object", "additionalProperties": {"type": "integer"}},
        "complete": {"type": "boolean"}, "succeeded": {"type": "boolean"},
        "failedTasks": {"type": "array", "items": {"type": "string"}},
        "blockedTasks": {"type": "array", "items": {"type": "string"}},
        "tasks": {"type": "array", "items": {"type": "object", "required": ["id", "state"], "properties": {
            "id": {"type": "string"}, "state": {"type": "string"}, "exitCode": {"type": "integer", "nullable": True},
            "stdoutTail": {"type": "string", "nullable": True}, "stderrTail": {"type": "string", "nullable": True}}}},
    },
}

TES_ACCEPTED: Schema = {"type": "object", "required": ["id", "location"],
                        "properties": {"id": {"type": "string"}, "location": {"type": "string"},
                                       "canceling": {"type": "boolean"},
                                       "state": {"type": "string", "enum": list(STATES),
                                                 "description": "the task's state when the cancel was asked"}}}

TES_TASK_VIEW: Schema = {
    "type": "object", "required": ["id"],
    "description": "the task as TES returns it in the requested view (MINIMAL: id and state)",
    "properties": {"id": {"type": "string"}, "state": {"type": "string", "enum": list(STATES)}},
}

TES_PAGE: Schema = {"type": "object", "required": ["tasks"],
                    "properties": {"tasks": {"type": "array", "items": ref("TesTaskView")},
                                   "next_page_token": {"type": "string"}}}

TES_SERVICE: Schema = {
    "type": "object", "required": ["tesVersion", "apiRoot", "transport", "serviceInfo"],
    "properties": {"tesVersion": {"type": "string", "enum": ["1.0", "1.1"]}, "apiRoot": {"type": "string"},
                   "transport": {"type": "string", "enum": ["direct", "relay"]},
                   "versionFrom": {"type": "string", "description": "where tesVersion was read: service-info or "
                                   "the API path"},
                   "serverFilters": {"type": "boolean", "description": "whether the server applies the list filters "
                                     "itself (TES 1.1); batchk8s applies them otherwise"},
                   "serviceInfo": {"type": "object", "description": "the TES server's service-info document"}},
}

# The TES 1.1 endpoint's own answers (the vendored TES 1.1 document is what the tests hold them to).
TES11_SERVICE_INFO: Schema = {
    "type": "object", "required": ["id", "name", "type", "organization", "version"],
    "description": "GA4GH service-info 1.0 with TES 1.1's additions; `description` and `storage` name the TES "
                   "server behind the gateway",
    "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "description": {"type": "string"},
                   "version": {"type": "string"}, "storage": {"type": "array", "items": {"type": "string"}},
                   "organization": {"type": "object", "required": ["name", "url"],
                                    "properties": {"name": {"type": "string"}, "url": {"type": "string"}}},
                   "type": {"type": "object", "required": ["group", "artifact", "version"],
                            "properties": {"group": {"type": "string"}, "artifact": {"type": "string", "enum": ["tes"]},
                                           "version": {"type": "string"}}}},
}
TES11_CREATED: Schema = {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}
TES11_CANCELED: Schema = {"type": "object", "additionalProperties": False, "properties": {},
                          "description": "an empty object, as TES 1.1 answers a cancel"}

HTML_PAGE: Schema = {"type": "string", "description": "a self-contained HTML document"}

OPENAPI_DOCUMENT: Schema = {"type": "object", "required": ["openapi", "info", "paths"],
                            "properties": {"openapi": {"type": "string"}, "info": {"type": "object"},
                                           "paths": {"type": "object"}}}

COMPONENTS: dict[str, Schema] = {
    "Error": ERROR, "PoolCreate": POOL_CREATE, "PoolResize": POOL_RESIZE, "WorkflowRun": WORKFLOW_RUN,
    "VmssAction": VMSS_ACTION, "EmptyBody": EMPTY_BODY, "TesTask": TES_TASK, "Health": HEALTH,
    "ConfigReport": CONFIG_REPORT, "TimerFirings": TIMER_FIRINGS, "ScaleSetReport": SCALE_SET_REPORT,
    "VmssStatus": VMSS_STATUS, "VmssActionResult": VMSS_ACTION_RESULT, "ScheduleWindow": SCHEDULE_WINDOW,
    "ScheduleHistory": SCHEDULE_HISTORY, "UploadReport": UPLOAD_REPORT, "PoolStatus": POOL_STATUS,
    "Deleting": DELETING, "Workflows": WORKFLOWS, "WorkflowRunResult": WORKFLOW_RUN_RESULT, "JobStatus": JOB_STATUS,
    "TesAccepted": TES_ACCEPTED, "TesTaskView": TES_TASK_VIEW, "TesPage": TES_PAGE, "TesService": TES_SERVICE,
    "OpenApiDocument": OPENAPI_DOCUMENT, "HtmlPage": HTML_PAGE, "Tes11ServiceInfo": TES11_SERVICE_INFO,
    "Tes11Created": TES11_CREATED, "Tes11Canceled": TES11_CANCELED,
}
