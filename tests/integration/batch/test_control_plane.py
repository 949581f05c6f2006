"""Multi-node (`auto`) pools: workflow tasks go to the control-plane node, found through control-plane.json.

The fake Batch runs each task's real command line as the node it placed the task on (a directory per
node laid out as the bootstrap leaves it: `k8s/node-role`, and `k8s/admin.conf` on the control plane
only), with a stub kubectl on PATH; Azurite holds the pool's cluster container.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import shlex
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.batch import models as m

from batchk8s import storage
from batchk8s.batch import jobs, pool_spec, pools
from batchk8s.batch.control_plane import CONTROL_PLANE_BLOB, control_plane_affinity
from batchk8s.batch.polling import Waiter
from batchk8s.batch.tasks import TaskSpec, bash_command, to_task_options
from batchk8s.errors import ConflictError, NotFoundError
from batchk8s.settings import Settings
from batchk8s.workflows import runs
from batchk8s.workflows._shell import NO_KUBECONFIG_EXIT, script
from tests.fakes.batch import FakeBatch, FakeClock, TaskOutcome

SCRIPT = Path("scripts/k8s-node-setup.sh")


def fake_waiter(clock: FakeClock) -> Waiter:
    return Waiter(clock=clock.now, sleep=clock.advance)


@pytest.fixture
def auto(settings: Settings) -> Settings:
    storage.upload_artifacts(settings)
    return dataclasses.replace(settings, k8s_node_role="auto")


@pytest.fixture
def pool_id() -> str:
    return "auto-" + uuid.uuid4().hex[:10]  # the cluster container is named after it; Azurite is shared


def create_auto_pool(settings: Settings, clock: FakeClock, pool_id: str, nodes: int = 3) -> list[str]:
    status = pools.create_pool(settings, {"id": pool_id, "dedicatedNodes": nodes}, wait=True,
                               waiter=fake_waiter(clock))
    return sorted(node.id for node in status.nodes)


def node_env(batch: FakeBatch, pool_id: str) -> dict[str, str]:
    return {e["name"]: e["value"] for e in batch.pools[pool_id]["spec"]["startTask"]["environmentSettings"]}


def put(url: str, document: str) -> int:
    return requests.put(url, data=document.encode(), timeout=10,
                        headers={"x-ms-blob-type": "BlockBlob", "x-ms-version": "2021-08-06"}).status_code


def publish(batch: FakeBatch, pool_id: str, node_id: str) -> None:
    """What the bootstrap does with the URLs its start task got: the winner creates control-plane.lock (once),
    then after kubeadm init writes control-plane.json."""
    env = node_env(batch, pool_id)
    lock = json.dumps({"nodeId": node_id, "hostname": node_id.lower(), "endpoint": "10.0.0.4:6443",
                       "caCertHash": "sha256:" + "0" * 64, "claimed": "2026-01-05T07:58:00Z"}, separators=(",", ":"))
    assert put(env["K8S_CLUSTER_CLAIM_URL"], lock + "\n") == 201
    document = json.dumps({"nodeId": node_id, "hostname": node_id.lower(), "published": "2026-01-05T08:00:00Z"},
                          separators=(",", ":")) + "\n"  # the script's printf, byte for byte
    assert put(env["K8S_CLUSTER_RECORD_URL"], document) == 201


def test_the_bootstrap_publishes_the_record_this_reads():
    """Both sides agree: the script writes nodeId = AZ_BATCH_NODE_ID to control-plane.json in the cluster container."""
    text = SCRIPT.read_text()
    assert 'NODE_ID="${NODE_ID:-${AZ_BATCH_NODE_ID:-$(hostname)}}"' in text
    assert '{"nodeId":"%s"' in text and f"blob_put {CONTROL_PLANE_BLOB} " in text
    assert all(name in text for name in pool_spec.CLUSTER_BLOB_URLS)  # the URLs the pool gives, by name
    assert '"$AZ_BATCH_NODE_SHARED_DIR/k8s/node-role"' in text and "node_role=worker" in text


@pytest.fixture
def nodes_run_commands(batch: FakeBatch, tmp_path: Path) -> dict[str, Path]:
    """Each task's command line really runs, as the node the fake placed it on; returns node -> shared dir."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kubectl").write_text('#!/bin/sh\necho "kubectl $* (KUBECONFIG=$KUBECONFIG)"\n')
    (bin_dir / "kubectl").chmod(0o755)
    shared: dict[str, Path] = {}

    @functools.cache
    def run(command_line: str, node_id: str) -> TaskOutcome:
        env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "AZ_BATCH_NODE_ID": node_id,
               "AZ_BATCH_NODE_SHARED_DIR": str(shared[node_id])}
        done = subprocess.run(shlex.split(command_line), env=env, capture_output=True, text=True, timeout=30)
        return TaskOutcome(seconds=5, exit_code=done.returncode, stdout=done.stdout, stderr=done.stderr)

    batch.outcome_on_node = lambda spec, node_id: run(spec["commandLine"], node_id) if node_id in shared else None
    return shared


