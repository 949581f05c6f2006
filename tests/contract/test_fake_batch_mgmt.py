"""The fake Batch management plane against the definition it follows (Batch management openapi.json 2025-06-01).

Each test drives the fake through the plain azure-mgmt-batch client (none of batchk8s's code); afterwards
every request body it accepted must be a valid `Pool` (read-only properties left out, as a client sends it)
and every JSON answer a valid `Pool` (2xx) or `CloudError` (errors), checked against the vendored excerpt
tests/data/batch-management-2025-06-01.excerpt.json: properties, types, formats, enums, required, and no
property the definition does not name.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.identity import ClientSecretCredential
from azure.mgmt.batch import BatchManagementClient
from jsonschema import Draft4Validator, FormatChecker

from tests.conftest import DATA
from tests.fakes.aad import FakeAAD
from tests.fakes.batch import FakeBatch, FakeClock
from tests.fakes.batch_mgmt import API_VERSION, FakeBatchManagement
from tests.fakes.https import FakeService

SPEC = json.loads((DATA / "batch-management-2025-06-01.excerpt.json").read_text())
DEFINITIONS: dict[str, Any] = SPEC["definitions"]
IDENTITY = ("/subscriptions/5ca1ab1e-0000-4000-8000-00000000c0de/resourceGroups/ids/providers/"
            "Microsoft.ManagedIdentity/userAssignedIdentities/k8s-nodes")


def _closed(definitions: dict[str, Any], *, request: bool) -> dict[str, Any]:
    """Objects admit only the properties they name; a request must not send read-only ones."""
    closed = {}
    for name, definition in definitions.items():
        definition = json.loads(json.dumps(definition))
        if "properties" in definition:
            if "allOf" in definition:  # Pool: ProxyResource's properties are its own too
                for part in definition.pop("allOf"):
                    definition["properties"].update(definitions[part["$ref"].rsplit("/", 1)[1]]["properties"])
            if request:
                definition["properties"] = {k: v for k, v in definition["properties"].items() if not v.get("readOnly")}
            definition["additionalProperties"] = False
        closed[name] = definition
    return closed


def validator(definition: str, *, request: bool = False) -> Draft4Validator:
    schema = {"$ref": f"#/definitions/{definition}", "definitions": _closed(DEFINITIONS, request=request)}
    return Draft4Validator(schema, format_checker=FormatChecker())


@pytest.fixture
def world(fake_service: Callable[..., FakeService]) -> Iterator[dict[str, Any]]:
    aad: FakeAAD = fake_service(FakeAAD)  # type: ignore[assignment]
    batch: FakeBatch = fake_service(FakeBatch, aad=aad, clock=FakeClock(speed=0))  # type: ignore[assignment]
    mgmt: FakeBatchManagement = fake_service(FakeBatchManagement, aad=aad, batch=batch)  # type: ignore[assignment]
    client_id = mgmt.add_identity(IDENTITY)
    credential = ClientSecretCredential(aad.tenant, aad.client_id, aad.client_secret, authority=aad.url,
                                  disable_instance_discovery=True)
    client = BatchManagementClient(credential, mgmt.subscription, base_url=mgmt.url,
                                   credential_scopes=[mgmt.url + "/.default"], api_version=API_VERSION)
    yield {"mgmt": mgmt, "batch": batch, "client": client, "client_id": client_id, "aad": aad}
    client.close()
    problems = []
    for kind, body in mgmt.bodies:
        problems += [f"request {kind}: {e.message}" for e in validator(kind, request=True).iter_errors(body)]
    checked = 0
    for method, path, status, body in mgmt.answers:
        name = "Pool" if status < 300 else "CloudError"
        checked += 1
        problems += [f"{method} {path} -> {status} ({name}): {e.message}" for e in validator(name).iter_errors(body)]
    assert checked, "the test produced no answer the definitions cover"
    assert not problems, "\n".join(problems[:20])


def pool_body(**extra: Any) -> dict[str, Any]:
    return {
        "identity": {"type": "UserAssigned", "userAssignedIdentities": {IDENTITY: {}}},
        "properties": {
            "vmSize": "STANDARD_D2_V3",
            "deploymentConfiguration": {"virtualMachineConfiguration": {
                "imageReference": {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server",
                                   "version": "latest"},
                "nodeAgentSkuId": "batch.node.ubuntu 24.04"}},
            "scaleSettings": {"fixedScale": {"targetDedicatedNodes": 2, "targetLowPriorityNodes": 0}},
            "startTask": {"commandLine": "/bin/bash -c true", "waitForSuccess": True,
                          "userIdentity": {"autoUser": {"scope": "Pool", "elevationLevel": "Admin"}},
                          "resourceFiles": [{"httpUrl": "https://acct.blob.core.windows.net/apps/setup.sh",
                                             "filePath": "setup.sh", "identityReference": {"resourceId": IDENTITY}}]},
            **extra}}


def create(world: dict[str, Any], name: str, body: dict[str, Any], **kwargs: Any) -> Any:
    mgmt = world["mgmt"]
    return world["client"].pool.create(mgmt.resource_group, mgmt.account, name, body, **kwargs)


def test_a_pool_created_with_an_identity_is_served_by_both_planes(world: dict[str, Any]):
    pool = create(world, "p1", pool_body(interNodeCommunication="Enabled", taskSlotsPerNode=4))
    assert pool.identity.user_assigned_identities[IDENTITY].client_id == world["client_id"]
    assert pool.properties.provisioning_state == "Succeeded" and pool.properties.allocation_state == "Resizing"
    got = world["client"].pool.get(world["mgmt"].resource_group, world["mgmt"].account, "p1")
    assert got.etag == pool.etag and got.properties.deployment_configuration.virtual_machine_configuration \
        .node_agent_sku_id == "batch.node.ubuntu 24.04"
    data = world["batch"].pool_view("p1")
    assert data["identity"]["userAssignedIdentities"][0]["resourceId"] == IDENTITY
    assert data["enableInterNodeCommunication"] is True and data["taskSlotsPerNode"] == 4
    assert data["startTask"]["userIdentity"] == {"autoUser": {"scope": "pool", "elevationLevel": "admin"}}
    assert data["startTask"]["resourceFiles"][0]["identityReference"] == {"resourceId": IDENTITY}
    assert data["targetDedicatedNodes"] == 2


def test_if_none_match_on_an_existing_pool_is_412(world: dict[str, Any]):
    create(world, "p1", pool_body())
    with pytest.raises(ResourceExistsError) as caught:
        create(world, "P1", pool_body(), match_condition=MatchConditions.IfMissing)
    assert caught.value.status_code == 412
    with pytest.raises(HttpResponseError) as replaced:
        create(world, "p1", pool_body())
    assert replaced.value.status_code == 409


def test_identities_must_exist_and_references_must_be_the_pools(world: dict[str, Any]):
    other = IDENTITY.replace("k8s-nodes", "elsewhere")
    unknown = pool_body()
    unknown["identity"]["userAssignedIdentities"] = {other: {}}
    with pytest.raises(HttpResponseError) as missing:
        create(world, "p1", unknown)
    assert missing.value.status_code == 400 and missing.value.error.code == "InvalidParameter"
    world["mgmt"].add_identity(other)
    foreign = pool_body()
    foreign["identity"]["userAssignedIdentities"] = {other: {}}
    with pytest.raises(HttpResponseError) as not_carried:
        create(world, "p1", foreign)
    assert not_carried.value.status_code == 400 and not_carried.value.error.code == "InvalidPropertyValue"
    assert "p1" not in world["batch"].pools


def test_the_data_planes_own_checks_apply(world: dict[str, Any]):
    body = pool_body()
    body["properties"]["deploymentConfiguration"]["virtualMachineConfiguration"]["nodeAgentSkuId"] = "batch.node.x 1"
    with pytest.raises(HttpResponseError) as caught:
        create(world, "p1", body)
    assert caught.value.status_code == 400 and caught.value.error.code == "InvalidPropertyValue"
    with pytest.raises(HttpResponseError) as bad_id:
        create(world, "bad.id", pool_body())
    assert bad_id.value.status_code == 400


def test_unknown_account_group_and_pool_are_404(world: dict[str, Any]):
    client, mgmt = world["client"], world["mgmt"]
    with pytest.raises(ResourceNotFoundError):
        client.pool.get(mgmt.resource_group, "nosuchacct", "p1")
    with pytest.raises(ResourceNotFoundError):
        client.pool.get("nosuchrg", mgmt.account, "p1")
    with pytest.raises(ResourceNotFoundError):
        client.pool.get(mgmt.resource_group, mgmt.account, "p1")


def test_requests_without_a_token_or_api_version_are_refused(world: dict[str, Any]):
    mgmt = world["mgmt"]
    path = (f"/subscriptions/{mgmt.subscription}/resourceGroups/{mgmt.resource_group}/providers/Microsoft.Batch"
            f"/batchAccounts/{mgmt.account}/pools/p1")
    anonymous = requests.get(mgmt.url + path + f"?api-version={API_VERSION}", timeout=10)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "AuthenticationFailed"
    aad = world["aad"]
    credential = ClientSecretCredential(aad.tenant, aad.client_id, aad.client_secret, authority=aad.url,
                                        disable_instance_discovery=True)
    token = credential.get_token(mgmt.url + "/.default").token
    bare = requests.get(mgmt.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert bare.status_code == 400 and bare.json()["error"]["code"] == "MissingApiVersionParameter"
