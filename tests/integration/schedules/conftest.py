"""Fixtures for the schedule document tests: fake ARM + Batch (trusting the shared fake Entra ID), Azurite state."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from batchk8s.settings import Settings, load_settings
from tests.fakes.aad import FakeAAD
from tests.fakes.arm import FakeARM, arm_env
from tests.fakes.batch import FakeBatch, FakeClock
from tests.fakes.https import FakeService

RG = "rg-hpc"


@pytest.fixture
def arm(fake_service: Callable[..., FakeService], aad: FakeAAD) -> FakeARM:
    """Operations settle at once: consecutive ticks minutes apart in test time are milliseconds apart here."""
    return fake_service(FakeARM, aad=aad, operation_delay=0.0)  # type: ignore[return-value]


@pytest.fixture(autouse=True)
def quick_first_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake's operations settle at once; the first status read need not wait ARM's usual second."""
    from batchk8s import vmss

    monkeypatch.setattr(vmss, "FIRST_POLL_DELAY", 0.01)


@pytest.fixture
def batch(fake_service: Callable[..., FakeService], aad: FakeAAD) -> FakeBatch:
    fake: FakeBatch = fake_service(FakeBatch, aad=aad, clock=FakeClock(speed=0))  # type: ignore[assignment]
    fake.allocation_seconds = 0.0
    return fake


@pytest.fixture
def env(aad: FakeAAD, arm: FakeARM, azurite: str) -> dict[str, str]:
    """Settings for the fakes and Azurite, with a state container of the test's own."""
    return arm_env(aad, arm, AZURE_RES_GROUP_NAME=RG, AzureWebJobsStorage=azurite,
                   BATCHK8S_STATE_CONTAINER="state-" + uuid.uuid4().hex[:12])


@pytest.fixture
def make_settings(env: dict[str, str]) -> Callable[..., Settings]:
    def make(document: Any, **extra: str) -> Settings:
        return load_settings({**env, "BATCHK8S_SCHEDULES": json.dumps(document), **extra})

    return make