def lay_out_nodes(shared: dict[str, Path], tmp_path: Path, node_ids: list[str], control: str) -> None:
    """The bootstrap's traces: node-role everywhere, the admin kubeconfig (0600) on the control plane only."""
    for node_id in node_ids:
        k8s = tmp_path / node_id / "k8s"
        k8s.mkdir(parents=True)
        (k8s / "node-role").write_text("control-plane\n" if node_id == control else "worker\n")
        if node_id == control:
            (k8s / "admin.conf").write_text("apiVersion: v1\nkind: Config\n")
            (k8s / "admin.conf").chmod(0o600)
        shared[node_id] = tmp_path / node_id


def test_workflow_tasks_run_on_the_control_plane_node(auto: Settings, batch: FakeBatch, clock: FakeClock,
                                                      pool_id: str, sdk: Any, nodes_run_commands: dict[str, Path],
                                                      tmp_path: Path):
    node_ids = create_auto_pool(auto, clock, pool_id)
    assert batch.pools[pool_id]["spec"]["taskSlotsPerNode"] == pool_spec.AUTO_TASK_SLOTS
    control = node_ids[-1]  # not the node the fake would pick without affinity (the first)
    lay_out_nodes(nodes_run_commands, tmp_path, node_ids, control)

    with pytest.raises(ConflictError) as early:  # the control plane has not published itself yet
        runs.run_workflow(auto, "k8s-info", {"poolId": pool_id, "jobId": "info-1"})
    assert early.value.code == "ControlPlaneNotReady" and CONTROL_PLANE_BLOB in early.value.message
    assert not batch.jobs  # nothing half-done

    publish(batch, pool_id, control)
    run = runs.run_workflow(auto, "k8s-info", {"poolId": pool_id, "jobId": "info-1"}, wait=True,
                            waiter=fake_waiter(clock))
    affinity_id = sdk.get_node(pool_id, control).affinity_id
    assert affinity_id != control and run.affinity_id == affinity_id  # the node's affinityId, not its id
    sent = [t["spec"] for t in batch.jobs["info-1"]["tasks"].values()]
    assert len(sent) == 3 and all(spec["affinityInfo"] == {"affinityId": affinity_id} for spec in sent)
    report = run.status
    assert report.succeeded, report
    assert {t.node_id for t in report.tasks} == {control}
    assert all("kubectl " in t.stdout_tail and "admin.conf" in t.stdout_tail for t in report.tasks)

    # The pool's role comes from the pool itself, not from the app's current setting.
    again = control_plane_affinity(dataclasses.replace(auto, k8s_node_role="single"), pool_id)
    assert again is not None and again.affinity_id == affinity_id


