"""TESK's authenticating proxy, run: Debian's nginx (installed by make test) serves the ConfigMap's template
from k8sresources/tesk/35-auth-proxy.yaml, substituted as the nginx image's entrypoint does (only
${TES_TOKEN}), with the listen ports and the backend moved to free loopback ports, in front of a recording
stand-in for tesk-api. The container's own start-up check (the token's length and characters) runs
under sh as the manifest gives it.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.manifests.test_tesk_manifests import find

TOKEN = "k8sAuthTokenForTests0123456789abcdefABCDEF"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Backend:
    """What tesk-api would answer, recording the headers each request arrived with."""

    def __init__(self) -> None:
        seen: list[dict[str, str]] = []
        self.seen = seen

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                seen.append({k.lower(): v for k, v in self.headers.items()})
                body = json.dumps({"id": "tesk", "type": {"artifact": "tes"}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def proxy_config(backend_port: int, port: int, health_port: int, tmp: Path) -> str:
    template = find("ConfigMap", "tesk-auth-config")["data"]["tesk-auth.conf.template"]
    assert template.count("listen 8080;") == 1 and template.count("listen 8081;") == 1
    conf = (template.replace("${TES_TOKEN}", TOKEN)
            .replace("listen 8080;", f"listen 127.0.0.1:{port};")
            .replace("listen 8081;", f"listen 127.0.0.1:{health_port};")
            .replace("http://tesk-api-backend.tesk.svc:8080", f"http://127.0.0.1:{backend_port}"))
    temp_paths = "".join(f"{kind}_temp_path {tmp}/{kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi",
                                                                          "scgi"))
    return (f"pid {tmp}/nginx.pid;\nerror_log {tmp}/error.log;\nevents {{}}\n"
            f"http {{\naccess_log {tmp}/access.log;\n{temp_paths}{conf}\n}}\n")


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[dict[str, Any]]:
    if not Path(NGINX).is_file():
        pytest.fail(f"{NGINX} is missing: make test installs Debian's nginx (apt-get install nginx)")
    backend = Backend()
    port, health = free_port(), free_port()
    (tmp_path / "nginx.conf").write_text(proxy_config(backend.port, port, health, tmp_path))
    process = subprocess.Popen([NGINX, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-g", "daemon off;"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{health}/healthz", timeout=1)
            break
        except requests.ConnectionError:
            if process.poll() is not None:
                pytest.fail(f"nginx refused the configuration: {process.stderr.read().decode()}")  # type: ignore[union-attr]
            time.sleep(0.05)
    yield {"url": f"http://127.0.0.1:{port}", "health": f"http://127.0.0.1:{health}", "backend": backend}
    process.terminate()
    process.wait(10)
    backend.stop()


def test_nothing_answers_without_the_bearer_token(proxy: dict[str, Any]):
    url = proxy["url"] + "/ga4gh/tes/v1/service-info"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                    {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": "Bearer "}):
        answer = requests.get(url, headers=headers, timeout=5)
        assert answer.status_code == 401, headers
        assert answer.json()["status_code"] == 401 and answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert proxy["backend"].seen == []  # none of them reached tesk-api


def test_the_token_opens_tesk_and_stops_at_the_proxy(proxy: dict[str, Any]):
    answer = requests.get(proxy["url"] + "/ga4gh/tes/v1/service-info",
                          headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    assert answer.status_code == 200 and answer.json()["type"]["artifact"] == "tes"
    [seen] = proxy["backend"].seen
    assert "authorization" not in seen  # the credential is not passed on to tesk-api
    assert requests.get(proxy["health"] + "/healthz", timeout=5).text == "ok\n"


@pytest.mark.parametrize(("token", "accepted"), [(TOKEN, True), ("a" * 200, True), ("", False), ("short", False),
                                                 ("a" * 201, False), (TOKEN + " x", False), (TOKEN + "$(id)", False)])
def test_the_container_refuses_to_start_with_a_weak_or_odd_token(tmp_path: Path, token: str, accepted: bool):
    container = find("Deployment", "tesk-auth")["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["/bin/sh", "-c"]
    entrypoint = tmp_path / "docker-entrypoint.sh"
    entrypoint.write_text("#!/bin/sh\necho started\n")
    entrypoint.chmod(0o755)
    script = container["args"][0].replace("/docker-entrypoint.sh", str(entrypoint))
    done = subprocess.run(["/bin/sh", "-c", script], env={"TES_TOKEN": token, "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=10)
    assert (done.returncode == 0 and done.stdout == "started\n") is accepted, done.stderr
    if not accepted:
        assert done.stderr.startswith("tesk-api-token: the token") and (len(token) < 5 or token not in done.stderr)
