"""Fixtures shared by the integration test folders."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from batchk8s import settings as settings_module
from batchk8s import tes
from batchk8s.settings import load_settings
from tests.conftest import AZURITE_ACCOUNT, _free_port, azurite_binary
from tests.fakes.aad import FakeAAD
from tests.fakes.batch import FakeClock
from tests.fakes.https import FakeService
from tests.fakes.tes import MODES, FakeTES


@pytest.fixture
def aad(fake_service: Callable[..., FakeService]) -> FakeAAD:
    """The fake Entra ID token endpoint that the ARM and Batch fakes trust (one per test)."""
    return fake_service(FakeAAD)  # type: ignore[return-value]


@pytest.fixture(scope="session")
def oauth_azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """An Azurite blob endpoint over HTTPS that accepts only bearer tokens (and SAS); yields (endpoint, CA bundle)."""
    import trustme

    folder = tmp_path_factory.mktemp("azurite-oauth")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
    cert.private_key_pem.write_to_path(str(folder / "key.pem"))
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    port = _free_port()
    process = subprocess.Popen(
        [str(azurite_binary()), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence",
         "--skipApiVersionCheck", "--loose", "--silent", "--disableTelemetry", "--oauth", "basic",
         "--cert", str(folder / "cert.pem"), "--key", str(folder / "key.pem")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    endpoint = f"https://127.0.0.1:{port}/{AZURITE_ACCOUNT}"
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(f"https://127.0.0.1:{port}/", verify=str(folder / "ca.pem"), timeout=1)
            break
        except requests.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"Azurite (OAuth) did not start: {process.stderr.read().decode(errors='replace')[:2000]}")
            time.sleep(0.1)
    yield endpoint, str(folder / "ca.pem")
    process.terminate()
    try:
        process.wait(timeout=3)
    except subprocess.TimeoutExpired:
        process.kill()


# TES behind the app: the fake in both of its shapes (TES 1.1 as specified, TESK as deployed), and the
# settings that point the app at it, its client driven on the fake clock. The /api/tes doors and the
# TES 1.1 endpoint share them.
@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(speed=0)


@pytest.fixture(params=MODES)
def fake(request: pytest.FixtureRequest, fake_service: Callable[..., Any], clock: FakeClock) -> FakeTES:
    return fake_service(FakeTES, mode=request.param, clock=clock)


@pytest.fixture
def env(fake: FakeTES, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    values = {"TESK_API_URL": fake.url}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings_module.clear_cache()
    client = tes.client_for(load_settings(values))  # the one the doors will use: drive it on the fake clock
    client.clock, client.sleep = clock.now, clock.advance
    yield values
