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
}
# Settings the Functions host reads (not batchk8s): "App settings reference for Azure Functions".
HOST_SETTINGS = {"APPLICATIONINSIGHTS_CONNECTION_STRING", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"}
# Flex Consumption refuses these as app settings (its runtime and deployment live in functionAppConfig),
# ignores WEBSITE_TIME_ZONE, and a connection string would carry the account key.
FORBIDDEN = {"FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "WEBSITE_RUN_FROM_PACKAGE",
             "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING", "WEBSITE_CONTENTSHARE", "WEBSITE_TIME_ZONE",
             "AzureWebJobsStorage", "AZURE_SP_CLIENT_ID", "AZURE_AD_SP_CLIENT_ID", "AZURE_AD_TENANT_ID"}
# The settings variables of main.bicep, by the feature that adds them (app.bicep adds hostSettings always).
FEATURE_VARIABLES = {"vmss-timer": "vmssSettings", "vmss": "vmssSettings", "batch": "batchSettings",
                     "schedules": "scheduleSettings", "storage": None, "tes": "batchSettings"}
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
            for name in ("baseSettings", "vmssSettings", "batchSettings", "imageSettings", "scheduleSettings")}
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
        present = always | (settings[FEATURE_VARIABLES[feature]] if FEATURE_VARIABLES[feature] else set())
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
        # The scope is a resource this file names (the storage account, the Batch account, the image)
        # or the resource group the module is deployed to: never subscription() or managementGroup().
        scope = config.get("scope")
        resources = template(relative)["resources"]
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
            assert variable["default"] == str(parameters[name].get("default", "")).replace("False", "false"), name
