"""Fixtures shared by the integration test folders."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.fakes.aad import FakeAAD
from tests.fakes.https import FakeService


@pytest.fixture
def aad(fake_service: Callable[..., FakeService]) -> FakeAAD:
    """The fake Entra ID token endpoint that the ARM and Batch fakes trust (one per test)."""
    return fake_service(FakeAAD)  # type: ignore[return-value]
