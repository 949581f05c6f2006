"""Pools created through the Batch management plane, the only way to give a pool a managed identity.

The data-plane pool body has no writable `identity`; `Microsoft.Batch/batchAccounts/pools` (ARM,
azure-mgmt-batch) does. A pool with the user-assigned identity of AZURE_BATCH_POOL_IDENTITY_ID is
created here; everything after creation (status, resize, delete, tasks) stays on the data plane,
which serves such a pool like any other.

`arm_pool` is pure: it turns the data-plane create request `build_pool_spec` made (REST names) into
the management plane's `Pool` body (api-version 2025-06-01), so `plan`, the spec comparison and the
create share one description of the pool. The two shapes differ in nesting and enum casing only.
"""

from __future__ import annotations

from typing import Any

from batchk8s.errors import ConfigError
from batchk8s.settings import Settings

# The Microsoft.Batch api-version the management calls pin (what azure-mgmt-batch 19 sends by default), so the
# body's shape does not depend on which SDK version pip installed.
API_VERSION = "2025-06-01"
_AUTO_USER_SCOPE = {"pool": "Pool", "task": "Task"}
_ELEVATION = {"admin": "Admin", "nonadmin": "NonAdmin"}
_CONTAINER_TYPE = {"dockercompatible": "DockerCompatible", "cricompatible": "CriCompatible"}


def _user_identity(identity: dict[str, Any] | None) -> dict[str, Any] | None:
    if not identity:
        return None
    auto = identity.get("autoUser")
    if auto is None:
        return {"userName": identity["userName"]}
    return {"autoUser": {key: value for key, value in (
        ("scope", _AUTO_USER_SCOPE.get(str(auto.get("scope", "")).lower())),
        ("elevationLevel", _ELEVATION.get(str(auto.get("elevationLevel", "")).lower()))) if value}}


def _image(reference: dict[str, Any]) -> dict[str, Any]:
    if reference.get("virtualMachineImageId"):
        return {"id": reference["virtualMachineImageId"]}
    return {key: reference[key] for key in ("publisher", "offer", "sku", "version") if reference.get(key)}


def _dropped_none(document: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if value not in (None, [], {})}


def arm_pool(spec: dict[str, Any], identity_id: str) -> dict[str, Any]:
    """The management-plane `Pool` body for a data-plane create request `spec`, carrying `identity_id`."""
    vm = spec["virtualMachineConfiguration"]
    vm_config: dict[str, Any] = {"imageReference": _image(vm["imageReference"]),
                                 "nodeAgentSkuId": vm["nodeAgentSKUId"]}
    container = vm.get("containerConfiguration")
    if container:
        vm_config["containerConfiguration"] = _dropped_none({
            "type": _CONTAINER_TYPE[str(container["type"]).lower()],
            "containerRegistries": container.get("containerRegistries")})
    start = spec.get("startTask")
    start_task = None
    if start:
        start_task = _dropped_none({
            "commandLine": start["commandLine"],
            "resourceFiles": start.get("resourceFiles"),
            "environmentSettings": start.get("environmentSettings"),
            "userIdentity": _user_identity(start.get("userIdentity")),
            "maxTaskRetryCount": start.get("maxTaskRetryCount"),
            "waitForSuccess": start.get("waitForSuccess")})
    users = [_dropped_none({"name": user["name"], "password": user.get("password"),
                            "elevationLevel": _ELEVATION.get(str(user.get("elevationLevel", "nonadmin")).lower())})
             for user in spec.get("userAccounts") or []]
    properties = _dropped_none({
        "vmSize": spec["vmSize"],
        "deploymentConfiguration": {"virtualMachineConfiguration": vm_config},
        "scaleSettings": {"fixedScale": {"targetDedicatedNodes": spec.get("targetDedicatedNodes", 0),
                                         "targetLowPriorityNodes": spec.get("targetLowPriorityNodes", 0)}},
        "interNodeCommunication": "Enabled" if spec.get("enableInterNodeCommunication") else "Disabled",
        "taskSlotsPerNode": spec.get("taskSlotsPerNode"),
        "userAccounts": users,
        "metadata": spec.get("metadata"),
        "startTask": start_task})
    return {"identity": {"type": "UserAssigned", "userAssignedIdentities": {identity_id: {}}},
            "properties": properties}


def data_plane_identity(identity_id: str) -> dict[str, Any]:
    """The pool identity as the data plane reports it (to compare a requested pool with an existing one)."""
    return {"type": "UserAssigned", "userAssignedIdentities": [{"resourceId": identity_id}]}


def management_client(settings: Settings) -> Any:
    """A BatchManagementClient for the settings' subscription, at the ARM endpoint, with the pinned api-version."""
    from azure.mgmt.batch import BatchManagementClient

    from batchk8s.credentials import get_credential

    missing = settings.missing("pool-identity")
    if missing:
        raise ConfigError("AZURE_BATCH_POOL_IDENTITY_ID: a pool with an identity is created through the management "
                          "plane, which needs " + ", ".join(p.setting for p in missing),
                          details=[p.to_dict() for p in missing])
    return BatchManagementClient(get_credential(settings), settings.subscription_id, base_url=settings.arm_endpoint,
                                 credential_scopes=[settings.arm_scope], api_version=API_VERSION)


def create_pool(settings: Settings, pool_id: str, spec: dict[str, Any]) -> bool:
    """PUT the pool only if it does not exist (`If-None-Match: *`); False when it already did.

    Errors propagate as azure-core exceptions for the caller to translate, as data-plane ones do.
    """
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceExistsError

    client = management_client(settings)
    try:
        client.pool.create(settings.batch_account_resource_group, settings.batch_account_name, pool_id,
                           arm_pool(spec, str(settings.pool_identity_id)), match_condition=MatchConditions.IfMissing)
        return True
    except ResourceExistsError as exc:
        if exc.status_code != 412:  # a 409 (the pool is being deleted, say) is an answer, not "it exists"
            raise
        return False
    finally:
        client.close()
