"""Pools with a user-assigned managed identity: created through the management plane, no SAS anywhere.

The app's real clients (azure-mgmt-batch for the create, azure-batch for everything after) against the fake
management plane and the fake data plane, which share their pools as the two planes of one account do;
Azurite holds the artifacts and the cluster containers.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Any

import pytest

from batchk8s import storage
from batchk8s.batch import pool_spec, pools
from batchk8s.errors import ConfigError, ConflictError, UpstreamError
from batchk8s.settings import Settings, load_settings
from batchk8s.workflows import runs
from tests.fakes.batch import FakeBatch, FakeClock
from tests.fakes.batch_mgmt import FakeBatchManagement

IDENTITY = ("/subscriptions/5ca1ab1e-0000-4000-8000-00000000c0de/resourceGroups/ids/providers/"
            "Microsoft.ManagedIdentity/userAssignedIdentities/k8s-nodes")


@pytest.fixture
def mgmt(fake_service: Any, aad: Any, batch: FakeBatch) -> FakeBatchManagement:
    return fake_service(FakeBatchManagement, aad=aad, batch=batch)  # type: ignore[no-any-return]


@pytest.fixture
def identity_settings(batch_env: dict[str, str], mgmt: FakeBatchManagement) -> Settings:
    client_id = mgmt.add_identity(IDENTITY)
    settings = load_settings({**batch_env, "AZURE_SP_APP_ID_URI": mgmt.url, "AZURE_SUBSCRIPTION_ID": mgmt.subscription,
                              "AZURE_BATCH_RES_GROUP_NAME": mgmt.resource_group,
                              "AZURE_BATCH_ACCOUNT_NAME": mgmt.account, "AZURE_BATCH_POOL_IDENTITY_ID": IDENTITY,
                              "AZURE_BATCH_POOL_IDENTITY_CLIENT_ID": client_id})
    assert not settings.problems
    storage.upload_artifacts(settings)
    return settings


def pool_id() -> str:
    return "id-" + uuid.uuid4().hex[:10]  # cluster containers are per id; Azurite is shared


def spec(batch: FakeBatch, pool: str) -> dict[str, Any]:
    return batch.pools[pool.lower()]["spec"]


def test_an_auto_pool_with_an_identity_carries_no_sas_and_is_created_through_arm(
        identity_settings: Settings, batch: FakeBatch, mgmt: FakeBatchManagement):
    auto = dataclasses.replace(identity_settings, k8s_node_role="auto")
    name = pool_id()
    result = pools.create_pool(auto, {"id": name, "dedicatedNodes": 2})
    assert result.created is True
    assert mgmt.count("PUT", r"/pools/") == 1 and batch.count("POST", r"^/pools$") == 0
    start = spec(batch, name)["startTask"]
    document = json.dumps(spec(batch, name))
    assert "sig=" not in document and "?" not in start["resourceFiles"][0]["httpUrl"]
    assert start["resourceFiles"][0]["identityReference"] == {"resourceId": IDENTITY}
    env = {e["name"]: e["value"] for e in start["environmentSettings"]}
    assert "K8S_CLUSTER_SAS_URL" not in env
    assert env["K8S_CLUSTER_URL"].endswith("/" + pool_spec.cluster_container(name))
    assert "?" not in env["K8S_CLUSTER_URL"]
    assert env["K8S_STORAGE_CLIENT_ID"] == identity_settings.pool_identity_client_id
    assert batch.pools[name]["identity"]["userAssignedIdentities"][0]["resourceId"] == IDENTITY
    assert storage.read_blob_text(auto, pool_spec.cluster_container(name), storage.CLAIM_BLOB) == name  # claimed
    assert result.start_task_sas_expiry is None and result.warnings == []
    assert (result.to_dict()["startTaskSasExpiry"], result.to_dict()["warnings"]) == (None, [])

    again = pools.create_pool(auto, {"id": name, "dedicatedNodes": 2})  # create-or-reuse, as on the data plane
    assert again.created is False and mgmt.count("PUT", r"/pools/") == 2
    assert batch.patches == []  # nothing to renew: there is no SAS


def test_a_sas_pool_is_not_silently_reused_as_an_identity_pool(identity_settings: Settings, batch: FakeBatch):
    name = pool_id()
    plain = dataclasses.replace(identity_settings, pool_identity_id=None, pool_identity_client_id=None)
    pools.create_pool(plain, {"id": name})
    with pytest.raises(ConflictError) as caught:
        pools.create_pool(identity_settings, {"id": name})
    fields = {d["field"] for d in caught.value.details}
    assert caught.value.code == "PoolExistsWithDifferentSpec" and {"identity", "startTask.resourceFiles"} <= fields
    assert "sig=" not in caught.value.message


def test_workflow_inputs_are_fetched_with_the_identity(identity_settings: Settings, batch: FakeBatch,
                                                       clock: FakeClock):
    name = pool_id()
    pools.create_pool(identity_settings, {"id": name})
    clock.advance(600)
    runs.run_workflow(identity_settings, "tesk-deploy", {"poolId": name, "jobId": "deploy-1"})
    files = batch.jobs["deploy-1"]["tasks"]["apply"]["spec"]["resourceFiles"]
    assert files and all(f["identityReference"] == {"resourceId": IDENTITY} and "?" not in f["httpUrl"]
                         for f in files)


def test_the_management_plane_needs_its_settings(identity_settings: Settings):
    incomplete = dataclasses.replace(identity_settings, subscription_id=None, batch_account_name=None)
    with pytest.raises(ConfigError) as caught:
        pools.create_pool(incomplete, {"id": pool_id()})
    assert {d["field"] for d in caught.value.details} == {"AZURE_SUBSCRIPTION_ID", "AZURE_BATCH_ACCOUNT_NAME"}


def test_an_arm_refusal_is_reported_and_gives_the_cluster_container_back(identity_settings: Settings,
                                                                          mgmt: FakeBatchManagement):
    auto = dataclasses.replace(identity_settings, k8s_node_role="auto",
                               pool_identity_id=IDENTITY.replace("k8s-nodes", "missing"))
    name = pool_id()
    with pytest.raises(UpstreamError) as caught:
        pools.create_pool(auto, {"id": name})
    assert caught.value.code == "InvalidParameter" and "missing" in caught.value.message
    container = storage.blob_service(auto).get_container_client(pool_spec.cluster_container(name))
    names = [b.name for b in container.list_blobs()]
    assert storage.CLAIM_BLOB not in names


def test_plan_shows_the_identity_and_no_sas_placeholder(identity_settings: Settings):
    planned = pool_spec.planned_pool(dataclasses.replace(identity_settings, k8s_node_role="auto"))
    assert planned["identity"]["userAssignedIdentities"] == [{"resourceId": IDENTITY}]
    assert "placeholder" not in planned["startTask"]["resourceFiles"][0]["httpUrl"]
    assert planned["startTask"]["resourceFiles"][0]["identityReference"] == {"resourceId": IDENTITY}
