"""Typed pool and job results: built from the Batch SDK's models, `to_dict()` is the API's JSON key for key
(names, order, keys present only when something was read), and the command line's text is built from fields."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

from azure.batch import models as m

from batchk8s.batch import pools
from batchk8s.batch.jobs import summarize
from batchk8s.batch.reports import Deletion, JobReport, NodeStatus, TaskResult
from batchk8s.commands.batch import _deletion_output, _job_output, _pool_output
from batchk8s.errors import EXIT_UPSTREAM
from batchk8s.workflows.runs import WorkflowRun

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)  # 22 hours before the start task's SAS expires
SAS = ("https://acct.blob.core.windows.net/apps/k8s-node-setup.sh?se=2026-01-06T10%3A00%3A00Z&sp=r&sv=2024-08-04"
       "&sr=b&sig=abc")


def batch_pool() -> m.BatchPool:
    """A pool as the data plane returns it: short of its target after a quota error, one SAS in its start task."""
    return m.BatchPool({
        "id": "p1", "state": "active", "allocationState": "steady", "vmSize": "standard_d2_v3",
        "virtualMachineConfiguration": {"imageReference": {"publisher": "canonical", "offer": "ubuntu-24_04-lts",
                                                           "sku": "server", "version": "latest"},
                                        "nodeAgentSKUId": "batch.node.ubuntu 24.04"},
        "taskSlotsPerNode": 4, "targetDedicatedNodes": 3, "targetLowPriorityNodes": 1,
        "currentDedicatedNodes": 2, "currentLowPriorityNodes": 0,
        "resizeErrors": [{"code": "AccountCoreQuotaReached", "message": "quota reached",
                          "values": [{"name": "CoreQuota", "value": "4"}]}],
        "startTask": {"commandLine": "/bin/bash -c x", "resourceFiles": [{"httpUrl": SAS, "filePath": "setup.sh"}],
                      "environmentSettings": [{"name": "K8S_VERSION", "value": "1.31"}]}})


def batch_nodes() -> list[m.BatchNode]:
    return [
        m.BatchNode({"id": "n-ok", "state": "idle", "isDedicated": True, "ipAddress": "10.0.0.4",
                     "startTaskInfo": {"state": "completed", "exitCode": 0, "retryCount": 0, "result": "success"}}),
        m.BatchNode({"id": "n-bad", "state": "starttaskfailed", "isDedicated": True, "ipAddress": "10.0.0.5",
                     "startTaskInfo": {"state": "completed", "exitCode": 1, "retryCount": 3, "result": "failure",
                                       "failureInfo": {"category": "userError", "code": "FailureExitCode",
                                                       "message": "exit code 1"}}}),
        m.BatchNode({"id": "n-new", "state": "creating", "isDedicated": False}),
    ]


def batch_tasks() -> list[m.BatchTask]:
    """Listed out of order: `later` waits on `b`, which failed; `run` is still running."""
    return [
        m.BatchTask({"id": "later", "state": "active", "dependsOn": {"taskIds": ["b"]}}),
        m.BatchTask({"id": "b", "state": "completed", "dependsOn": {"taskIds": ["a"]},
                     "executionInfo": {"startTime": "2026-01-05T10:01:00Z", "endTime": "2026-01-05T10:02:00Z",
                                       "exitCode": 2, "result": "failure", "retryCount": 1, "requeueCount": 0,
                                       "failureInfo": {"category": "userError", "code": "FailureExitCode",
                                                       "message": "exit 2"}},
                     "nodeInfo": {"nodeId": "n-ok"}}),
        m.BatchTask({"id": "a", "state": "completed",
                     "executionInfo": {"startTime": "2026-01-05T10:00:00Z", "endTime": "2026-01-05T10:00:30Z",
                                       "exitCode": 0, "result": "success", "retryCount": 0, "requeueCount": 0},
                     "nodeInfo": {"nodeId": "n-ok"}}),
        m.BatchTask({"id": "run", "state": "running",
                     "executionInfo": {"startTime": "2026-01-05T10:03:00Z", "retryCount": 0, "requeueCount": 0},
                     "nodeInfo": {"nodeId": "n-ok"}}),
    ]


def with_stderr(nodes: list[NodeStatus], node_id: str, tail: str | None) -> list[NodeStatus]:
    """The nodes as `_with_stderr` leaves them when only `node_id`'s tail was read."""
    return [dataclasses.replace(n, start_task=dataclasses.replace(n.start_task, stderr_tail=tail, stderr_read=True))
            if n.id == node_id else n for n in nodes]


def pool_status(**changes: object):
    nodes = with_stderr([NodeStatus.from_model(n) for n in batch_nodes()], "n-bad", "preflight\nfailed\n")
    return dataclasses.replace(pools.status_of(batch_pool(), nodes, NOW), **changes)


