"""Fixtures shared by the integration test folders."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator

import pytest
import requests

from tests.conftest import AZURITE_ACCOUNT, _free_port, azurite_binary
from tests.fakes.aad import FakeAAD
from tests.fakes.https import FakeService


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
