"""Every fake behind the app at once (Entra ID, ARM compute, Batch, TES) plus Azurite, for the fuzz module.

Module-scoped: schemathesis sends thousands of requests, and each test reusing one set of services keeps the
run short. Settings reach the app through the process environment, as on the host.
"""

from __future__ import annotations

import json
import ssl
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from batchk8s import settings as settings_module
from batchk8s import storage
from batchk8s.batch.pools import create_pool
from batchk8s.settings import load_settings
from tests.app_index import indexed_functions
from tests.conftest import AZURITE_ACCOUNT, AZURITE_KEY
from tests.fakes.aad import FakeAAD
from tests.fakes.arm import FakeARM, arm_env
from tests.fakes.batch import FakeBatch, FakeClock
from tests.fakes.tes import FakeTES
from tests.fuzz.adapter import FunctionsWsgi
from tests.integration.batch.conftest import blob_endpoint

KEY = "fuzz-function-key"
GATEWAY_TOKEN = "fuzz-gateway-token-" + "0" * 32  # what engines send to the TES 1.1 endpoint
RG = "rg-hpc"
SCALE_SETS = ("vmss-a", "vmss-b")
SCHEDULES = {"rules": [{"name": "office", "schedule": "0 0 8 * * Mon-Fri", "timeZone": "Europe/Berlin",
                        "action": "start", "targets": [{"name": "vmss-a"}]}]}


@pytest.fixture(scope="module")
def services(tls: ssl.SSLContext) -> Iterator[dict[str, Any]]:
    aad = FakeAAD(tls).start()
    started: list[Any] = [aad]
    try:
        arm = FakeARM(tls, aad=aad, operation_delay=0.0).start()
        started.append(arm)
        batch = FakeBatch(tls, aad=aad, clock=FakeClock(speed=0)).start()
        started.append(batch)
        batch.allocation_seconds = 0.0
        # An account's core quotas keep fuzzed pools small (up to 1000 nodes each would make every status read
        # list 1000 nodes): past them a resize ends steady with resize errors, as in Batch.
        batch.node_quota = batch.spot_node_quota = 4
        tes_server = FakeTES(tls, clock=FakeClock(speed=0)).start()
        started.append(tes_server)
        for name in SCALE_SETS:
            arm.add_scale_set(RG, name, {"0": "running", "1": "deallocated"})
        yield {"aad": aad, "arm": arm, "batch": batch, "tes": tes_server}
    finally:
        for service in reversed(started):
            service.stop()


@pytest.fixture(scope="module")
def app_env(services: dict[str, Any], azurite: str) -> Iterator[dict[str, str]]:
    """Every feature configured: the scheduled timer, the schedule document, Batch, storage and TES."""
    prefix = "f" + uuid.uuid4().hex[:10]
    env = arm_env(
        services["aad"], services["arm"], AZURE_RES_GROUP_NAME=RG, AZURE_VMSS_NAME=",".join(SCALE_SETS),
        AZURE_VMSS_ACTION="start", VmssTriggerSchedule="0 0 8 * * Mon-Fri", AzureWebJobsStorage=azurite,
        BATCHK8S_STATE_CONTAINER=f"{prefix}-state", BATCHK8S_SCHEDULES=json.dumps(SCHEDULES),
        AZURE_BATCH_ACCOUNT_URL=services["batch"].url, AZURE_BATCH_POOL_ID="k8s-pool",
        AZURE_STORAGE_ACCOUNT_NAME=AZURITE_ACCOUNT, AZURE_STORAGE_ACCOUNT_KEY=AZURITE_KEY,
        AZURE_STORAGE_BLOB_ENDPOINT=blob_endpoint(azurite), AZURE_STORAGE_APP_DIRECTORY=f"{prefix}-apps",
        AZURE_STORAGE_K8S_DIRECTORY=f"{prefix}-k8s", AZURE_STORAGE_TESK_DIRECTORY=f"{prefix}-tesk",
        TESK_API_URL=services["tes"].url, TES_GATEWAY_TOKENS=GATEWAY_TOKEN)
    problems = load_settings(env).problems
    assert not problems, problems
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        settings_module.clear_cache()
        storage.upload_artifacts(load_settings(env))  # what a pool's start task and workflows read
        create_pool(load_settings(env))  # the default pool, so a workflow run without a poolId has one
        yield env


@pytest.fixture(scope="module")
def wsgi_app(app_env: dict[str, str]) -> FunctionsWsgi:
    return FunctionsWsgi(indexed_functions(), KEY)


@pytest.fixture(autouse=True)
def stated_instant(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fuzzer's requests reach the schedule routes, which read the clock: they see one stated instant (a
    Thursday noon), so a failure found on one day reproduces on any other."""
    from datetime import UTC, datetime

    from batchk8s import clock

    monkeypatch.setattr(clock, "now", lambda: datetime(2026, 6, 4, 12, 0, tzinfo=UTC))
