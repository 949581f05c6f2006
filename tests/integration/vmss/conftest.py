"""Fixtures for the scale set tests: fake Entra ID + fake ARM compute, and settings pointing at both."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from batchk8s import settings as settings_module
from batchk8s.settings import Settings, load_settings
from tests.fakes.aad import FakeAAD
from tests.fakes.arm import FakeARM, arm_env
from tests.fakes.https import FakeService

RG = "rg-hpc"


@pytest.fixture
def arm(fake_service: Callable[..., FakeService], aad: FakeAAD) -> FakeARM:
    return fake_service(FakeARM, aad=aad, operation_delay=0.2)  # type: ignore[return-value]


@pytest.fixture
def make_settings(aad: FakeAAD, arm: FakeARM) -> Callable[..., Settings]:
    """Settings for the real credential -> fake Entra ID -> real compute client -> fake ARM path."""

    def make(names: str = "vmss-a", **extra: str) -> Settings:
        return load_settings(arm_env(aad, arm, AZURE_RES_GROUP_NAME=RG, AZURE_VMSS_NAME=names, **extra))

    return make


@pytest.fixture
def app_env(aad: FakeAAD, arm: FakeARM, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Put the fakes' settings (plus `extra`) in the process environment, as the Functions host would."""

    def apply(names: str = "vmss-a", **extra: str) -> None:
        env = arm_env(aad, arm, AZURE_RES_GROUP_NAME=RG, AZURE_VMSS_NAME=names, **extra)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        settings_module.clear_cache()

    yield apply
