"""Fixtures for the Batch tests: the fake Entra ID, the fake Batch account, Azurite and settings for all three."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from batchk8s.batch import client as batch_client_module
from batchk8s.settings import Settings, load_settings
from tests.conftest import AZURITE_ACCOUNT, AZURITE_KEY
from tests.fakes.aad import FakeAAD
from tests.fakes.batch import FakeBatch, FakeClock
from tests.fakes.https import FakeService


@pytest.fixture
def clock() -> FakeClock:
    """Frozen: only `advance` moves service time, so tests are exact and never sleep for it."""
    return FakeClock(speed=0)


@pytest.fixture
def batch(fake_service: Callable[..., FakeService], aad: FakeAAD, clock: FakeClock) -> FakeBatch:
    return fake_service(FakeBatch, aad=aad, clock=clock)  # type: ignore[return-value]


def blob_endpoint(connection_string: str) -> str:
    parts = dict(part.split("=", 1) for part in connection_string.rstrip(";").split(";"))
    return parts["BlobEndpoint"]


@pytest.fixture
def batch_env(aad: FakeAAD, batch: FakeBatch, azurite: str) -> dict[str, str]:
    """Settings for the real credential -> fake Entra ID -> fake Batch path, with SAS URLs signed for Azurite."""
    prefix = "b" + uuid.uuid4().hex[:10]
    return {
        "AZURE_AD_TENANT_ID": aad.tenant, "AZURE_AD_TOKEN_EP": aad.url,
        "AZURE_SP_CLIENT_ID": aad.client_id, "AZURE_SP_CLIENT_SECRET": aad.client_secret,
        "AZURE_BATCH_ACCOUNT_URL": batch.url, "AZURE_BATCH_POOL_ID": "k8s-pool",
        "AZURE_STORAGE_ACCOUNT_NAME": AZURITE_ACCOUNT, "AZURE_STORAGE_ACCOUNT_KEY": AZURITE_KEY,
        "AZURE_STORAGE_BLOB_ENDPOINT": blob_endpoint(azurite),
        "AZURE_STORAGE_APP_DIRECTORY": f"{prefix}-apps", "AZURE_STORAGE_K8S_DIRECTORY": f"{prefix}-k8s",
        "AZURE_STORAGE_TESK_DIRECTORY": f"{prefix}-tesk",
    }


@pytest.fixture
def settings(batch_env: dict[str, str]) -> Settings:
    return load_settings(batch_env)


@pytest.fixture
def sdk(settings: Settings) -> Any:
    """The real azure.batch.BatchClient the app builds for these settings."""
    return batch_client_module.batch_client(settings)
