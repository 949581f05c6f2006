"""The world a fault-matrix cell runs in: fake Entra ID, ARM, Batch and TES, and Azurite behind a fault proxy.

Each service is started only when a cell uses it. Everything the app reads goes through the real
SDK clients and their pipelines, so what a cell measures (attempts, time, the answer) is what the
app does against a misbehaving service.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from functools import cached_property
from typing import Any

import pytest

from batchk8s.settings import Settings, load_settings
from tests.conftest import AZURITE_ACCOUNT, AZURITE_KEY
from tests.fakes.aad import FakeAAD
from tests.fakes.arm import FakeARM, arm_env
from tests.fakes.batch import FakeBatch, FakeClock
from tests.fakes.https import FakeService
from tests.fakes.proxy import FaultProxy
from tests.fakes.tes import FakeTES

RG = "rg-hpc"
# Every cell runs under this deadline: short, so the whole matrix stays fast, and long enough for one
# honoured `Retry-After: 1` and a slow answer.
DEADLINE = 1.5


class World:
    def __init__(self, make: Callable[..., FakeService], azurite: str):
        self._make = make
        self._azurite = azurite

    @cached_property
    def aad(self) -> FakeAAD:
        return self._make(FakeAAD)  # type: ignore[return-value]

    @cached_property
    def arm(self) -> FakeARM:
        fake: FakeARM = self._make(FakeARM, aad=self.aad, operation_delay=0.2)  # type: ignore[assignment]
        fake.add_scale_set(RG, "vmss-a", {"0": "deallocated", "1": "running"})
        return fake

    @cached_property
    def batch(self) -> FakeBatch:
        return self._make(FakeBatch, aad=self.aad, clock=FakeClock(speed=0))  # type: ignore[return-value]

    @cached_property
    def tes(self) -> FakeTES:
        return self._make(FakeTES)  # type: ignore[return-value]

    @cached_property
    def blob(self) -> FaultProxy:
        endpoint = dict(part.split("=", 1) for part in self._azurite.rstrip(";").split(";"))["BlobEndpoint"]
        return self._make(FaultProxy, upstream=endpoint)  # type: ignore[return-value]

    @cached_property
    def settings(self) -> Settings:
        """Settings naming only the services started so far (start them first)."""
        env: dict[str, str] = {}
        if "arm" in self.__dict__:
            env |= arm_env(self.aad, self.arm, AZURE_RES_GROUP_NAME=RG, AZURE_VMSS_NAME="vmss-a")
        if "batch" in self.__dict__:
            env |= {"AZURE_AD_TENANT_ID": self.aad.tenant, "AZURE_AD_TOKEN_EP": self.aad.url,
                    "AZURE_SP_CLIENT_ID": self.aad.client_id, "AZURE_SP_CLIENT_SECRET": self.aad.client_secret,
                    "AZURE_BATCH_ACCOUNT_URL": self.batch.url, "AZURE_BATCH_POOL_ID": "k8s-pool"}
        if "blob" in self.__dict__:
            env |= {"AZURE_STORAGE_ACCOUNT_NAME": AZURITE_ACCOUNT, "AZURE_STORAGE_ACCOUNT_KEY": AZURITE_KEY,
                    "AZURE_STORAGE_BLOB_ENDPOINT": self.blob.endpoint()}
        if "tes" in self.__dict__:
            env |= {"TESK_API_URL": self.tes.url}
        return load_settings(env)

    def fake(self, service: str) -> FakeService:
        return getattr(self, service)


@pytest.fixture
def world(fake_service: Callable[..., FakeService], azurite: str) -> Iterator[World]:
    yield World(fake_service, azurite)


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def error_body(service: str, code: str, message: str) -> tuple[Any, dict[str, str]]:
    """An error answer as each service shapes it (body, headers)."""
    if service == "arm":
        return {"error": {"code": code, "message": message}}, {}
    if service == "batch":
        return {"code": code, "message": {"lang": "en-US", "value": message}}, {}
    if service == "blob":
        xml = f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code><Message>{message}</Message></Error>'
        return xml, {"x-ms-error-code": code, "Content-Type": "application/xml"}
    return {"message": message}, {}
