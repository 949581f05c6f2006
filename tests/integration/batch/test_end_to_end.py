"""End to end against the fakes and Azurite: pool -> tesk-deploy -> ordered completion -> outputs -> delete,
through the services, the HTTP functions and the command line."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
import requests
from azure.batch import models as m

from batchk8s import storage
from batchk8s.batch import jobs, pool_spec, pools
from batchk8s.batch.polling import Waiter
from batchk8s.errors import ConflictError, NotFoundError
from batchk8s.settings import Settings
from batchk8s.workflows import runs
from tests.app_index import indexed_functions
from tests.fakes.batch import FakeBatch, FakeClock, TaskOutcome

DEPLOY_ORDER = ["apply", "ready", "service"]


def fake_waiter(clock: FakeClock) -> Waiter:
    return Waiter(clock=clock.now, sleep=clock.advance)


@pytest.fixture
def uploaded(settings: Settings, batch: FakeBatch) -> Settings:
    """Artifacts in Azurite (the repository's own scripts, manifests, TES tasks); tasks print their id."""
    storage.upload_artifacts(settings)
    batch.outcome_for = lambda spec: TaskOutcome(seconds=20, stdout=f"{spec['id']} done\n",
                                                 stderr=f"{spec['id']} notes\n")
    return settings


def assert_deploy_completed_in_order(report: dict[str, Any]) -> None:
    assert report["complete"] and report["succeeded"], report
    tasks = {t["id"]: t for t in report["tasks"]}
    assert sorted(tasks) == sorted(DEPLOY_ORDER)
    for before, after in pairwise(DEPLOY_ORDER):
        assert tasks[after]["startTime"] >= tasks[before]["endTime"], (before, after)
        assert tasks[after]["dependsOn"] == [before]
    for task in tasks.values():
        assert (task["state"], task["exitCode"]) == ("completed", 0)
        assert task["stdoutTail"] == f"{task['id']} done\n" and task["stderrTail"] == f"{task['id']} notes\n"


def test_services_end_to_end(uploaded: Settings, batch: FakeBatch, clock: FakeClock):
    settings = uploaded
    status = pools.create_pool(settings, {"dedicatedNodes": 1}, wait=True, waiter=fake_waiter(clock))
    assert status.created and status.ready and status.node_counts == {"idle": 1}
    assert status.node_agent_sku_id == "batch.node.ubuntu 24.04"

    # The start task fetches the bootstrap through a read-only SAS that a plain GET can use, and cannot write with.
    start_task = batch.pools["k8s-pool"]["spec"]["startTask"]
    url = start_task["resourceFiles"][0]["httpUrl"]
    assert requests.get(url, timeout=10).text == Path("scripts/k8s-node-setup.sh").read_text()
    assert requests.put(url, data=b"x", headers={"x-ms-blob-type": "BlockBlob"}, timeout=10).status_code == 403
    assert start_task["userIdentity"] == {"autoUser": {"scope": "pool", "elevationLevel": "admin"}}
    assert start_task["waitForSuccess"] is True and start_task["maxTaskRetryCount"] == 3

    again = pools.create_pool(settings, {"dedicatedNodes": 2})  # same spec: reused, counts are resize's business
    assert not again.created and "resize" in again.note
    with pytest.raises(ConflictError) as conflict:
        pools.create_pool(settings, {"vmSize": "STANDARD_D4_V3"})
    assert [d["field"] for d in conflict.value.details] == ["vmSize"]

    run = runs.run_workflow(settings, "tesk-deploy", {"jobId": "deploy-1"}, wait=True, waiter=fake_waiter(clock))
    assert (run.job_id, run.pool_id, run.job_created, run.added) == ("deploy-1", "k8s-pool", True, 3)
    assert_deploy_completed_in_order(run.status.to_dict())

    # The manifests reach the node through one read-only SAS per manifest blob: nothing container-wide.
    files = batch.jobs["deploy-1"]["tasks"]["apply"]["spec"]["resourceFiles"]
    manifests = sorted(f"tesk/{p.name}" for p in Path("k8sresources/tesk").glob("*.yaml"))
    assert sorted(f["filePath"] for f in files) == manifests and all("storageContainerUrl" not in f for f in files)
    for file in files:
        base, _, sas = file["httpUrl"].partition("?")
        assert base.endswith("/" + file["filePath"]) and "sr=b" in sas and "sp=r&" in sas
        assert requests.get(file["httpUrl"], timeout=10).status_code == 200
        container = base.rsplit("/", 2)[0]
        listing = requests.get(f"{container}?restype=container&comp=list&{sas}", timeout=10)
        assert listing.status_code == 403  # a blob's SAS cannot list, nor read the container's other blobs

    rerun = runs.run_workflow(settings, "tesk-deploy", {"jobId": "deploy-1"})  # repeat: reused, nothing doubled
    assert (rerun.job_created, rerun.added, rerun.existing) == (False, 0, 3)

    assert jobs.delete_job(settings, "deploy-1").state == "deleting"
    assert pools.delete_pool(settings, "k8s-pool", wait=True, waiter=fake_waiter(clock)).state == "deleted"
    with pytest.raises(NotFoundError):
        pools.pool_status(settings, "k8s-pool")


def test_run_on_a_missing_pool_is_404_before_anything_is_created(uploaded: Settings, batch: FakeBatch):
    with pytest.raises(NotFoundError):
        runs.run_workflow(uploaded, "k8s-info", {"poolId": "nowhere", "jobId": "j"})
    assert not batch.jobs


# --- HTTP --------------------------------------------------------------------------------------


def indexed() -> dict[str, Any]:
    return indexed_functions()


def call(function: str, method: str, path: str, body: Any = None, **route: str) -> tuple[int, Any, func.HttpResponse]:
    raw = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
    request = func.HttpRequest(method, f"https://app.example.net{path}", body=raw, headers={}, route_params=route)
    response = indexed()[function].get_user_function()(request)
    return response.status_code, json.loads(response.get_body()), response


@pytest.fixture
def app_env(uploaded: Settings, batch_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from batchk8s import settings as settings_module

    for name, value in batch_env.items():
        monkeypatch.setenv(name, value)
    settings_module.clear_cache()


def test_http_routes_are_indexed_with_function_keys():
    expected = {"pool_create": ("pools", "POST"), "pool_show": ("pools/{id}", "GET"),
                "pool_resize": ("pools/{id}/resize", "POST"), "pool_delete": ("pools/{id}", "DELETE"),
                "workflow_list": ("workflows", "GET"), "workflow_run": ("workflows/{name}/runs", "POST"),
                "job_show": ("jobs/{id}", "GET"), "job_delete": ("jobs/{id}", "DELETE")}
    for name, (route, method) in expected.items():
        trigger = indexed()[name].get_bindings()[0]
        assert trigger.route == route
        assert [str(getattr(m, "value", m)) for m in trigger.methods] == [method]
        assert str(getattr(trigger.auth_level, "value", trigger.auth_level)).lower() == "function"


def test_http_end_to_end(app_env: None, batch: FakeBatch, clock: FakeClock):
    status, body, response = call("pool_create", "POST", "/api/pools", {"dedicatedNodes": 1})
    assert status == 202 and response.headers["Location"] == "https://app.example.net/api/pools/k8s-pool"
    assert body["allocationState"] == "resizing" and body["created"]
    clock.advance(600)
    status, body, _ = call("pool_show", "GET", "/api/pools/k8s-pool", id="k8s-pool")
    assert status == 200 and body["ready"]

    status, body, _ = call("workflow_list", "GET", "/api/workflows")
    assert {"k8s-info", "tesk-deploy", "tesk-verify"} <= {w["name"] for w in body["workflows"]}
    status, body, response = call("workflow_run", "POST", "/api/workflows/tesk-deploy/runs",
                                  {"poolId": "k8s-pool", "jobId": "deploy-http"}, name="tesk-deploy")
    assert status == 202 and response.headers["Location"] == "https://app.example.net/api/jobs/deploy-http"
    status, body, _ = call("job_show", "GET", "/api/jobs/deploy-http", id="deploy-http")
    assert status == 200 and not body["complete"] and body["taskCounts"]["active"] == 2
    clock.advance(120)
    status, body, _ = call("job_show", "GET", "/api/jobs/deploy-http", id="deploy-http")
    assert_deploy_completed_in_order(body)

    status, body, response = call("pool_resize", "POST", "/api/pools/k8s-pool/resize", {"dedicatedNodes": 2},
                                  id="k8s-pool")
    assert status == 202 and body["targetDedicatedNodes"] == 2 and response.headers["Location"].endswith("/k8s-pool")
    assert call("job_delete", "DELETE", "/api/jobs/deploy-http", id="deploy-http")[0] == 202
    assert call("pool_delete", "DELETE", "/api/pools/k8s-pool", id="k8s-pool")[0] == 202
    status, body, _ = call("pool_show", "GET", "/api/pools/k8s-pool", id="k8s-pool")
    assert status == 404 and body["error"]["code"] == "PoolNotFound"


def test_http_bad_input(app_env: None, batch: FakeBatch):
    status, body, _ = call("workflow_run", "POST", "/api/workflows/nope/runs", {}, name="nope")
    assert status == 404 and "tesk-deploy" in body["error"]["message"]
    status, body, _ = call("workflow_run", "POST", "/api/workflows/k8s-info/runs", {"jobId": "no spaces", "x": 1},
                           name="k8s-info")
    assert status == 400 and sorted(d["field"] for d in body["error"]["details"]) == ["jobId", "x"]
    status, body, _ = call("pool_create", "POST", "/api/pools", b"{not json")
    assert status == 400 and body["error"]["details"][0]["field"] == "body"
    status, body, _ = call("pool_create", "POST", "/api/pools", {"dedicatedNodes": "two", "id": "a/b"})
    assert status == 400 and sorted(d["field"] for d in body["error"]["details"]) == ["dedicatedNodes", "id"]
    status, body, _ = call("pool_resize", "POST", "/api/pools/k8s-pool/resize", {"dedicatedNodes": 5000},
                           id="k8s-pool")
    assert status == 400 and body["error"]["details"][0]["field"] == "dedicatedNodes"
    status, body, _ = call("job_show", "GET", "/api/jobs/bad%20id", id="bad id")
    assert status == 400 and body["error"]["details"][0]["field"] == "jobId"
    assert not batch.pools and not batch.jobs  # nothing half-done


def test_http_seed_failure_cases(app_env: None, batch: FakeBatch, clock: FakeClock, sdk: Any):
    """Pool exists (reused, or 409 naming what differs), job exists (reused, or 409), start task failed."""
    stderr = "preflight: [ERROR Port-6443]: Port 6443 is in use\n"
    batch.start_task = TaskOutcome(seconds=30, exit_code=1, stderr=stderr)
    batch.inject(method="POST", path=r"^/pools$", status=429, times=1)  # throttled, without Retry-After
    status, body, response = call("pool_create", "POST", "/api/pools", {"dedicatedNodes": 1})
    assert status == 202 and body["created"] and response.headers["Location"].endswith("/api/pools/k8s-pool")
    assert batch.count("POST", r"^/pools$") == 2

    status, body, _ = call("pool_create", "POST", "/api/pools", {"dedicatedNodes": 1})
    assert status == 202 and body["created"] is False
    status, body, _ = call("pool_create", "POST", "/api/pools", {"vmSize": "STANDARD_D8S_V5", "metadata": {"a": "b"}})
    assert status == 409 and body["error"]["code"] == "PoolExistsWithDifferentSpec"
    assert sorted(d["field"] for d in body["error"]["details"]) == ["metadata", "vmSize"]

    clock.advance(600)
    status, body, _ = call("pool_show", "GET", "/api/pools/k8s-pool", id="k8s-pool")
    node = body["nodes"][0]
    assert status == 200 and body["failed"] and not body["ready"] and body["nodeCounts"] == {"starttaskfailed": 1}
    assert (node["startTask"]["exitCode"], node["startTask"]["failure"]["code"]) == (1, "FailureExitCode")
    assert node["startTask"]["stderrTail"] == stderr

    vm = m.VirtualMachineConfiguration(image_reference=m.BatchVmImageReference(**pool_spec.MARKETPLACE_IMAGE),
                                       node_agent_sku_id="batch.node.ubuntu 24.04")
    sdk.create_pool(m.BatchPoolCreateOptions(id="other", vm_size="standard_d2_v3", virtual_machine_configuration=vm))
    sdk.create_job(m.BatchJobCreateOptions(id="elsewhere", pool_info=m.BatchPoolInfo(pool_id="other")))
    status, body, _ = call("workflow_run", "POST", "/api/workflows/k8s-info/runs", {"jobId": "elsewhere"},
                           name="k8s-info")
    assert status == 409 and body["error"]["code"] == "JobExistsWithDifferentSpec"
    assert sorted(d["field"] for d in body["error"]["details"]) == ["poolId", "usesTaskDependencies"]
    assert not batch.jobs["elsewhere"]["tasks"]  # nothing added to someone else's job
    first = call("workflow_run", "POST", "/api/workflows/k8s-info/runs", {"jobId": "info"}, name="k8s-info")
    again = call("workflow_run", "POST", "/api/workflows/k8s-info/runs", {"jobId": "info"}, name="k8s-info")
    assert (first[0], first[1]["jobCreated"], first[1]["added"]) == (202, True, 3)
    assert (again[0], again[1]["jobCreated"], again[1]["added"], again[1]["existing"]) == (202, False, 0, 3)


# --- CLI ---------------------------------------------------------------------------------------


def test_cli_end_to_end(uploaded: Settings, batch_env: dict[str, str], batch: FakeBatch, clock: FakeClock,
                        tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from batchk8s.cli import main

    settings_file = tmp_path / "local.settings.json"
    settings_file.write_text(json.dumps({"Values": batch_env}))
    clock.set_speed(2000)  # --wait reads Batch on the wall clock: let service time run fast

    def run(*argv: str) -> tuple[int, str, str]:
        code = main([*argv, "--settings", str(settings_file)])
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = run("pool", "create", "--dedicated", "1", "--wait", "--timeout", "60")
    assert code == 0 and "created pool k8s-pool" in out and "idle=1" in out
    code, out, _ = run("workflow", "run", "tesk-deploy", "--job", "deploy-cli", "--wait", "--timeout", "60")
    assert code == 0 and "job deploy-cli: succeeded" in out
    assert out.index("apply: completed") < out.index("ready: completed") < out.index("service: completed")
    assert "stdout| service done" in out
    code, out, _ = run("job", "show", "deploy-cli", "--json")
    assert code == 0 and json.loads(out)["succeeded"]
    code, out, err = run("workflow", "run", "nope")
    assert code == 2 and "known workflows" in err
    code, out, err = run("pool", "create", "--dedicated", "5000")
    assert code == 2 and "--dedicated" in err
    assert run("job", "delete", "deploy-cli")[0] == 0
    code, out, _ = run("pool", "delete", "--wait", "--timeout", "60")
    assert code == 0 and "deleted" in out


def test_cli_reports_a_failed_start_task_with_exit_3(uploaded: Settings, batch_env: dict[str, str],
                                                      batch: FakeBatch, clock: FakeClock, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]):
    from batchk8s.cli import main

    batch.start_task = TaskOutcome(seconds=30, exit_code=1, stderr="kubeadm init failed: port 6443 in use\n")
    settings_file = tmp_path / "local.settings.json"
    settings_file.write_text(json.dumps({"Values": batch_env}))
    clock.set_speed(2000)
    code = main(["pool", "create", "--wait", "--timeout", "60", "--settings", str(settings_file)])
    out = capsys.readouterr().out
    assert code == 3
    assert "starttaskfailed" in out and "stderr| kubeadm init failed: port 6443 in use" in out


def test_get_pool_warns_before_the_start_task_sas_expires(app_env: None, batch: FakeBatch, clock: FakeClock,
                                                          monkeypatch: pytest.MonkeyPatch):
    """GET /api/pools/{id}: the expiry of the SAS in the start task, and the warning once it is near."""
    from batchk8s import settings as settings_module

    monkeypatch.setenv("AZURE_STORAGE_SAS_EXPIRY_HOURS", "24")
    settings_module.clear_cache()
    assert call("pool_create", "POST", "/api/pools", {"dedicatedNodes": 1})[0] == 202
    status, body, _ = call("pool_show", "GET", "/api/pools/k8s-pool", id="k8s-pool")
    assert status == 200 and body["startTaskSasExpiry"].endswith("Z")
    [warning] = body["warnings"]
    assert warning["code"] == "StartTaskSasExpiring" and body["startTaskSasExpiry"] in warning["message"]
    assert "sig=" not in json.dumps(body)
