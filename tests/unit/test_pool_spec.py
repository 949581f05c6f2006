"""Pool-spec builders without a client: the create request, request validation, node agent SKU
resolution and what makes two pools the same (batchk8s/batch/pool_spec.py)."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from batchk8s.batch import pool_spec
from batchk8s.errors import ConfigError, InputError
from batchk8s.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]

GALLERY = ("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Compute/"
           "galleries/g/images/k8s/versions/1.0.0")
UBUNTU = {"nodeAgentSKUId": "batch.node.ubuntu 24.04", "osType": "linux",
          "imageReference": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server"}}


def spec_for(env: dict[str, str], **kwargs: object) -> dict:
    settings = load_settings(env)
    built = pool_spec.build_pool_spec(settings, kwargs.pop("overrides", None), start_task_url="https://s/apps/x.sh?sig=1",
                                      node_agent_sku="batch.node.ubuntu 24.04", **kwargs)
    return built.as_dict()


def test_marketplace_pool_spec_with_admin_start_task():
    spec = spec_for({"AZURE_BATCH_VM_NODE_COUNT": "2", "K8S_VERSION": "1.33"})
    vm = spec["virtualMachineConfiguration"]
    assert vm["imageReference"] == pool_spec.MARKETPLACE_IMAGE
    assert (spec["targetDedicatedNodes"], spec["targetLowPriorityNodes"], spec["vmSize"]) == (2, 0, "STANDARD_D2_V3")
    start = spec["startTask"]
    assert shlex.split(start["commandLine"])[:2] == ["/bin/bash", "-c"]
    assert start["userIdentity"] == {"autoUser": {"scope": "pool", "elevationLevel": "admin"}}
    assert (start["waitForSuccess"], start["maxTaskRetryCount"]) == (True, pool_spec.START_TASK_RETRIES)
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
    shown = pool_spec.redacted(spec)
    assert "registry-secret" not in str(shown) and "pw-secret" not in str(shown) and "sig=" not in str(shown)


def test_auto_role_without_cluster_url_is_a_config_error():
    with pytest.raises(ConfigError):
        spec_for({"K8S_NODE_ROLE": "auto"})


def test_login_user_needs_both_settings():
    assert "userAccounts" not in spec_for({"BATCH_USER_NAME": "ops"})


def test_overrides_are_validated_all_at_once():
    settings = load_settings({})
    with pytest.raises(InputError) as caught:
        pool_spec.pool_request(settings, {"id": "x" * 65, "vmSize": "D2", "dedicatedNodes": True, "spotNodes": 1001,
                                      "imageId": "/subscriptions/s/images/i", "metadata": {"": "x"},
                                      "nodeAgentSkuId": "centos"})
    assert sorted(d["field"] for d in caught.value.details) == sorted(
        ["id", "vmSize", "dedicatedNodes", "spotNodes", "imageId", "metadata", "nodeAgentSkuId"])
    ok = pool_spec.pool_request(settings, {"id": "My_Pool-1", "dedicatedNodes": 0, "spotNodes": 1000,
                                           "imageId": GALLERY})
    assert (ok.id, ok.dedicated_nodes, ok.spot_nodes, ok.image_id) == ("My_Pool-1", 0, 1000, GALLERY)


def test_pool_and_resize_requests_speak_the_toolkits_one_wording():
    with pytest.raises(InputError) as pool:
        pool_spec.pool_request(load_settings({}), {"vmsize": "STANDARD_D2_V3", "dedicatedNodes": 2.5, "id": "a b"})
    with pytest.raises(InputError) as resize:
        pool_spec.resize_request({"spotnodes": 1, "dedicatedNodes": "3"})

    assert pool.value.details == [
        {"field": "vmsize", "message": "unknown field 'vmsize' (did you mean 'vmSize'?)"},
        {"field": "id", "message": "must be 1-64 letters, digits, '-' or '_', not 'a b'"},
        {"field": "dedicatedNodes", "message": "must be a whole number from 0 to 1000, not 2.5"},
    ]
    assert resize.value.details == [
        {"field": "spotnodes", "message": "unknown field 'spotnodes' (did you mean 'spotNodes'?)"},
        {"field": "dedicatedNodes", "message": "must be a whole number from 0 to 1000, not a string"},
    ]


def test_node_agent_sku_resolution():
    marketplace = pool_spec.pool_request(load_settings({}), {})
    windows = {"nodeAgentSKUId": "batch.node.windows amd64", "osType": "windows", "imageReference": {}}
    retired = dict(UBUNTU, batchSupportEndOfLife="2020-01-01T00:00:00Z")
    assert pool_spec.resolve_node_agent_sku([windows, UBUNTU], marketplace) == "batch.node.ubuntu 24.04"
    with pytest.raises(ConfigError) as none_fits:
        pool_spec.resolve_node_agent_sku([windows, retired], marketplace)
    assert "canonical/ubuntu-24_04-lts/server" in none_fits.value.message
    chosen = pool_spec.pool_request(load_settings({}), {"imageId": GALLERY,
                                                        "nodeAgentSkuId": "batch.node.ubuntu 22.04"})
    with pytest.raises(InputError) as unsupported:
        pool_spec.resolve_node_agent_sku([UBUNTU], chosen)
    assert unsupported.value.details[0]["field"] == "nodeAgentSkuId"


def test_spec_comparison_ignores_sas_and_counts_but_not_the_image():
    one = spec_for({})
    other = spec_for({"AZURE_BATCH_VM_NODE_COUNT": "5"})
    other["startTask"]["resourceFiles"][0]["httpUrl"] = "https://s/apps/x.sh?sig=different"
    assert pool_spec.spec_differences(one, other) == []
    changed = spec_for({"AZURE_BATCH_VM_IMAGE_ID": GALLERY, "K8S_VERSION": "1.32"})
    fields = [d["field"] for d in pool_spec.spec_differences(one, changed)]
    assert fields == ["imageReference", "startTask.environmentSettings"]


def test_a_pool_bootstrapped_by_another_command_line_is_not_the_same_pool():
    """A pool made by an older bootstrap (its start task runs another command) must not be reused silently."""
    requested = spec_for({})
    existing = spec_for({})
    existing["startTask"]["commandLine"] = "/bin/bash -c 'bash k8s-node-setup.sh'"

    [difference] = pool_spec.spec_differences(requested, existing)

    assert difference["field"] == "startTask.commandLine"
    assert (difference["existing"], difference["requested"]) == ("/bin/bash -c 'bash k8s-node-setup.sh'",
                                                                  pool_spec.start_task_command())


@pytest.mark.parametrize(("pool_id", "container"), [("k8s-pool", "k8s-k8s-pool"), ("My_Pool", "k8s-my-pool"),
                                                    ("A" * 64, "k8s-" + "a" * 59)])
def test_cluster_container_names_are_valid(pool_id: str, container: str):
    assert pool_spec.cluster_container(pool_id) == container


def test_auto_pools_get_task_slots_and_compare_them():
    auto = spec_for({"K8S_NODE_ROLE": "auto"}, cluster_sas_url="https://s/k8s-k8s-pool?sig=2")
    assert auto["taskSlotsPerNode"] == pool_spec.AUTO_TASK_SLOTS and spec_for({})["taskSlotsPerNode"] == 1
    existing = dict(auto, taskSlotsPerNode=1)
    assert [d["field"] for d in pool_spec.spec_differences(auto, existing)] == ["taskSlotsPerNode"]


def test_plan_of_a_sas_auto_pool_shows_each_narrow_url():
    planned = pool_spec.planned_pool(load_settings({"K8S_NODE_ROLE": "auto"}))
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
    request = pool_spec.pool_request(load_settings({}), {"imageId": GALLERY})

    assert pool_spec.resolve_node_agent_sku(supported, request, definition) == expected


def test_a_gallery_definition_the_account_cannot_run_is_refused():
    from batchk8s.batch.gallery import ImageDefinition

    request = pool_spec.pool_request(load_settings({}), {"imageId": GALLERY})
    for definition in (ImageDefinition("/id", "Windows", "MicrosoftWindowsServer", "WindowsServer", "2022"),
                       ImageDefinition("/id", "Linux", "contoso", "ubuntu-hpc", "20.04"),  # not in the list
                       ImageDefinition("/id", "Linux", "SUSE", "sles", "15")):
        with pytest.raises(InputError) as refused:
            pool_spec.resolve_node_agent_sku([UBUNTU], request, definition)
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
    assert pool_spec.comparable(existing) == {
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
    assert pool_spec.comparable({"virtualMachineConfiguration": {"imageReference": {
        "virtualMachineImageId": GALLERY, "version": ""}}, "taskSlotsPerNode": 4})["imageReference"] == {
        "virtualMachineImageId": GALLERY.lower()}  # empty values are left out
    assert pool_spec.comparable({}) == {
        "vmSize": None, "imageReference": {}, "nodeAgentSKUId": None, "containerRegistries": [],
        "startTask.commandLine": None, "startTask.environmentSettings": {}, "startTask.resourceFiles": [],
        "startTask.userIdentity": None, "startTask.maxTaskRetryCount": None, "startTask.waitForSuccess": None,
        "taskSlotsPerNode": 1, "identity": [], "userAccounts": [], "metadata": {}}


def test_each_difference_says_what_exists_and_what_was_asked():
    differences = pool_spec.spec_differences({"vmSize": "STANDARD_D2_V3", "taskSlotsPerNode": 4},
                                         {"vmSize": "standard_d4_v3"})
    assert differences == [
        {"field": "vmSize", "message": "existing 'standard_d4_v3', requested 'standard_d2_v3'",
         "existing": "standard_d4_v3", "requested": "standard_d2_v3"},
        {"field": "taskSlotsPerNode", "message": "existing 1, requested 4", "existing": 1, "requested": 4},
    ]


@pytest.mark.parametrize(("body", "fields"), [
    ({}, ["dedicatedNodes"]),
    ({"dedicatedNodes": None, "spotNodes": None}, ["dedicatedNodes", "spotNodes"]),  # null is not "keep"
    ({"dedicatedNodes": True, "spotNodes": 1001, "extra": 1}, ["extra", "dedicatedNodes", "spotNodes"]),
    ({"spotNodes": -1}, ["spotNodes"]),
])
def test_resize_requests_name_every_bad_field(body: dict, fields: list[str]):
    with pytest.raises(InputError) as refused:
        pool_spec.resize_request(body)
    assert [d["field"] for d in refused.value.details] == fields


def test_a_resize_keeps_the_target_it_is_not_given():
    resize = pool_spec.resize_request({"spotNodes": 0})
    assert (resize.dedicated_nodes, resize.spot_nodes) == (None, 0)
    assert pool_spec.resize_options(resize).as_dict() == {"targetLowPriorityNodes": 0}


def test_importing_the_pool_spec_builders_loads_no_azure_sdk():
    """The builders import the SDK's models only when they build one (plan and tests pay, a cold start does not)."""
    probe = ("import sys, batchk8s.batch.pool_spec, batchk8s.batch.reports;"
             "print(sorted(m for m in sys.modules if m.startswith('azure')))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