def test_with_one_slot_per_node_parallel_tasks_would_spill_onto_workers(auto: Settings, batch: FakeBatch,
                                                                       clock: FakeClock, pool_id: str,
                                                                       nodes_run_commands: dict[str, Path],
                                                                       tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch):
    """Why `auto` pools get AUTO_TASK_SLOTS: with Batch's default of one slot, the control plane is busy with
    the first k8s-info task and Batch (affinity being a preference) starts the others on workers."""
    monkeypatch.setattr(pool_spec, "AUTO_TASK_SLOTS", 1)
    node_ids = create_auto_pool(auto, clock, pool_id)
    control = node_ids[-1]
    lay_out_nodes(nodes_run_commands, tmp_path, node_ids, control)
    publish(batch, pool_id, control)
    report = runs.run_workflow(auto, "k8s-info", {"poolId": pool_id, "jobId": "info-1"}, wait=True,
                               waiter=fake_waiter(clock)).status
    on_workers = [t for t in report.tasks if t.node_id != control]
    assert on_workers and all(t.exit_code == NO_KUBECONFIG_EXIT for t in on_workers)
    assert not report.succeeded


def test_a_task_that_lands_on_a_worker_fails_naming_the_problem(auto: Settings, batch: FakeBatch, clock: FakeClock,
                                                                pool_id: str, nodes_run_commands: dict[str, Path],
                                                                tmp_path: Path):
    node_ids = create_auto_pool(auto, clock, pool_id)
    lay_out_nodes(nodes_run_commands, tmp_path, node_ids, control=node_ids[-1])
    jobs.create_job(auto, "stray", pool_id)
    # Affinity is only a preference: an unknown (busy, gone) target sends the task to another node, a worker here.
    stray = TaskSpec("pods", bash_command(script("kubectl get pods -A")))
    jobs.add_tasks(auto, "stray", [to_task_options(stray, str, m.BatchAffinityInfo(affinity_id="TVM:elsewhere"))])
    report = jobs.monitor(auto, "stray", timeout=600, waiter=fake_waiter(clock))
    task = report.tasks[0]
    assert task.node_id == node_ids[0] and task.exit_code == NO_KUBECONFIG_EXIT
    assert report.failed_tasks == ["pods"]
    assert f"node {node_ids[0]} is a Kubernetes worker" in task.stderr_tail
    assert "only the control-plane node" in task.stderr_tail and "kubectl" not in (task.stdout_tail or "")


def test_a_record_naming_a_node_that_left_or_nothing_is_a_409(auto: Settings, batch: FakeBatch, clock: FakeClock,
                                                              pool_id: str):
    create_auto_pool(auto, clock, pool_id, nodes=1)
    publish(batch, pool_id, "tvmps_gone")
    with pytest.raises(ConflictError) as gone:
        runs.run_workflow(auto, "k8s-info", {"poolId": pool_id, "jobId": "j"})
    assert gone.value.code == "ControlPlaneGone" and "tvmps_gone" in gone.value.message
    storage.write_blob_if_match(auto, pool_spec.cluster_container(pool_id), CONTROL_PLANE_BLOB, "{}",
                                storage.read_blob(auto, pool_spec.cluster_container(pool_id), CONTROL_PLANE_BLOB).etag)
    with pytest.raises(ConflictError) as invalid:
        runs.run_workflow(auto, "k8s-info", {"poolId": pool_id, "jobId": "j"})
    assert invalid.value.code == "ControlPlaneRecordInvalid"
    assert not batch.jobs


def test_a_control_plane_whose_start_task_failed_is_a_409(auto: Settings, batch: FakeBatch, clock: FakeClock,
                                                          pool_id: str):
    batch.start_task = TaskOutcome(seconds=30, exit_code=1, stderr="kubeadm init failed\n")
    node_ids = create_auto_pool(auto, clock, pool_id, nodes=1)
    publish(batch, pool_id, node_ids[0])
    with pytest.raises(ConflictError) as caught:
        control_plane_affinity(auto, pool_id)
    assert caught.value.code == "ControlPlaneUnusable" and "starttaskfailed" in caught.value.message


def test_single_pools_need_no_affinity_and_a_missing_pool_is_404(settings: Settings, batch: FakeBatch,
                                                                 clock: FakeClock, pool_id: str):
    storage.upload_artifacts(settings)
    create_auto_pool(settings, clock, pool_id, nodes=1)  # role single: the settings' default
    assert control_plane_affinity(settings, pool_id) is None
    assert batch.pools[pool_id]["spec"]["taskSlotsPerNode"] == 1
    with pytest.raises(NotFoundError):
        control_plane_affinity(settings, "nowhere")


