"""Pure builders of workflows: the registry, task specs and options, the plan's pool and workflow sections."""

from __future__ import annotations

import shlex
from datetime import UTC, datetime

import pytest

from batchk8s.batch.tasks import TaskSpec, bash_command, check_task_specs, to_task_options
from batchk8s.errors import InputError, NotFoundError
from batchk8s.settings import load_settings
from batchk8s.workflows import get_workflow, register, unregister, workflows
from batchk8s.workflows._shell import NO_KUBECONFIG_EXIT
from batchk8s.workflows.runs import planned_run, run_target


def test_builtin_workflows_chain_the_steps_that_depend_on_each_other():
    settings = load_settings({"TESK_NODEPORT": "30080"})
    names = {w.name for w in workflows()}
    assert {"k8s-info", "tesk-deploy", "tesk-verify"} <= names
    deploy = get_workflow("tesk-deploy").build(settings, run_target(settings, "tesk-deploy", {})[1])
    assert [(t.id, t.depends_on) for t in deploy] == [("apply", ()), ("ready", ("apply",)), ("service", ("ready",))]
    assert deploy[0].resource_files[0].container == settings.k8s_container
    assert deploy[1].environment["TESK_NODEPORT"] == "30080"
    verify = get_workflow("tesk-verify").build(settings, run_target(settings, "tesk-verify", {})[1])
    assert [(t.id, t.depends_on) for t in verify] == [("pods", ()), ("hello", ("pods",))]
    for task in deploy + verify:
        assert shlex.split(task.command_line)[:2] == ["/bin/bash", "-c"]


def test_unknown_workflow_lists_the_known_ones():
    with pytest.raises(NotFoundError) as caught:
        get_workflow("nope")
    assert "k8s-info" in caught.value.message and "tesk-deploy" in caught.value.message


def test_registering_a_workflow_from_code():
    @register("unit-echo", "echo a value passed through the environment")
    def echo(settings: object, context: object) -> list[TaskSpec]:
        return [TaskSpec("echo", bash_command('echo "$VALUE"'), environment={"VALUE": "a'b; rm -rf /"})]

    try:
        assert get_workflow("unit-echo").description.startswith("echo")
        with pytest.raises(ValueError):
            register("unit-echo", "another")(lambda s, c: [])
        run = planned_run(load_settings({}), "unit-echo", {"jobId": "j"})
        task = run["tasks"][0]
        assert shlex.split(task["commandLine"]) == ["/bin/bash", "-c", 'echo "$VALUE"']
        assert task["environmentSettings"] == [{"name": "VALUE", "value": "a'b; rm -rf /"}]
        assert run["job"]["usesTaskDependencies"] is True
    finally:
        unregister("unit-echo")


def test_task_specs_are_checked():
    with pytest.raises(InputError) as caught:
        check_task_specs([TaskSpec("a", "x"), TaskSpec("A", "x"), TaskSpec("b", "x", depends_on=("c",)),
                          TaskSpec("bad id", "x")])
    assert sorted(d["field"] for d in caught.value.details) == ["tasks.A", "tasks.b.dependsOn", "tasks.bad id"]


def test_task_options_keep_dependencies_and_constraints():
    options = to_task_options(TaskSpec("b", "cmd", depends_on=("a",), max_wall_clock_seconds=90,
                                       max_task_retry_count=2), lambda c: f"https://s/{c}?sig=x").as_dict()
    assert options["dependsOn"] == {"taskIds": ["a"]}
    assert options["constraints"]["maxTaskRetryCount"] == 2
    assert options["userIdentity"] == {"autoUser": {"scope": "pool", "elevationLevel": "admin"}}


def test_plan_shows_pool_job_and_tasks_offline():
    from batchk8s.plan import SECTIONS
    from batchk8s.plan.batch import pool_section, workflows_section

    assert {pool_section, workflows_section} <= set(SECTIONS)
    settings = load_settings({})
    sections = {"batch pool": pool_section(settings), "workflows": workflows_section(
        settings, now=datetime(2026, 1, 1, tzinfo=UTC))}
    pool = sections["batch pool"]
    assert pool.data["id"] == "k8s-pool"
    assert "placeholder" in pool.data["startTask"]["resourceFiles"][0]["httpUrl"]
    runs_ = {run["workflow"]: run for run in sections["workflows"].data}
    deploy = runs_["tesk-deploy"]
    assert deploy["job"]["id"] == "tesk-deploy-20260101-000000"
    assert [t["id"] for t in deploy["tasks"]] == ["apply", "ready", "service"]
    [manifests] = deploy["tasks"][0]["resourceFiles"]
    assert "placeholder" in manifests["httpUrl"] and "each blob under" in manifests["httpUrl"]
    assert "storageContainerUrl" not in manifests


def test_affinity_goes_only_to_tasks_that_need_the_control_plane():
    from azure.batch import models as m

    affinity = m.BatchAffinityInfo(affinity_id="TVM:tvmps_abc")
    kubectl = to_task_options(TaskSpec("pods", "cmd"), str, affinity).as_dict()
    anywhere = to_task_options(TaskSpec("df", "cmd", control_plane=False), str, affinity).as_dict()
    assert kubectl["affinityInfo"] == {"affinityId": "TVM:tvmps_abc"} and "affinityInfo" not in anywhere
    assert "affinityInfo" not in to_task_options(TaskSpec("pods", "cmd"), str).as_dict()


