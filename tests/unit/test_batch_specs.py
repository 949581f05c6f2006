"""Pure builders: the pool spec, request validation, node agent SKU resolution, spec comparison, workflows."""

from __future__ import annotations

import shlex
from datetime import UTC, datetime

import pytest

from batchk8s.batch import pools
from batchk8s.batch.tasks import TaskSpec, bash_command, check_task_specs, to_task_options
from batchk8s.errors import ConfigError, InputError, NotFoundError
from batchk8s.settings import load_settings
from batchk8s.workflows import get_workflow, register, unregister, workflows
from batchk8s.workflows._shell import NO_KUBECONFIG_EXIT
from batchk8s.workflows.runs import planned_run, run_target

GALLERY = ("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Compute/"
           "galleries/g/images/k8s/versions/1.0.0")
UBUNTU = {"nodeAgentSKUId": "batch.node.ubuntu 24.04", "osType": "linux",
          "imageReference": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server"}}


def spec_for(env: dict[str, str], **kwargs: object) -> dict:
    settings = load_settings(env)
    built = pools.build_pool_spec(settings, kwargs.pop("overrides", None), start_task_url="https://s/apps/x.sh?sig=1",
                                  node_agent_sku="batch.node.ubuntu 24.04", **kwargs)
    return built.as_dict()


def test_marketplace_pool_spec_with_admin_start_task():
    spec = spec_for({"AZURE_BATCH_VM_NODE_COUNT": "2", "K8S_VERSION": "1.33"})
    vm = spec["virtualMachineConfiguration"]
    assert vm["imageReference"] == pools.MARKETPLACE_IMAGE
    assert (spec["targetDedicatedNodes"], spec["targetLowPriorityNodes"], spec["vmSize"]) == (2, 0, "STANDARD_D2_V3")
    start = spec["startTask"]
    assert shlex.split(start["commandLine"])[:2] == ["/bin/bash", "-c"]
    assert start["userIdentity"] == {"autoUser": {"scope": "pool", "elevationLevel": "admin"}}
    assert (start["waitForSuccess"], start["maxTaskRetryCount"]) == (True, pools.START_TASK_RETRIES)
    assert start["resourceFiles"] == [{"httpUrl": "https://s/apps/x.sh?sig=1", "filePath": "k8s-node-setup.sh",
                                       "fileMode": "0755"}]
    assert {e["name"]: e["value"] for e in start["environmentSettings"]} == {"K8S_VERSION": "1.33",
                                                                             "K8S_NODE_ROLE": "single"}
    assert "userAccounts" not in spec and "containerConfiguration" not in vm


def test_gallery_image_registry_login_user_and_auto_role():
    spec = spec_for({"AZURE_BATCH_VM_IMAGE_ID": GALLERY, "AZURE_ACR_NAME": "myacr", "AZURE_ACR_USER": "u",
                     "AZURE_ACR_USER_PWD": "registry-secret", "BATCH_USER_NAME": "ops", "BATCH_USER_PWD": "pw-secret",
                     "K8S_NODE_ROLE": "auto"}, cluster_sas_url="https://s/k8s-k8s-pool?sig=2")
    vm = spec["virtualMachineConfiguration"]
    assert vm["imageReference"] == {"virtualMachineImageId": GALLERY}
    assert vm["containerConfiguration"]["containerRegistries"][0]["registryServer"] == "myacr.azurecr.io"
    assert spec["userAccounts"][0]["name"] == "ops" and spec["enableInterNodeCommunication"] is True
    env = {e["name"]: e["value"] for e in spec["startTask"]["environmentSettings"]}
    assert env["K8S_CLUSTER_SAS_URL"] == "https://s/k8s-k8s-pool?sig=2"
    shown = pools.redacted(spec)
    assert "registry-secret" not in str(shown) and "pw-secret" not in str(shown) and "sig=" not in str(shown)


def test_auto_role_without_cluster_url_is_a_config_error():
    with pytest.raises(ConfigError):
        spec_for({"K8S_NODE_ROLE": "auto"})


def test_login_user_needs_both_settings():
    assert "userAccounts" not in spec_for({"BATCH_USER_NAME": "ops"})


def test_overrides_are_validated_all_at_once():
    settings = load_settings({})
    with pytest.raises(InputError) as caught:
        pools.pool_request(settings, {"id": "x" * 65, "vmSize": "D2", "dedicatedNodes": True, "spotNodes": 1001,
                                      "imageId": "/subscriptions/s/images/i", "metadata": {"": "x"},
                                      "nodeAgentSkuId": "centos"})
    assert sorted(d["field"] for d in caught.value.details) == sorted(
        ["id", "vmSize", "dedicatedNodes", "spotNodes", "imageId", "metadata", "nodeAgentSkuId"])
    ok = pools.pool_request(settings, {"id": "My_Pool-1", "dedicatedNodes": 0, "spotNodes": 1000, "imageId": GALLERY})
    assert (ok.id, ok.dedicated_nodes, ok.spot_nodes, ok.image_id) == ("My_Pool-1", 0, 1000, GALLERY)


def test_node_agent_sku_resolution():
    marketplace = pools.pool_request(load_settings({}), {})
    windows = {"nodeAgentSKUId": "batch.node.windows amd64", "osType": "windows", "imageReference": {}}
    retired = dict(UBUNTU, batchSupportEndOfLife="2020-01-01T00:00:00Z")
    assert pools.resolve_node_agent_sku([windows, UBUNTU], marketplace) == "batch.node.ubuntu 24.04"
    with pytest.raises(ConfigError) as none_fits:
        pools.resolve_node_agent_sku([windows, retired], marketplace)
    assert "canonical/ubuntu-24_04-lts/server" in none_fits.value.message
    chosen = pools.pool_request(load_settings({}), {"imageId": GALLERY, "nodeAgentSkuId": "batch.node.ubuntu 22.04"})
    with pytest.raises(InputError) as unsupported:
        pools.resolve_node_agent_sku([UBUNTU], chosen)
    assert unsupported.value.details[0]["field"] == "nodeAgentSkuId"


def test_spec_comparison_ignores_sas_and_counts_but_not_the_image():
    one = spec_for({})
    other = spec_for({"AZURE_BATCH_VM_NODE_COUNT": "5"})
    other["startTask"]["resourceFiles"][0]["httpUrl"] = "https://s/apps/x.sh?sig=different"
    assert pools.spec_differences(one, other) == []
    changed = spec_for({"AZURE_BATCH_VM_IMAGE_ID": GALLERY, "K8S_VERSION": "1.32"})
    fields = [d["field"] for d in pools.spec_differences(one, changed)]
    assert fields == ["imageReference", "startTask.environmentSettings"]


def test_a_pool_bootstrapped_by_another_command_line_is_not_the_same_pool():
    """A pool made by an older bootstrap (its start task runs another command) must not be reused silently."""
    requested = spec_for({})
    existing = spec_for({})
    existing["startTask"]["commandLine"] = "/bin/bash -c 'bash k8s-node-setup.sh'"

    [difference] = pools.spec_differences(requested, existing)

    assert difference["field"] == "startTask.commandLine"
    assert (difference["existing"], difference["requested"]) == ("/bin/bash -c 'bash k8s-node-setup.sh'",
                                                                  pools.start_task_command())


@pytest.mark.parametrize(("pool_id", "container"), [("k8s-pool", "k8s-k8s-pool"), ("My_Pool", "k8s-my-pool"),
                                                    ("A" * 64, "k8s-" + "a" * 59)])
def test_cluster_container_names_are_valid(pool_id: str, container: str):
    assert pools.cluster_container(pool_id) == container


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


def test_auto_pools_get_task_slots_and_compare_them():
    auto = spec_for({"K8S_NODE_ROLE": "auto"}, cluster_sas_url="https://s/k8s-k8s-pool?sig=2")
    assert auto["taskSlotsPerNode"] == pools.AUTO_TASK_SLOTS and spec_for({})["taskSlotsPerNode"] == 1
    existing = dict(auto, taskSlotsPerNode=1)
    assert [d["field"] for d in pools.spec_differences(auto, existing)] == ["taskSlotsPerNode"]


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


def test_plan_of_a_sas_auto_pool_shows_each_narrow_url():
    planned = pools.planned_pool(load_settings({"K8S_NODE_ROLE": "auto"}))
    env = {e["name"]: e["value"] for e in planned["startTask"]["environmentSettings"]}
    assert "read-only SAS for container k8s-k8s-pool" in env["K8S_CLUSTER_SAS_URL"]
    assert env["K8S_CLUSTER_CLAIM_URL"] == "<placeholder: 'c' SAS for k8s-k8s-pool/control-plane.lock>"
    assert "'cw' SAS for k8s-k8s-pool/join-command" in env["K8S_CLUSTER_JOIN_URL"]
@pytest.mark.parametrize(("identifier", "architecture", "expected"), [
    (("canonical", "ubuntu-24_04-lts", "server"), "x64", "batch.node.ubuntu 24.04"),
    (("contoso", "0001-com-ubuntu-server-jammy", "22_04-lts-gen2"), "x64", "batch.node.ubuntu 22.04"),
    (("contoso", "ubuntu-hpc", "2204"), "Arm64", "batch.node.ubuntu 22.04 arm64"),
    (("contoso", "almalinux-hpc", "9-gen2"), "x64", "batch.node.el 9"),
    (("contoso", "debian-12", "gen2"), None, "batch.node.debian 12"),
])
def test_a_gallery_definition_names_its_node_agent_sku(identifier: tuple[str, str, str], architecture: str | None,
                                                        expected: str):
    from batchk8s.batch.gallery import ImageDefinition

    supported = [UBUNTU] + [{"nodeAgentSKUId": sku, "osType": "linux", "imageReference": {}} for sku in (
        "batch.node.ubuntu 22.04", "batch.node.ubuntu 22.04 arm64", "batch.node.el 9", "batch.node.debian 12")]
    definition = ImageDefinition("/id", "Linux", *identifier, architecture)
    request = pools.pool_request(load_settings({}), {"imageId": GALLERY})

    assert pools.resolve_node_agent_sku(supported, request, definition) == expected


def test_a_gallery_definition_the_account_cannot_run_is_refused():
    from batchk8s.batch.gallery import ImageDefinition

    request = pools.pool_request(load_settings({}), {"imageId": GALLERY})
    for definition in (ImageDefinition("/id", "Windows", "MicrosoftWindowsServer", "WindowsServer", "2022"),
                       ImageDefinition("/id", "Linux", "contoso", "ubuntu-hpc", "20.04"),  # not in the list
                       ImageDefinition("/id", "Linux", "SUSE", "sles", "15")):
        with pytest.raises(InputError) as refused:
            pools.resolve_node_agent_sku([UBUNTU], request, definition)
        assert refused.value.details[0]["field"] == "AZURE_BATCH_VM_IMAGE_ID"


def test_what_makes_two_pools_the_same():
    """Case-insensitive names, URLs without their SAS, registries and users by name; node counts left out."""
    existing = {
        "id": "k8s-pool", "vmSize": "Standard_D4_V3", "targetDedicatedNodes": 3,
        "virtualMachineConfiguration": {
            "imageReference": {"publisher": "Canonical", "offer": "UBUNTU-24_04-lts", "sku": "Server",
                               "version": "Latest", "exactVersion": "24.04.202501010"},
            "nodeAgentSKUId": "Batch.Node.Ubuntu 24.04",
            "containerConfiguration": {"containerRegistries": [
                {"registryServer": "Zeta.azurecr.io", "username": "u"}, {"registryServer": "alpha.azurecr.io"}]}},
        "startTask": {
            "commandLine": "/bin/bash -c 'X'",
            "environmentSettings": [{"name": "K8S_CLUSTER_SAS_URL", "value": "https://s/c?sv=1&sig=2"},
                                    {"name": "K8S_VERSION", "value": "1.33"}, {"name": "EMPTY"}],
            "resourceFiles": [{"httpUrl": "https://s/apps/z.sh?sig=1#x", "filePath": "z.sh"},
                              {"httpUrl": "https://s/apps/a.sh", "filePath": "a.sh"}],
            "userIdentity": {"autoUser": {"scope": "pool", "elevationLevel": "admin"}},
            "maxTaskRetryCount": 3, "waitForSuccess": True},
        "userAccounts": [{"name": "zed", "password": "p"}, {"name": "amy", "elevationLevel": "Admin"}],
        "metadata": [{"name": "created-by", "value": "batchk8s"}, {"name": "owner"}],
    }
    assert pools.comparable(existing) == {
        "vmSize": "standard_d4_v3",
        "imageReference": {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"},
        "nodeAgentSKUId": "batch.node.ubuntu 24.04",
        "containerRegistries": ["alpha.azurecr.io", "zeta.azurecr.io"],
        "startTask.commandLine": "/bin/bash -c 'X'",
        "startTask.environmentSettings": {"K8S_CLUSTER_SAS_URL": "https://s/c", "K8S_VERSION": "1.33",
                                          "EMPTY": None},
        "startTask.resourceFiles": [("https://s/apps/a.sh", "a.sh", None), ("https://s/apps/z.sh", "z.sh", None)],
        "startTask.userIdentity": {"autoUser": {"scope": "pool", "elevationLevel": "admin"}},
        "startTask.maxTaskRetryCount": 3,
        "startTask.waitForSuccess": True,
        "taskSlotsPerNode": 1,
        "identity": [],
        "userAccounts": [("amy", "admin"), ("zed", "nonadmin")],
        "metadata": {"created-by": "batchk8s", "owner": None},
    }
    assert pools.comparable({"virtualMachineConfiguration": {"imageReference": {
        "virtualMachineImageId": GALLERY, "version": ""}}, "taskSlotsPerNode": 4})["imageReference"] == {
        "virtualMachineImageId": GALLERY.lower()}  # empty values are left out
    assert pools.comparable({}) == {
        "vmSize": None, "imageReference": {}, "nodeAgentSKUId": None, "containerRegistries": [],
        "startTask.commandLine": None, "startTask.environmentSettings": {}, "startTask.resourceFiles": [],
        "startTask.userIdentity": None, "startTask.maxTaskRetryCount": None, "startTask.waitForSuccess": None,
        "taskSlotsPerNode": 1, "identity": [], "userAccounts": [], "metadata": {}}


def test_each_difference_says_what_exists_and_what_was_asked():
    differences = pools.spec_differences({"vmSize": "STANDARD_D2_V3", "taskSlotsPerNode": 4},
                                         {"vmSize": "standard_d4_v3"})
    assert differences == [
        {"field": "vmSize", "message": "existing 'standard_d4_v3', requested 'standard_d2_v3'",
         "existing": "standard_d4_v3", "requested": "standard_d2_v3"},
        {"field": "taskSlotsPerNode", "message": "existing 1, requested 4", "existing": 1, "requested": 4},
    ]


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