def test_a_new_pool_clears_what_an_earlier_pool_of_its_id_left(auto: Settings, batch: FakeBatch, clock: FakeClock,
                                                               pool_id: str):
    from azure.storage.blob import BlobLeaseClient

    container = storage.ensure_container(auto, pool_spec.cluster_container(pool_id))
    service = storage.blob_service(auto)
    for name in ("control-plane.lock", "join-command", CONTROL_PLANE_BLOB):
        service.get_blob_client(container, name).upload_blob(b"old", overwrite=True)
    BlobLeaseClient(service.get_blob_client(container, "control-plane.lock")).acquire(lease_duration=-1)

    node_ids = create_auto_pool(auto, clock, pool_id)
    assert [b.name for b in service.get_container_client(container).list_blobs()] == [storage.CLAIM_BLOB]
    assert storage.read_blob_text(auto, container, storage.CLAIM_BLOB) == pool_id  # the claim names its pool

    publish(batch, pool_id, node_ids[0])
    pools.create_pool(auto, {"id": pool_id, "dedicatedNodes": 3})  # reused: its cluster's state is left alone
    assert json.loads(storage.read_blob_text(auto, container, CONTROL_PLANE_BLOB))["nodeId"] == node_ids[0]


def test_a_pool_id_that_would_share_a_live_pools_cluster_container_is_a_409(auto: Settings, batch: FakeBatch,
                                                                            clock: FakeClock, pool_id: str):
    """'a_b' and 'a-b' map to one container: the second pool must not clear or join the first one's cluster."""
    node_ids = create_auto_pool(auto, clock, pool_id, nodes=1)
    publish(batch, pool_id, node_ids[0])
    twin = pool_id.replace("-", "_")
    with pytest.raises(ConflictError) as caught:
        pools.create_pool(auto, {"id": twin, "dedicatedNodes": 1})
    assert caught.value.code == "ClusterContainerInUse" and caught.value.details[0]["field"] == "id"
    assert twin.lower() not in {key.lower() for key in batch.pools}
    record = storage.read_blob_text(auto, pool_spec.cluster_container(pool_id), CONTROL_PLANE_BLOB)
    assert json.loads(record)["nodeId"] == node_ids[0]  # the live cluster's state is untouched


