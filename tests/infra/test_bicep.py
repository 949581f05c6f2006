"""infra/ as pycep-parser reads it: every file parses, parameters are constrained, the app settings
match batchk8s/settings.py and the role assignments are the built-in roles the app needs, at the
narrowest scope. No Bicep compiler can be installed here, so these read the parsed templates."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from batchk8s import settings as settings_module
from batchk8s.settings import REQUIREMENTS, SPECS, env_name, load_settings, setting_names
from tests.app_index import indexed_functions
from tests.infra.tools import BICEP_FILES, INFRA, ROOT, parsed, template

BUILT_IN_ROLES = "https://learn.microsoft.com/azure/role-based-access-control/built-in-roles"
# Built-in role definition ids, from "Azure built-in roles" (the page above and its per-category pages).
# A role not in this table (Owner, Contributor, User Access Administrator, ...) fails the test.
ROLES = {
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": ("Storage Blob Data Contributor", "storage#storage-blob-data-contributor"),
    "db58b8e5-c6ad-4a2a-8342-4190687cbf4a": ("Storage Blob Delegator", "storage#storage-blob-delegator"),
    "9980e02c-c2be-4d73-94e8-173b1dc7cf3c": ("Virtual Machine Contributor", "compute#virtual-machine-contributor"),
    "6aaa78f1-f7de-44ca-8722-c64a23943cae": ("Azure Batch Data Contributor", "compute#azure-batch-data-contributor"),
    "acdd72a7-3385-48ef-bd42-f606fba81ae7": ("Reader", "general#reader"),
    "3913510d-42f4-4e42-8a64-420c390055eb": ("Monitoring Metrics Publisher", "monitor#monitoring-metrics-publisher"),
    "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1": ("Storage Blob Data Reader", "storage#storage-blob-data-reader"),
    "f1a07417-d97a-45cb-824c-7a7467783830": ("Managed Identity Operator", "identity#managed-identity-operator"),
}
# The blob data actions of Storage Blob Data Contributor (its definition on the storage page above): a
# condition meant to confine the role must name every one of them.
BLOB_CONTRIBUTOR_DATA_ACTIONS = {f"Microsoft.Storage/storageAccounts/blobServices/containers/blobs/{action}"
                                 for action in ("read", "write", "delete", "add/action", "move/action")}
# Settings the Functions host reads (not batchk8s): "App settings reference for Azure Functions".
HOST_SETTINGS = {"APPLICATIONINSIGHTS_CONNECTION_STRING", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"}
# Flex Consumption refuses these as app settings (its runtime and deployment live in functionAppConfig),
# ignores WEBSITE_TIME_ZONE, and a connection string would carry the account key.
FORBIDDEN = {"FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "WEBSITE_RUN_FROM_PACKAGE",
             "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING", "WEBSITE_CONTENTSHARE", "WEBSITE_TIME_ZONE",
             "AzureWebJobsStorage", "AZURE_SP_CLIENT_ID", "AZURE_AD_SP_CLIENT_ID", "AZURE_AD_TENANT_ID"}
# The settings variables of main.bicep that an enabled feature adds (app.bicep adds hostSettings always).
FEATURE_VARIABLES = {"vmss-timer": ("vmssSettings",), "vmss": ("vmssSettings",), "batch": ("batchSettings",),
                     "pool-identity": ("batchSettings", "poolIdentitySettings"),
                     "schedules": ("scheduleSettings",), "storage": (), "tes": ("batchSettings",)}
DISABLED = re.compile(r"^AzureWebJobs\.(?P<function>\w+)\.Disabled$")


def keys(node: Any) -> Iterator[str]:
    """The keys of every object literal in a pycep expression (through function calls and operators)."""
    if isinstance(node, dict):
        if "function" in node:
            yield from (k for value in node["function"]["parameters"].values() for k in keys(value))
        elif "operator" in node:
            yield from (k for value in node["operator"]["operands"].values() for k in keys(value))
        else:
            yield from (key.strip("'") for key in node)


def body(config: dict[str, Any]) -> dict[str, Any]:
    """A resource's or module's properties, through an `if (condition)`."""
    return config["config"] if "condition" in config else config


def variable_keys(relative: str, name: str) -> set[str]:
    return set(keys(template(relative)["variables"][name]["value"]))


def all_settings() -> dict[str, set[str]]:
    main = {name: variable_keys("infra/main.bicep", name)
            for name in ("baseSettings", "vmssSettings", "batchSettings", "poolIdentitySettings", "imageSettings",
                         "scheduleSettings")}
    return {**main, "hostSettings": variable_keys("infra/modules/app.bicep", "hostSettings")}


def test_every_bicep_file_parses():
    assert {path.relative_to(INFRA).as_posix() for path in BICEP_FILES} >= {
        "main.bicep", "modules/app.bicep", "modules/storage.bicep", "modules/identity.bicep",
        "modules/monitoring.bicep", "modules/batch.bicep"}
    errors = {path: entry["error"] for path, entry in parsed().items() if "error" in entry}
    assert errors == {}


def test_main_modules_exist():
    modules = template("infra/main.bicep")["modules"]
    paths = {module["detail"]["path"] for module in modules.values()}
    assert paths and all((INFRA / path).is_file() for path in paths), paths
    on_disk = {path.relative_to(INFRA).as_posix() for path in BICEP_FILES} - {"main.bicep"}
    assert paths == on_disk, "every module file is deployed by main.bicep"


def test_parameters_are_described_and_constrained():
    parameters = template("infra/main.bicep")["parameters"]
    for name, parameter in parameters.items():
        decorators = {decorator["type"]: decorator.get("argument") for decorator in parameter["decorators"]}
        assert "description" in decorators, f"{name} has no @description"
        if parameter["type"] == "int":
            assert "allowed" in decorators or {"min_value", "max_value"} <= set(decorators), f"{name} is unbounded"
    allowed = {name: next(d["argument"] for d in p["decorators"] if d["type"] == "allowed")
               for name, p in parameters.items() if any(d["type"] == "allowed" for d in p["decorators"])}
    assert tuple(allowed["vmssAction"]) == settings_module.VMSS_ACTIONS
    assert allowed["instanceMemoryMB"] == [512, 2048, 4096]
    assert allowed["batchPoolAllocationMode"] == ["BatchService", "UserSubscription"]


def test_parameter_defaults_are_valid_batchk8s_values():
    parameters = template("infra/main.bicep")["parameters"]
    defaults = {"VmssTriggerSchedule": "vmssSchedule", "AZURE_BATCH_POOL_ID": "batchPoolId",
                "AZURE_BATCH_VM_SIZE": "batchVmSize", "AZURE_VMSS_ACTION": "vmssAction",
                "AZURE_BATCH_VM_NODE_COUNT": "batchNodeCount"}
    loaded = load_settings({setting: str(parameters[param]["default"]) for setting, param in defaults.items()})
    assert loaded.problems == ()


def test_app_settings_are_batchk8s_settings_or_the_hosts():
    known = set(setting_names()) | HOST_SETTINGS
    timers = {name for name, function in indexed_functions().items()
              if any(binding.type == "timerTrigger" for binding in function.get_bindings())}
    for variable, names in all_settings().items():
        for name in names:
            disabled = DISABLED.match(name)
            if disabled:
                assert disabled["function"] in timers, f"{variable}: {name} names no timer function"
            else:
                assert name in known, f"{variable}: {name} is not a setting batchk8s or the host reads"
    assert {f"AzureWebJobs.{timer}.Disabled" for timer in timers} <= all_settings()["baseSettings"], \
        "every timer must be switchable off by the deployment"


def test_no_secret_and_nothing_flex_refuses():
    secrets = {name for spec in SPECS if spec.metadata["secret"] for name in spec.metadata["names"]}
    everything = set().union(*all_settings().values())
    assert everything & secrets == set()
    assert everything & FORBIDDEN == set()


def test_each_feature_gets_the_settings_it_requires():
    settings = all_settings()
    always = settings["baseSettings"] | settings["hostSettings"]
    for feature, alternatives in REQUIREMENTS.items():
        present = always.union(*(settings[variable] for variable in FEATURE_VARIABLES[feature]))
        missing = [env_name(group[0]) for group in alternatives if not any(env_name(attr) in present for attr in group)]
        assert missing == [], f"a deployment with {feature} enabled lacks {missing}"


def test_literal_setting_values_are_valid():
    base = template("infra/main.bicep")["variables"]["baseSettings"]["value"]
    literals = {key.strip("'"): value for key, value in base.items()
                if isinstance(value, str) and not DISABLED.match(key.strip("'")) and key != "AZURE_SUBSCRIPTION_ID"
                and value not in template("infra/main.bicep")["parameters"]}
    assert literals and load_settings(literals).problems == ()


def role_assignments() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for relative, entry in parsed().items():
        for name, resource in entry["template"].get("resources", {}).items():
            if resource["type"] == "Microsoft.Authorization/roleAssignments":
                yield relative, name, body(resource["config"])


def test_role_assignments_are_cited_built_in_roles_at_resource_or_group_scope():
    seen = set()
    for relative, name, config in role_assignments():
        definition = config["properties"]["roleDefinitionId"]["function"]
        assert definition["type"] == "subscription_resource_id"
        role_id = definition["parameters"]["resource_name_1"]
        assert role_id in ROLES, f"{relative}:{name} assigns {role_id}, not a role in the table"
        role, anchor = ROLES[role_id]
        assert f"{BUILT_IN_ROLES}/{anchor}" in (ROOT / relative).read_text(encoding="utf-8"), \
            f"{relative} does not cite the built-in roles page for {role}"
        # The scope is a resource this file names (the storage account, a container, the Batch account,
        # the image, the pool identity), one of a loop of them, or the resource group the module is
        # deployed to: never subscription() or managementGroup().
        scope = config.get("scope")
        resources = template(relative)["resources"]
        if isinstance(scope, dict) and scope.get("operator", {}).get("type") == "index_accessor":
            scope = scope["operator"]["operands"]["operand_1"]
        if isinstance(scope, str):
            assert resources.get(scope, {}).get("existing") is True, f"{relative}:{name} scope {scope}"
        else:
            assert scope == {"function": {"type": "resource_group", "parameters": {
                "resource_group_name": None, "subscription_id": None}}}, f"{relative}:{name} scope {scope}"
        assert config["properties"]["principalType"] == "ServicePrincipal"
        seen.add(role_id)
    assert seen == set(ROLES), "every role in the table is assigned, and only those"


def test_no_role_module_is_deployed_at_subscription_scope():
    main = template("infra/main.bicep")
    assert main["globals"]["scope"]["value"] == "subscription"
    assert not [name for name, _, _ in role_assignments() if _ == "infra/main.bicep"]
    for name, module in main["modules"].items():
        if module["detail"]["path"].startswith("modules/roles/"):
            scope = body(module["config"])["scope"]
            function = scope["function"]["type"] if isinstance(scope, dict) and "function" in scope else None
            assert scope == "rg" or function == "resource_group", f"module {name} is scoped to {scope}"


@pytest.mark.parametrize("relative", ["infra/modules/storage.bicep"])
def test_storage_refuses_keys_and_anonymous_access(relative: str):
    account = body(template(relative)["resources"]["account"]["config"])["properties"]
    assert account["allowSharedKeyAccess"] is False and account["allowBlobPublicAccess"] is False
    assert account["minimumTlsVersion"] == "TLS1_2" and account["supportsHttpsTrafficOnly"] is True


def test_app_is_flex_consumption_python_311_with_identity_storage():
    app = template("infra/modules/app.bicep")
    plan = app["resources"]["plan"]["config"]
    assert plan["sku"] == {"tier": "FlexConsumption", "name": "FC1"} and plan["properties"]["reserved"] is True
    site = app["resources"]["site"]["config"]
    config = site["properties"]["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    assert config["deployment"]["storage"]["authentication"]["type"] == "UserAssignedIdentity"
    assert site["identity"]["type"] == "UserAssigned" and site["properties"]["httpsOnly"] is True
    host = app["variables"]["hostSettings"]["value"]
    assert host["AzureWebJobsStorage__credential"] == "managedidentity"
    assert template("infra/modules/monitoring.bicep")["resources"]["appInsights"]["config"]["properties"][
        "DisableLocalAuth"] is True


def test_azd_parameter_file_maps_onto_main_parameters():
    """azd fills infra/main.parameters.json from the environment (`azd env set NAME value`)."""
    import json

    mapped = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    parameters = template("infra/main.bicep")["parameters"]
    assert set(mapped) <= set(parameters), set(mapped) - set(parameters)
    required = {name for name, parameter in parameters.items() if "default" not in parameter}
    assert required <= set(mapped), required - set(mapped)
    for name, entry in mapped.items():
        variable = re.fullmatch(r"\$\{(?P<var>\w+)(=(?P<default>[^}]*))?\}", entry["value"])
        assert variable, f"{name}: {entry['value']}"
        if variable["default"] is not None:
            default = parameters[name].get("default", "")
            assert variable["default"] == (str(default).lower() if isinstance(default, bool) else str(default)), name


def leaves(node: Any) -> Iterator[Any]:
    """Every literal and name a pycep expression mentions (through operators, functions and lists)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key != "type":  # the operator's or function's own name
                yield from leaves(value)
    elif isinstance(node, list):
        for value in node:
            yield from leaves(value)
    else:
        yield node