def test_plan_marks_control_plane_affinity_on_auto_pools():
    from batchk8s.plan.batch import workflows_section

    settings = load_settings({"K8S_NODE_ROLE": "auto"})
    run = planned_run(settings, "k8s-info", {"jobId": "j"})
    assert all("k8s-k8s-pool/control-plane.json" in t["affinityInfo"]["affinityId"] for t in run["tasks"])
    assert all("affinityInfo" not in t for t in planned_run(load_settings({}), "k8s-info", {"jobId": "j"})["tasks"])
    lines = workflows_section(settings, now=datetime(2026, 1, 1, tzinfo=UTC)).lines
    assert any(line.strip().startswith("pods") and "control-plane node" in line for line in lines)


@pytest.mark.parametrize(("role", "admin_conf", "exit_code", "message"), [
    ("control-plane\n", True, 0, ""),
    ("worker\n", False, NO_KUBECONFIG_EXIT, "node tvmps_w is a Kubernetes worker: only the control-plane node"),
    (None, False, NO_KUBECONFIG_EXIT, "node tvmps_w has no readable kubeconfig at "),
])
def test_task_prelude_on_each_kind_of_node(tmp_path, role, admin_conf, exit_code, message):
    import subprocess

    from batchk8s.workflows._shell import script

    k8s = tmp_path / "shared" / "k8s"
    k8s.mkdir(parents=True)
    if role:
        (k8s / "node-role").write_text(role)
    if admin_conf:
        (k8s / "admin.conf").write_text("kind: Config\n")
    command = shlex.split(bash_command(script('echo "using $KUBECONFIG"')))
    done = subprocess.run(command, capture_output=True, text=True, timeout=10,
                          env={"PATH": "/usr/bin:/bin", "AZ_BATCH_NODE_SHARED_DIR": str(tmp_path / "shared"),
                               "AZ_BATCH_NODE_ID": "tvmps_w"})
    assert done.returncode == exit_code and message in done.stderr
    assert (done.stdout == f"using {k8s}/admin.conf\n") == (exit_code == 0)


IDENTITY = ("/subscriptions/5ca1ab1e-0000-4000-8000-00000000c0de/resourceGroups/ids/providers/"
            "Microsoft.ManagedIdentity/userAssignedIdentities/k8s-nodes")


def test_plan_of_an_identity_pool_names_the_identity_and_issues_no_sas():
    from batchk8s.plan.batch import pool_section

    settings = load_settings({"K8S_NODE_ROLE": "auto", "AZURE_BATCH_POOL_IDENTITY_ID": IDENTITY,
                              "AZURE_BATCH_POOL_IDENTITY_CLIENT_ID": "0b1d2c3e-4f50-4a61-8b72-93a4b5c6d7e8"})
    section = pool_section(settings)
    assert any(line.strip().startswith(f"identity {IDENTITY}: created through the management plane")
               for line in section.lines)
    assert "SAS" not in section.data["startTask"]["resourceFiles"][0]["httpUrl"]
    env = {e["name"]: e["value"] for e in section.data["startTask"]["environmentSettings"]}
    assert env["K8S_STORAGE_CLIENT_ID"] == "0b1d2c3e-4f50-4a61-8b72-93a4b5c6d7e8" and "K8S_CLUSTER_SAS_URL" not in env
    deploy = planned_run(settings, "tesk-deploy", None, datetime(2026, 1, 1, tzinfo=UTC))
    [manifests] = deploy["tasks"][0]["resourceFiles"]
    assert "read with the pool identity" in manifests["httpUrl"] and manifests["identityReference"] == {
        "resourceId": IDENTITY}


@pytest.mark.parametrize(("env", "warned"), [
    ({"AzureWebJobsStorage": "UseDevelopmentStorage=true"}, True),
    ({"AzureWebJobsStorage": "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
                             "BlobEndpoint=http://localhost:10000/devstoreaccount1;"}, True),
    ({"AzureWebJobsStorage": "UseDevelopmentStorage=true", "AZURE_BATCH_POOL_IDENTITY_ID": IDENTITY,
      "AZURE_BATCH_POOL_IDENTITY_CLIENT_ID": "0b1d2c3e-4f50-4a61-8b72-93a4b5c6d7e8"}, True),
    ({"AzureWebJobsStorage": "DefaultEndpointsProtocol=https;AccountName=hpcstore;AccountKey=a2V5;"
                             "EndpointSuffix=core.windows.net"}, False),
])
def test_plan_warns_when_the_bootstrap_url_is_on_a_local_emulator(env: dict[str, str], warned: bool):
    from batchk8s.plan.batch import pool_section

    section = pool_section(load_settings(env))
    url = section.data["startTask"]["resourceFiles"][0]["httpUrl"]
    warnings = [line for line in section.lines if line.startswith("WARNING")]
    if warned:
        assert warnings == [f"WARNING {url.split('?')[0]} is on a local storage emulator (Azurite, "
                            "UseDevelopmentStorage=true) that no Batch node can reach: set AZURE_STORAGE_ACCOUNT_NAME "
                            "or AzureWebJobsStorage to a real storage account before creating the pool"]
    else:
        assert warnings == [] and url.startswith("https://hpcstore.blob.core.windows.net/")


@pytest.mark.parametrize(("url", "local"), [
    ("http://127.0.0.1:10000/devstoreaccount1/apps/x.sh", True), ("http://127.8.0.1/a", True),
    ("http://localhost:10000/a", True), ("http://azurite.localhost/a", True), ("http://[::1]:10000/a", True),
    ("https://hpcstore.blob.core.windows.net/apps/x.sh?sig=1", False), ("http://10.0.0.4:10000/a", False),
    ("http://localhost.example.com/a", False), ("<placeholder: a read-only SAS URL>", False),
])
def test_only_urls_naming_this_machine_count_as_local(url: str, local: bool):
    from batchk8s.plan.batch import emulator_warnings, on_this_machine

    assert on_this_machine(url) is local
    assert bool(emulator_warnings([url, url])) is local