def test_two_pools_claiming_one_cluster_container_at_the_same_moment_one_wins(auto: Settings, batch: FakeBatch,
                                                                              pool_id: str):
    """'x_y' and 'x-y' created at the same instant (threads released together, real Azurite): exactly one pool
    is created, the other is a 409 ClusterContainerInUse, whatever the interleaving."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    for round_ in range(5):
        ids = [f"{pool_id}-r{round_}", f"{pool_id}_r{round_}"]
        barrier = threading.Barrier(len(ids))

        def create(one: str, barrier: threading.Barrier = barrier) -> str:
            barrier.wait()
            try:
                pools.create_pool(auto, {"id": one, "dedicatedNodes": 1})
                return "created"
            except ConflictError as error:
                return error.code

        with ThreadPoolExecutor(len(ids)) as executor:
            results = list(executor.map(create, ids))
        assert sorted(results) == ["ClusterContainerInUse", "created"], results
        winner = ids[results.index("created")]
        assert {key.lower() for key in batch.pools} >= {winner.lower()}
        assert ids[results.index("ClusterContainerInUse")].lower() not in batch.pools
        container = pool_spec.cluster_container(winner)
        assert storage.read_blob_text(auto, container, storage.CLAIM_BLOB) == winner.lower()


def test_a_claim_by_a_pool_that_is_gone_is_taken_over_after_the_grace(auto: Settings, batch: FakeBatch,
                                                                      pool_id: str, monkeypatch: pytest.MonkeyPatch):
    from datetime import timedelta

    twin = pool_id.replace("-", "_")
    container = storage.ensure_container(auto, pool_spec.cluster_container(pool_id))
    claim = storage.claim_container(auto, container, twin, live_owners=(), grace=timedelta(minutes=10))
    assert claim.won and claim.holder == twin.lower()
    with pytest.raises(ConflictError) as caught:  # twin may be being created right now
        pools.create_pool(auto, {"id": pool_id, "dedicatedNodes": 1})
    assert caught.value.code == "ClusterContainerInUse" and twin.lower() in caught.value.message
    assert pool_id not in batch.pools

    monkeypatch.setattr(pools, "CLAIM_GRACE", timedelta(0))  # twin never appeared: its claim is stale
    pools.create_pool(auto, {"id": pool_id, "dedicatedNodes": 1})
    assert storage.read_blob_text(auto, container, storage.CLAIM_BLOB) == pool_id


def test_a_create_that_batch_refuses_gives_the_claim_back(auto: Settings, batch: FakeBatch, pool_id: str):
    from batchk8s.errors import UpstreamError

    batch.inject(method="POST", path=r"^/pools$", status=400, body={
        "code": "InvalidPropertyValue", "message": {"lang": "en-US", "value": "The value provided for one of the "
                                                    "properties in the request body is invalid."}})
    with pytest.raises(UpstreamError):
        pools.create_pool(auto, {"id": pool_id, "dedicatedNodes": 1})
    service = storage.blob_service(auto)
    blobs = [b.name for b in service.get_container_client(pool_spec.cluster_container(pool_id)).list_blobs()]
    assert storage.CLAIM_BLOB not in blobs


def test_nodes_get_read_only_access_and_may_write_only_their_three_blobs(auto: Settings, batch: FakeBatch,
                                                                         clock: FakeClock, pool_id: str):
    """Against real Azurite: what a Batch reader can take from the start task cannot rewrite the lock or the
    container; each blob URL writes its own blob only."""
    from urllib.parse import parse_qs, urlsplit

    node_ids = create_auto_pool(auto, clock, pool_id, nodes=2)
    env = node_env(batch, pool_id)
    scopes = {name: (parse_qs(urlsplit(env[name]).query)["sr"][0], parse_qs(urlsplit(env[name]).query)["sp"][0],
                     urlsplit(env[name]).path.rsplit("/", 1)[-1])
              for name in ("K8S_CLUSTER_SAS_URL", *pool_spec.CLUSTER_BLOB_URLS)}
    container = pool_spec.cluster_container(pool_id)
    assert scopes == {"K8S_CLUSTER_SAS_URL": ("c", "r", container),
                      "K8S_CLUSTER_CLAIM_URL": ("b", "c", "control-plane.lock"),
                      "K8S_CLUSTER_JOIN_URL": ("b", "cw", "join-command"),
                      "K8S_CLUSTER_RECORD_URL": ("b", "cw", "control-plane.json")}
    publish(batch, pool_id, node_ids[0])
    base, _, sas = env["K8S_CLUSTER_SAS_URL"].partition("?")
    assert put(env["K8S_CLUSTER_CLAIM_URL"], '{"nodeId":"evil"}') == 403  # the lock cannot be rewritten
    assert put(f"{base}/control-plane.lock?{sas}", '{"nodeId":"evil"}') == 403  # nor through the container
    assert put(f"{base}/anything?{sas}", "x") == 403
    join_base, _, join_sas = env["K8S_CLUSTER_JOIN_URL"].partition("?")
    assert put(f"{join_base.rsplit('/', 1)[0]}/control-plane.lock?{join_sas}", "x") == 403  # one blob per SAS
    assert requests.get(f"{base}/control-plane.lock?{sas}", timeout=10).json()["nodeId"] == node_ids[0]


def test_a_record_that_names_another_node_than_the_lock_is_not_trusted(auto: Settings, batch: FakeBatch,
                                                                        clock: FakeClock, pool_id: str):
    node_ids = create_auto_pool(auto, clock, pool_id, nodes=2)
    publish(batch, pool_id, node_ids[0])
    forged = json.dumps({"nodeId": node_ids[1], "hostname": "x", "published": "2026-01-05T09:00:00Z"})
    assert put(node_env(batch, pool_id)["K8S_CLUSTER_RECORD_URL"], forged) == 201  # nodes may rewrite the record
    with pytest.raises(ConflictError) as caught:
        control_plane_affinity(auto, pool_id)
    assert caught.value.code == "ControlPlaneRecordInvalid" and node_ids[0] in caught.value.message