def conditionals(node: Any) -> Iterator[tuple[Any, Any]]:
    """(condition, value if true) of every `condition ? a : b` in a pycep expression."""
    if isinstance(node, dict):
        if node.get("operator", {}).get("type") == "conditional":
            operands = node["operator"]["operands"]
            yield operands["condition"], operands["true_value"]
        for value in node.values():
            yield from conditionals(value)
    elif isinstance(node, list):
        for value in node:
            yield from conditionals(value)


def test_pool_identity_is_the_nodes_own_and_switchable():
    main = template("infra/main.bicep")
    parameter = main["parameters"]["batchPoolIdentity"]
    assert parameter["type"] == "bool" and parameter["default"] is True
    assert set(leaves(main["variables"]["poolIdentityEnabled"]["value"])) == {"batchEnabled", "batchPoolIdentity"}
    modules = main["modules"]
    for name in ("poolIdentity", "nodeRoles", "poolIdentityRoles"):
        assert modules[name]["config"].get("condition") == "poolIdentityEnabled", f"{name} is not switched by it"
    assert modules["poolIdentity"]["detail"]["path"] == modules["identity"]["detail"]["path"]
    names = {body(modules[name]["config"])["params"]["name"] for name in ("identity", "poolIdentity")}
    assert len(names) == 2, "the nodes' identity must not be the app's"
    # The nodes' blob roles go to the nodes' identity; the right to assign it goes to the app's identity.
    node_principal = set(leaves(body(modules["nodeRoles"]["config"])["params"]["principalId"]))
    assert "poolIdentity" in node_principal and "identity" not in node_principal
    operator = body(modules["poolIdentityRoles"]["config"])["params"]
    assert "poolIdentity" in set(leaves(operator["identityName"]))
    assert set(leaves(operator["principalId"])) == {"identity", "outputs", "principalId"}
    # Its settings reach the app only with it; switched off, pools get SAS URLs as before.
    added = {condition: value for condition, value in conditionals(main["variables"]["appSettings"]["value"])
             if isinstance(condition, str)}
    assert added["poolIdentityEnabled"] == "poolIdentitySettings" and added["batchEnabled"] == "batchSettings"
    assert variable_keys("infra/main.bicep", "poolIdentitySettings") == {
        "AZURE_BATCH_POOL_IDENTITY_ID", "AZURE_BATCH_POOL_IDENTITY_CLIENT_ID", "AZURE_BATCH_RES_GROUP_NAME"}


