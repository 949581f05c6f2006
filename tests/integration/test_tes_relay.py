"""The relay transport end to end: real BatchClient -> fake Batch, whose task runs the relay's real
command line (bash + curl) against a NodePort on localhost that forwards to the fake TES.

The fake Batch "runs" a task by executing its command line here with its environment, so the
quoting, the base64 body and the stdout protocol are exercised as a node would run them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shlex
import socket
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from azure.batch import models as m

from batchk8s import storage
from batchk8s.batch import client as batch_client_module
from batchk8s.batch.control_plane import CONTROL_PLANE_BLOB
from batchk8s.batch.polling import Backoff, Waiter
from batchk8s.batch.pool_spec import cluster_container
from batchk8s.deadline import Deadline
from batchk8s.errors import (
    ConfigError,
    ConflictError,
    InputError,
    NotFoundError,
    PayloadTooLargeError,
    UpstreamError,
    UpstreamTimeoutError,
)
from batchk8s.settings import Secret, Settings, load_settings
from batchk8s.tes import TaskWaitTimeout, TesClient, load_sample
from batchk8s.tes.relay import RELAY_JOB, SCRIPT, RelayTransport, parse_output
from batchk8s.tes.transports import TimedOut, Unreachable
from tests.fakes.aad import FakeAAD
from tests.fakes.batch import FakeBatch, FakeClock, TaskOutcome
from tests.fakes.tes import FakeTES

CLUSTER_TOKEN = "Zq8" + uuid.uuid4().hex  # the value of the cluster's Secret tesk/tesk-api-token


class NodePort:
    """Plain HTTP on 127.0.0.1:<30000-32767>, forwarded to the fake TES (what kube-proxy and the tesk-auth
    proxy do for TESK): a request without `Authorization: Bearer <CLUSTER_TOKEN>` gets the proxy's 401."""

    def __init__(self, target: str):
        forward_to = target
        self.authorizations: list[str | None] = []
        seen = self.authorizations

        class Forward(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                seen.append(self.headers.get("Authorization"))
                if self.headers.get("Authorization") != f"Bearer {CLUSTER_TOKEN}":
                    refusal = b'{"msg": "a bearer token is required", "status_code": 401}\n'
                    self.send_response(401)
                    self.send_header("Content-Length", str(len(refusal)))
                    self.end_headers()
                    self.wfile.write(refusal)
                    return
                answer = requests.request(self.command, forward_to + self.path, data=body or None,
                                          headers={"Content-Type": "application/json"} if body else {}, timeout=10)
                self.send_response(answer.status_code)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = _forward

        for port in range(31000, 32767):
            try:
                self.server = ThreadingHTTPServer(("127.0.0.1", port), Forward)
                break
            except OSError:
                continue
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _closed_port() -> int:
    """A port in the NodePort range where nothing listens."""
    for port in range(30000, 31000):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise AssertionError("every port from 30000 to 30999 is in use")


KUBECTL = """#!/usr/bin/env bash
[ -r "$KUBECONFIG" ] || { echo "kubectl: no kubeconfig at $KUBECONFIG" >&2; exit 1; }
if [ "$*" = "-n tesk get secret tesk-api-token -o jsonpath={.data.token}" ] && [ -f "$NODE_SECRET" ]; then
  base64 -w0 < "$NODE_SECRET"; exit 0
fi
echo 'Error from server (NotFound): secrets "tesk-api-token" not found' >&2; exit 1
"""


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A node's shared directory with the admin kubeconfig, a kubectl that reads the cluster's Secret, and
    the Secret's value (a test deletes the file to play a cluster without it)."""
    root = tmp_path_factory.mktemp("node")
    (root / "shared" / "k8s").mkdir(parents=True)
    (root / "shared" / "k8s" / "admin.conf").write_text("apiVersion: v1\nkind: Config\n")
    (root / "bin").mkdir()
    (root / "bin" / "kubectl").write_text(KUBECTL)
    (root / "bin" / "kubectl").chmod(0o755)
    return {"PATH": f"{root / 'bin'}:{os.environ['PATH']}", "AZ_BATCH_NODE_SHARED_DIR": str(root / "shared"),
            "NODE_SECRET": str(root / "secret")}


def run_on_node(spec: dict[str, Any], node: dict[str, str]) -> TaskOutcome:
    """Execute a Batch task's command line as a node would: no shell around it, its environment set."""
    env = {**node, **{s["name"]: s["value"] for s in spec.get("environmentSettings") or []}}
    done = subprocess.run(shlex.split(spec["commandLine"]), env=env, capture_output=True, text=True, timeout=30)
    return TaskOutcome(seconds=2.0, exit_code=done.returncode, stdout=done.stdout, stderr=done.stderr)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(speed=0)


@pytest.fixture
def world(fake_service: Callable[..., Any], clock: FakeClock, node: dict[str, str]) -> Iterator[dict[str, Any]]:
    with open(node["NODE_SECRET"], "w") as secret:
        secret.write(CLUSTER_TOKEN)
    aad = fake_service(FakeAAD)
    batch = fake_service(FakeBatch, aad=aad, clock=clock)
    tes = fake_service(FakeTES, clock=clock)
    node_port = NodePort(tes.url)
    ran: dict[str, TaskOutcome] = {}
    specs: dict[str, dict[str, Any]] = {}  # every relay task as Batch received it (they are deleted after use)

    def outcome_for(spec: dict[str, Any]) -> TaskOutcome:
        if spec["id"] not in ran:  # the fake asks on every read; a node runs a task once
            specs[spec["id"]] = spec
            ran[spec["id"]] = run_on_node(spec, node)
        return ran[spec["id"]]

    batch.outcome_for = outcome_for
    settings = load_settings({
        "AZURE_AD_TENANT_ID": aad.tenant, "AZURE_AD_TOKEN_EP": aad.url, "AZURE_SP_CLIENT_ID": aad.client_id,
        "AZURE_SP_CLIENT_SECRET": aad.client_secret, "AZURE_BATCH_ACCOUNT_URL": batch.url,
        "AZURE_BATCH_POOL_ID": "k8s-pool", "TESK_NODEPORT": str(node_port.port)})
    assert settings.effective_tes_transport == "relay" and not settings.problems
    sdk = batch_client_module.batch_client(settings)
    vm = m.VirtualMachineConfiguration(
        image_reference=m.BatchVmImageReference(publisher="canonical", offer="ubuntu-24_04-lts", sku="server",
                                                version="latest"), node_agent_sku_id="batch.node.ubuntu 24.04")
    sdk.create_pool(m.BatchPoolCreateOptions(id="k8s-pool", vm_size="standard_d2_v3", target_dedicated_nodes=1,
                                             virtual_machine_configuration=vm))
    clock.advance(600)
    transport = RelayTransport(settings, waiter=Waiter(Backoff(0.5, 2.0, 5.0), clock.now, clock.advance))
    client = TesClient(transport, clock=clock.now, sleep=clock.advance)
    yield {"batch": batch, "tes": tes, "client": client, "settings": settings, "ran": ran, "specs": specs,
           "clock": clock, "vm": vm, "node_port": node_port, "node": node}
    node_port.stop()


def test_every_call_goes_through_a_batch_task_and_comes_back(world: dict[str, Any]) -> None:
    client, tes, batch = world["client"], world["tes"], world["batch"]
    assert client.service_info()["type"]["artifact"] == "tes" and client.version == "1.1"
    hello = load_sample("hello")
    hello["tags"]["fake-seconds"] = "600"  # still running when the cancel arrives
    task_id = client.create(hello)
    assert tes.tasks[task_id]["doc"] == hello  # the body crossed base64, env and curl intact
    assert client.get(task_id, "FULL")["executors"] == hello["executors"]
    assert [t["id"] for t in client.iter_tasks(name_prefix="hel")] == [task_id]
    client.cancel(task_id)
    assert client.wait(task_id, timeout=120)["state"] == "CANCELED"
    job = batch.jobs[RELAY_JOB.lower()]
    assert job["spec"]["poolInfo"]["poolId"] == "k8s-pool"
    assert len(world["ran"]) >= 6
    assert job["tasks"] == {}  # each relay task (its environment holds the request) is deleted once read
    assert batch.count("DELETE", r"/tasks/tes-") == len(world["ran"])


def test_the_command_line_is_constant_and_carries_no_request_data(world: dict[str, Any]) -> None:
    client, batch = world["client"], world["batch"]
    secret_url = "https://acct.blob.core.windows.net/c/reads.fq?sv=2024&sig=SECRETSIGNATURE"
    task = {"name": "x; rm -rf / $(id)", "inputs": [{"path": "/in", "url": secret_url}],
            "executors": [{"image": "alpine", "command": ["sh", "-c", "echo '\"quoted\"' $HOME `id`"]}]}
    task_id = client.create(task)
    assert world["tes"].tasks[task_id]["doc"] == task
    specs = list(world["specs"].values())
    assert specs and not batch.jobs[RELAY_JOB.lower()]["tasks"]
    assert {spec["commandLine"] for spec in specs} == {"/bin/bash -c " + shlex.quote(SCRIPT)}
    # The admin auto-user: the one identity on the node that can read the cluster's token Secret.
    assert all(spec["userIdentity"] == {"autoUser": {"scope": "pool", "elevationLevel": "admin"}} for spec in specs)
    assert all("SECRETSIGNATURE" not in spec["commandLine"] and "SECRETSIGNATURE" not in spec.get("displayName", "")
               for spec in specs)


def test_the_relay_sends_the_clusters_token_which_is_never_in_the_task(world: dict[str, Any]) -> None:
    world["client"].service_info()
    assert world["node_port"].authorizations and set(world["node_port"].authorizations) == {
        f"Bearer {CLUSTER_TOKEN}"}
    for spec in world["specs"].values():
        assert CLUSTER_TOKEN not in json.dumps(spec)  # not in the command line, environment or display name
    for outcome in world["ran"].values():
        assert CLUSTER_TOKEN not in outcome.stdout + outcome.stderr


def test_without_the_token_secret_the_relay_says_what_is_missing(world: dict[str, Any]) -> None:
    os.remove(world["node"]["NODE_SECRET"])
    with pytest.raises(UpstreamError) as caught:
        world["client"].service_info()
    assert caught.value.code == "TesRelayFailed" and "tesk/tesk-api-token is missing" in caught.value.message
    assert world["node_port"].authorizations == []  # nothing was sent without the credential


def test_a_relay_task_that_cannot_be_deleted_is_logged_and_the_answer_still_returned(
        world: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    client, batch = world["client"], world["batch"]
    client.service_info()
    batch.inject(method="DELETE", path=r"/tasks/tes-", status=409, times=1,
                 body={"code": "TaskNotDeletable", "message": {"lang": "en-US", "value": "busy"}})
    with caplog.at_level(logging.WARNING, logger="batchk8s.tes.relay"):
        task_id = client.create(load_sample("hello"))
    assert task_id in world["tes"].tasks
    leftover = list(batch.jobs[RELAY_JOB.lower()]["tasks"])
    assert len(leftover) == 1 and leftover[0] in caplog.text and "ResourceExistsError" in caplog.text
    client.get(task_id)
    assert list(batch.jobs[RELAY_JOB.lower()]["tasks"]) == leftover  # later requests clean up after themselves


def test_on_a_single_pool_relay_tasks_need_no_affinity(world: dict[str, Any]) -> None:
    world["client"].service_info()
    assert [spec.get("affinityInfo") for spec in world["specs"].values()] == [None]


@pytest.mark.azurite
def test_on_a_multi_node_pool_relay_tasks_go_to_the_control_plane_node(world: dict[str, Any], azurite: str) -> None:
    batch, clock = world["batch"], world["clock"]
    settings = dataclasses.replace(world["settings"], webjobs_storage=Secret(azurite),
                                   pool_id=f"auto-{uuid.uuid4().hex[:8]}")  # its cluster container is unique
    sdk = batch_client_module.batch_client(settings)
    start_task = m.BatchStartTask(command_line="/bin/true", environment_settings=[
        m.EnvironmentSetting(name="K8S_NODE_ROLE", value="auto")])
    sdk.create_pool(m.BatchPoolCreateOptions(id=settings.pool_id, vm_size="standard_d2_v3", target_dedicated_nodes=3,
                                             virtual_machine_configuration=world["vm"], start_task=start_task))
    clock.advance(600)
    nodes = sorted(sdk.list_nodes(settings.pool_id), key=lambda node: node.id)
    control = nodes[-1]  # not the node Batch would pick without affinity
    client = TesClient(RelayTransport(settings, waiter=Waiter(Backoff(0.5, 2.0, 5.0), clock.now, clock.advance)),
                       clock=clock.now, sleep=clock.advance)

    with pytest.raises(ConflictError) as early:  # the control plane has not published itself yet
        client.service_info()
    assert early.value.code == "ControlPlaneNotReady" and not world["specs"] and RELAY_JOB.lower() not in batch.jobs

    container = storage.blob_service(settings).get_container_client(cluster_container(settings.pool_id))
    container.create_container()
    container.upload_blob(CONTROL_PLANE_BLOB, json.dumps({"nodeId": control.id}))
    assert client.service_info()["type"]["artifact"] == "tes"  # the refusal was not remembered
    client.get(client.create(load_sample("hello")))
    affinities = {spec["affinityInfo"]["affinityId"] for spec in world["specs"].values()}
    assert affinities == {control.affinity_id} and len(world["specs"]) == 3


def test_a_missing_pool_is_a_configuration_problem(world: dict[str, Any]) -> None:
    settings = dataclasses.replace(world["settings"], pool_id="no-such-pool")
    with pytest.raises(ConfigError) as caught:
        RelayTransport(settings).send("GET", "/ga4gh/tes/v1/service-info", (), None, 5)
    assert caught.value.status == 503 and caught.value.details[0]["field"] == "AZURE_BATCH_POOL_ID"
    assert RELAY_JOB.lower() not in world["batch"].jobs


def test_tes_errors_cross_the_relay_with_their_status(world: dict[str, Any]) -> None:
    client, tes = world["client"], world["tes"]
    with pytest.raises(NotFoundError):
        client.get("task-unknown")
    client.service_info()
    tes.inject(method="GET", path=r"/tasks$", status=503, times=10)
    with pytest.raises(UpstreamError) as caught:
        client.list()
    assert caught.value.upstream_status == 503 and tes.count("GET", r"/tasks$") == 4
    with pytest.raises(InputError):
        client.create({"executors": []})


def test_nothing_on_the_node_port_is_unreachable_and_the_placement_is_looked_up_again(world: dict[str, Any]) -> None:
    settings: Settings = world["settings"]
    dead = RelayTransport(dataclasses.replace(settings, tesk_node_port=_closed_port()),
                          waiter=Waiter(Backoff(0.5, 2.0, 5.0), world["clock"].now, world["clock"].advance))
    for attempt in (1, 2):
        with pytest.raises(Unreachable) as caught:
            dead.send("GET", "/ga4gh/tes/v1/service-info", (), None, 5)
        assert caught.value.sent is False
        assert world["batch"].count("GET", r"/pools/k8s-pool$") == attempt  # the pool may have a new control plane


def test_a_failing_relay_task_reports_its_stderr(world: dict[str, Any]) -> None:
    world["batch"].outcome_for = lambda spec: TaskOutcome(seconds=1, exit_code=127, stderr="curl: not found\n")
    transport = world["client"].transport
    with pytest.raises(UpstreamError) as caught:
        transport.send("GET", "/ga4gh/tes/v1/service-info", (), None, 5)
    assert caught.value.code == "TesRelayFailed" and "curl: not found" in caught.value.message


def test_a_relay_task_that_does_not_finish_is_a_504_not_retried_and_is_deleted(world: dict[str, Any]) -> None:
    client, batch = world["client"], world["batch"]
    task_id = client.create(load_sample("hello"))
    runs_normally, node = set(), batch.outcome_for

    def first_poll_then_stuck(spec: dict[str, Any]) -> TaskOutcome:
        if not runs_normally or spec["id"] in runs_normally:
            runs_normally.add(spec["id"])
            return node(spec)
        return TaskOutcome(seconds=1000)  # e.g. a pool too busy to run it in time

    batch.outcome_for = first_poll_then_stuck
    before = batch.count("POST", r"/addtaskcollection")
    with pytest.raises(UpstreamTimeoutError) as caught:
        client.wait(task_id, timeout=3600)  # the wait's own deadline is not what ran out
    assert caught.value.code == "TesRelayTimeout" and not isinstance(caught.value, TaskWaitTimeout)
    assert "did not finish within 180 s" in caught.value.message
    assert batch.count("POST", r"/addtaskcollection") == before + 2  # one poll answered, one stuck: no retry
    assert batch.jobs[RELAY_JOB.lower()]["tasks"] == {}


def test_a_relayed_request_ends_with_the_operations_deadline(world: dict[str, Any]) -> None:
    """The relay waits for its task only as long as the request's deadline allows, not its own 180 s."""
    client, batch, clock = world["client"], world["batch"], world["clock"]
    task_id = client.create(load_sample("hello"))
    batch.outcome_for = lambda spec: TaskOutcome(seconds=1000)  # a pool too busy to run the relay task
    deadline = Deadline.after(60, clock.now)
    started = clock.now()

    with pytest.raises(UpstreamTimeoutError) as caught:
        client.within(deadline).get(task_id)

    assert caught.value.code == "TesRelayTimeout"
    assert "did not finish before the request's deadline" in caught.value.message
    assert clock.now() - started <= 60


def test_oversized_bodies_are_refused_before_any_task(world: dict[str, Any]) -> None:
    transport = world["client"].transport
    with pytest.raises(PayloadTooLargeError):
        transport.send("POST", "/ga4gh/tes/v1/tasks", (), {"description": "x" * 600_000}, 5)
    assert RELAY_JOB.lower() not in world["batch"].jobs


@pytest.mark.parametrize(("stdout", "expected"), [
    ('{"id": "a"}\nM 200\nM-exit 0\n', (200, b'{"id": "a"}')),
    ("\nM 404\nM-exit 0\n", (404, b"")),
    ('{"x": "M 500"}\nM 201\nM-exit 0\n', (201, b'{"x": "M 500"}')),
])
def test_parse_output(stdout: str, expected: tuple[int, bytes]) -> None:
    result = parse_output(stdout, "M")
    assert (result.status, result.body) == expected


@pytest.mark.parametrize(("stdout", "error"), [
    ("\nM 000\nM-exit 7\n", Unreachable), ("\nM 000\nM-exit 28\n", TimedOut), ("\nM 000\nM-exit 52\n", Unreachable),
    ("garbage", Unreachable),
])
def test_parse_output_failures(stdout: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_output(stdout, "M")
