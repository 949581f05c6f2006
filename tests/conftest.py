"""Session-wide test infrastructure: a throwaway CA for the HTTPS fakes, and a real Azurite."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.fakes.https import FakeService

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"  # vendored specifications, with their source in data/README.md
# The instant every test's "now" starts from (batchk8s.clock), advancing with real elapsed time: a winter
# Wednesday morning by default; tests/test_any_instant.py reruns the clock-marked tests at other instants.
PINNED_NOW = datetime.fromisoformat(os.environ.get("BATCHK8S_TEST_NOW") or "2026-01-14T09:30:00+00:00")
AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's documented development key: public, and only ever valid against the emulator.
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ssl.SSLContext]:
    """A server TLS context for 127.0.0.1 whose CA the SDKs under test trust (and only in tests)."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    bundle = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    saved = {name: os.environ.get(name) for name in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")}
    os.environ["REQUESTS_CA_BUNDLE"] = os.environ["SSL_CERT_FILE"] = str(bundle)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    yield context
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def fake_service(tls: ssl.SSLContext) -> Iterator[Callable[..., FakeService]]:
    """Factory for started FakeService instances, stopped at the end of the test."""
    started: list[FakeService] = []

    def make(cls: type[FakeService] = FakeService, **kwargs: object) -> FakeService:
        service = cls(tls, **kwargs).start()
        started.append(service)
        return service

    yield make
    for service in started:
        service.stop()


@pytest.fixture(autouse=True)
def pinned_clock(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[datetime]:
    """No test reads the real clock through batchk8s: "now" is PINNED_NOW plus the time the test has run.

    A test whose outcome depends on "now" must say so with @pytest.mark.clock, so that the pinned-instant
    test runs it at every instant it checks; an unmarked test that reads the clock fails here.
    """
    from batchk8s import clock

    started = time.monotonic()
    reads = 0

    def now() -> datetime:
        nonlocal reads
        reads += 1
        return PINNED_NOW + timedelta(seconds=time.monotonic() - started)

    monkeypatch.setattr(clock, "now", now)
    yield PINNED_NOW
    if reads and request.node.get_closest_marker("clock") is None:
        pytest.fail(f"{request.node.nodeid} reads batchk8s.clock.now() but is not marked @pytest.mark.clock")


@pytest.fixture(autouse=True)
def fresh_caches() -> Iterator[None]:
    """Every process-wide cache (settings, credentials, SDK clients, parsed documents, the workflow registry)
    is empty when a test starts and emptied when it ends (clients closed): no test sees another's
    settings or talks to another's fake through a client kept from it. The one place this happens:
    batchk8s.caches, where each cache registers itself (tests/unit/test_caches.py checks none is missed)."""
    from batchk8s import caches

    caches.reset_all()
    yield
    caches.reset_all()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def azurite_binary() -> Path:
    return ROOT / "node_modules" / ".bin" / "azurite-blob"


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Azurite blob endpoint; yields its connection string."""
    binary = azurite_binary()
    if not binary.exists():
        pytest.fail("Azurite is not installed: run `make test` (it runs `npm ci`) or `npm install`")
    if not shutil.which("node"):
        pytest.fail("node is required to run Azurite")
    port = _free_port()
    process = subprocess.Popen(
        # In-memory persistence: Azurite refuses it together with --location, and a test run keeps nothing.
        [str(binary), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence",
         "--skipApiVersionCheck", "--loose", "--silent", "--disableTelemetry"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if process.poll() is not None:
                pytest.fail(f"Azurite exited: {process.stderr.read().decode(errors='replace')[:2000]}")
            time.sleep(0.1)
    else:
        process.kill()
        pytest.fail("Azurite did not start within 30 s")
    yield (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
           f"BlobEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};")
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