def test_nodes_read_the_artifact_containers_only():
    main = template("infra/main.bicep")
    base = main["variables"]["baseSettings"]["value"]
    # The containers the app uploads to are the settings it is given, so the roles follow those values.
    settings = [item["operator"]["operands"]["operand_2"] for item in main["variables"]["nodeReadContainers"]["value"]]
    assert settings == [env_name(attr) for attr in ("app_container", "k8s_container", "tesk_container")]
    read = [base[setting] for setting in settings]
    assert set(read) <= set(template("infra/modules/storage.bicep")["variables"]["containers"]["value"])
    nodes = template("infra/modules/roles/nodes.bicep")
    reader = nodes["resources"]["artifactReader"]["config"]
    assert reader["loop_type"]["detail"]["array_name"] == "readContainers"
    assert reader["config"]["scope"]["operator"]["operands"]["operand_1"] == "artifacts"
    artifacts = nodes["resources"]["artifacts"]
    assert artifacts["type"] == "Microsoft.Storage/storageAccounts/blobServices/containers" and artifacts["existing"]
    assert "condition" not in reader["config"]["properties"]


def test_nodes_write_only_the_cluster_containers():
    from batchk8s.batch.pool_spec import cluster_container

    nodes = template("infra/modules/roles/nodes.bicep")
    writer = body(nodes["resources"]["clusterWriter"]["config"])
    assert writer["scope"] == "account" and writer["properties"]["conditionVersion"] == "2.0"
    assert writer["properties"]["roleDefinitionId"]["function"]["parameters"]["resource_name_1"] == \
        "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
    condition = nodes["variables"][writer["properties"]["condition"]]["value"]
    # (!(ActionMatches{a}) AND ... ) OR (container name StringStartsWith prefix): every data action of the
    # role is negated in the first branch, so each one is allowed only where the second holds.
    negated = re.findall(r"!\(ActionMatches\{'([^']+)'\}\)", condition)
    assert set(negated) == set(re.findall(r"ActionMatches\{'([^']+)'\}", condition)) == BLOB_CONTRIBUTOR_DATA_ACTIONS
    assert " ".join(condition.split()).count(" OR ") == 1 and "AND" in condition
    prefix = re.fullmatch(r".*\s@Resource\[Microsoft\.Storage/storageAccounts/blobServices/containers:name\] "
                          r"StringStartsWith '([^']+)'\s*\)\s*\)\s*", condition, re.S)
    assert prefix and prefix[1] == nodes["variables"]["clusterPrefix"]["value"]
    # Every pool's cluster container matches; no other container of the deployment does.
    assert all(cluster_container(pool).startswith(prefix[1]) for pool in ("k8s-pool", "Genomics_01", "a_b", "x" * 64))
    others = template("infra/modules/storage.bicep")["variables"]["containers"]["value"]
    assert [name for name in others if isinstance(name, str) and name.startswith(prefix[1])] == []


def test_app_may_assign_the_pool_identity_and_nothing_wider():
    operator = template("infra/modules/roles/poolidentity.bicep")
    scope = body(operator["resources"]["operator"]["config"])["scope"]
    assert operator["resources"][scope]["type"] == "Microsoft.ManagedIdentity/userAssignedIdentities"
    assert operator["resources"][scope]["existing"] is True


def test_every_azd_parameter_is_documented():
    """docs/deploy.md's parameter table has a row for each `azd env set` name main.parameters.json maps."""
    import json

    mapped = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    rows = dict(re.findall(r"^\| `(\w+)` \| `(\w+)` \|", (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8"),
                           re.M))
    for parameter, entry in mapped.items():
        name = re.fullmatch(r"\$\{(?P<var>\w+)(=[^}]*)?\}", entry["value"])["var"]
        assert rows.get(name) == parameter, f"{name} ({parameter}) is not in docs/deploy.md's parameter table"