POOL_JSON = {
    "id": "p1", "state": "active", "allocationState": "steady", "vmSize": "standard_d2_v3",
    "image": {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"},
    "nodeAgentSkuId": "batch.node.ubuntu 24.04", "taskSlotsPerNode": 4,
    "targetDedicatedNodes": 3, "targetSpotNodes": 1, "currentDedicatedNodes": 2, "currentSpotNodes": 0,
    "resizeErrors": [{"code": "AccountCoreQuotaReached", "message": "quota reached", "values": {"CoreQuota": "4"}}],
    "nodeCounts": {"idle": 1, "starttaskfailed": 1, "creating": 1},
    "nodes": [
        {"id": "n-ok", "state": "idle", "class": "ready", "dedicated": True, "ipAddress": "10.0.0.4",
         "startTask": {"state": "completed", "exitCode": 0, "retryCount": 0, "result": "success"}},
        {"id": "n-bad", "state": "starttaskfailed", "class": "failed", "dedicated": True, "ipAddress": "10.0.0.5",
         "startTask": {"state": "completed", "exitCode": 1, "retryCount": 3, "result": "failure",
                       "failure": {"category": "usererror", "code": "FailureExitCode", "message": "exit code 1"},
                       "stderrTail": "preflight\nfailed\n"}},
        {"id": "n-new", "state": "creating", "class": "transitional", "dedicated": False, "ipAddress": None},
    ],
    "ready": False, "settled": False, "failed": True,
    "reason": "waiting: 1 creating (its VM was obtained and is joining the pool); resize errors: "
              "AccountCoreQuotaReached; 1 starttaskfailed (the start task failed after its retries)",
    "nodeClasses": {"ready": 1, "transitional": 1, "failed": 1, "gone": 0},
    "startTaskSasExpiry": "2026-01-06T10:00:00Z",
    "warnings": [{"code": "StartTaskSasExpiring",
                  "message": "the SAS URLs in pool p1's start task expires at 2026-01-06T10:00:00Z: a node allocated "
                             "or rebooted after that cannot download its bootstrap (or join an auto cluster); create "
                             "the pool again with the same spec or resize it to renew them"}],
}


def test_a_pool_status_is_the_api_json_key_for_key_in_order():
    status = pool_status()
    body = status.to_dict()
    assert body == POOL_JSON
    assert list(body) == list(POOL_JSON)  # HTTP and --json print keys in this order
    assert [list(node) for node in body["nodes"]] == [list(node) for node in POOL_JSON["nodes"]]
    assert (status.ready, status.failed, status.node_counts["creating"]) == (False, True, 1)
    assert status.nodes[1].start_task.failure.code == "FailureExitCode"
    assert json.loads(json.dumps(body)) == body  # nothing that JSON would turn into a string


def test_a_stderr_tail_not_read_is_absent_and_one_read_empty_is_null():
    nodes = [NodeStatus.from_model(n) for n in batch_nodes()]
    unread = pools.status_of(batch_pool(), nodes, NOW).to_dict()
    assert all("stderrTail" not in n.get("startTask", {}) for n in unread["nodes"])
    empty = pools.status_of(batch_pool(), with_stderr(nodes, "n-ok", None), NOW).to_dict()
    assert empty["nodes"][0]["startTask"]["stderrTail"] is None


def test_a_create_adds_created_and_a_reuse_note_last():
    assert list(pool_status(created=True).to_dict())[-2:] == ["warnings", "created"]
    reused = pool_status(created=False, note="reused the existing pool").to_dict()
    assert list(reused)[-3:] == ["warnings", "created", "note"]
    assert (reused["created"], reused["note"]) == (False, "reused the existing pool")


def test_sas_far_from_expiry_or_absent_is_not_a_warning():
    pool = batch_pool()
    far = pools.status_of(pool, [], datetime(2026, 1, 3, tzinfo=UTC))
    assert far.warnings == [] and far.to_dict()["startTaskSasExpiry"] == "2026-01-06T10:00:00Z"
    pool.start_task = None
    assert pools.status_of(pool, [], NOW).to_dict()["startTaskSasExpiry"] is None
    past = pools.status_of(batch_pool(), [], datetime(2026, 1, 7, tzinfo=UTC)).warnings
    assert "start task expired at 2026-01-06T10:00:00Z" in past[0]["message"]


def test_the_pool_text_is_built_from_the_fields():
    output = _pool_output(pool_status(), "", waited=False)
    assert output.text.splitlines() == [
        "pool p1: active, allocation steady, dedicated 2/3, spot 0/1; nodes: creating=1, idle=1, starttaskfailed=1",
        "  resize error AccountCoreQuotaReached: quota reached",
        "  n-ok: idle, start task completed (exit 0)",
        "  n-bad: starttaskfailed, start task completed (exit 1): FailureExitCode exit code 1",
        "    stderr| preflight",
        "    stderr| failed",
        "  n-new: creating",
        "warning: " + POOL_JSON["warnings"][0]["message"],  # the SAS expires within 48 h
        POOL_JSON["reason"],
    ]
    assert output.data == POOL_JSON and output.exit_code == 0  # a look, not a wait
    waited = _pool_output(pool_status(created=False, note="resize it"), "reused pool p1", waited=True)
    assert waited.text.splitlines()[0] == "reused pool p1" and waited.text.splitlines()[-2:] == [
        "note: resize it", POOL_JSON["reason"]]
    assert waited.exit_code == EXIT_UPSTREAM  # waited, and the pool failed


def job_report() -> JobReport:
    report = summarize("j1", "p1", "active", [TaskResult.from_model(t) for t in batch_tasks()])
    report.tasks[1].stdout_tail, report.tasks[1].stderr_tail, report.tasks[1].outputs_read = "b out\n", None, True
    return report


JOB_JSON = {
    "id": "j1", "poolId": "p1", "state": "active", "taskCounts": {"completed": 2, "running": 1, "active": 1},
    "complete": False, "succeeded": False, "failedTasks": ["b"], "blockedTasks": ["later"],
    "tasks": [
        {"id": "a", "state": "completed", "dependsOn": [], "exitCode": 0, "result": "success",
         "startTime": "2026-01-05T10:00:00+00:00", "endTime": "2026-01-05T10:00:30+00:00", "retryCount": 0,
         "nodeId": "n-ok"},
        {"id": "b", "state": "completed", "dependsOn": ["a"], "exitCode": 2, "result": "failure",
         "startTime": "2026-01-05T10:01:00+00:00", "endTime": "2026-01-05T10:02:00+00:00", "retryCount": 1,
         "failure": {"category": "usererror", "code": "FailureExitCode", "message": "exit 2"}, "nodeId": "n-ok",
         "stdoutTail": "b out\n", "stderrTail": None},
        {"id": "run", "state": "running", "dependsOn": [], "exitCode": None, "result": None,
         "startTime": "2026-01-05T10:03:00+00:00", "endTime": None, "retryCount": 0, "nodeId": "n-ok"},
        {"id": "later", "state": "active", "dependsOn": ["b"], "blocked": True},
    ],
}


def test_a_job_report_is_the_api_json_key_for_key_in_order():
    body = job_report().to_dict()
    assert body == JOB_JSON
    assert list(body) == list(JOB_JSON)
    assert [list(task) for task in body["tasks"]] == [list(task) for task in JOB_JSON["tasks"]]
    stalled = dataclasses.replace(job_report(), stalled="pool p1 cannot run the 1 waiting task(s)").to_dict()
    assert list(stalled)[-1] == "stalled" and stalled["stalled"] == "pool p1 cannot run the 1 waiting task(s)"


def test_the_job_text_is_built_from_the_fields():
    output = _job_output(job_report())
    assert output.text.splitlines() == [
        "job j1: in progress; tasks: active=1, completed=2, running=1",
        "  a: completed, exit 0",
        "  b: completed, exit 2 (FailureExitCode)",
        "    stdout| b out",
        "  run: running",
        "  later: blocked (a dependency failed)",
    ]
    assert output.data == JOB_JSON and output.exit_code == 0  # still running: not a failure yet
    stalled = _job_output(dataclasses.replace(job_report(), stalled="job j1 is disabled"))
    assert stalled.text.splitlines()[-1] == "stalled: job j1 is disabled" and stalled.exit_code == EXIT_UPSTREAM
    done = summarize("j2", None, None, [TaskResult.from_model(batch_tasks()[2])])
    assert _job_output(done).text == "job j2: succeeded; tasks: completed=1\n  a: completed, exit 0"
    assert _job_output(done).exit_code == 0


def test_a_workflow_run_and_a_deletion_keep_their_json():
    run = WorkflowRun("k8s-info", "p1", "info-1", True, ["cluster-info", "pods"], added=2, existing=0,
                      resubmitted=0, affinity_id=None)
    assert list(run.to_dict().items()) == [
        ("workflow", "k8s-info"), ("poolId", "p1"), ("jobId", "info-1"), ("jobCreated", True),
        ("tasks", ["cluster-info", "pods"]), ("added", 2), ("existing", 0), ("resubmitted", 0), ("affinityId", None)]
    waited = dataclasses.replace(run, status=job_report()).to_dict()
    assert list(waited)[-1] == "status" and waited["status"] == JOB_JSON
    output = _deletion_output("pool", Deletion("p1", "deleting"))
    assert (output.data, output.text) == ({"id": "p1", "state": "deleting"}, "pool p1: deleting")
