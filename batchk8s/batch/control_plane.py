"""Which node of a pool holds the cluster's admin kubeconfig, as a Batch task affinity.

On a `K8S_NODE_ROLE=auto` pool the nodes form one cluster and only the control-plane node has the
admin kubeconfig; the workers have none. The bootstrap (`scripts/k8s-node-setup.sh`) creates
`control-plane.lock` once when it wins the election (`{"nodeId": "<AZ_BATCH_NODE_ID>", "endpoint", ...}`;
no node can overwrite it) and publishes `control-plane.json` (`{"nodeId": ..., "hostname": ...,
"published": ...}`) in the pool's private cluster container `k8s-<pool id>` once `kubeadm init`
succeeded. The node is the lock's; the record says it is ready and must name the same node (nodes may
rewrite the record, so it alone is not trusted). A pool whose lock carries no node (created before the
lock pinned one) is read from the record alone. A task that needs
kubectl gets `affinityInfo` naming that node's `affinityId`, the opaque value Batch reports for the
node (not the node id itself). Batch treats affinity as a preference: a busy or unavailable target
is skipped, which is why `auto` pools have several task slots per node and why the task script
fails with a message naming the problem when it lands on a worker anyway (`workflows/_shell.py`).

On a `single` pool every node is its own cluster with its own kubeconfig: no affinity is needed.
The pool's role is read from its start task environment (what the nodes really ran), not from the
app's current setting, which may have changed since the pool was created.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from batchk8s.batch.client import batch_client, call, text
from batchk8s.batch.node_states import FAILED, GONE, node_class
from batchk8s.errors import ConflictError, InputError, NotFoundError
from batchk8s.settings import Settings

if TYPE_CHECKING:
    from azure.batch import models as batch_models

    from batchk8s.deadline import Deadline

CONTROL_PLANE_BLOB = "control-plane.json"
LOCK_BLOB = "control-plane.lock"



def pool_node_role(pool: batch_models.BatchPool) -> str:
    """`auto` or `single`: the K8S_NODE_ROLE the pool's start task runs with (`single` when absent)."""
    settings = pool.start_task.environment_settings if pool.start_task else None
    for setting in settings or []:
        if setting.name == "K8S_NODE_ROLE":
            return (setting.value or "single").lower()
    return "single"


def control_plane_record(settings: Settings, pool_id: str, *, deadline: Deadline | None = None) -> dict[str, Any]:
    """The parsed `control-plane.json` of the pool's cluster container; 409 while there is none."""
    from batchk8s import storage
    from batchk8s.batch.pool_spec import cluster_container

    container = cluster_container(pool_id)
    where = f"{container}/{CONTROL_PLANE_BLOB}"
    try:
        raw = storage.read_blob_text(settings, container, CONTROL_PLANE_BLOB, deadline=deadline)
    except NotFoundError:
        raise ConflictError(f"pool {pool_id} has no Kubernetes control plane yet: {where} does not exist (the start "
                            f"task publishes it after kubeadm init; see `pool show {pool_id}`)",
                            code="ControlPlaneNotReady") from None
    record = _json_object(raw)
    if not isinstance(record.get("nodeId"), str) or not record["nodeId"]:
        raise ConflictError(f"pool {pool_id}: {where} does not name the control-plane node (no \"nodeId\")",
                            code="ControlPlaneRecordInvalid")
    try:
        holder = _json_object(storage.read_blob_text(settings, container, LOCK_BLOB, deadline=deadline)).get("nodeId")
    except (NotFoundError, InputError):
        holder = None
    if isinstance(holder, str) and holder and holder != record["nodeId"]:
        raise ConflictError(f"pool {pool_id}: {where} names node {record['nodeId']}, but the node that holds "
                            f"{container}/{LOCK_BLOB} is {holder}: the record was not written by the control plane",
                            code="ControlPlaneRecordInvalid")
    return record


def _json_object(raw: str) -> dict[str, Any]:
    try:
        document = json.loads(raw)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def control_plane_affinity(settings: Settings, pool_id: str, *,
                           pool: batch_models.BatchPool | None = None,
                           deadline: Deadline | None = None) -> batch_models.BatchAffinityInfo | None:
    """The affinity that sends a task to the pool's control-plane node, or None for a `single` pool.

    Pass `pool` when it was just read, to save a request. A missing pool is a 404; an `auto` pool
    whose control plane has not published itself, left the pool or cannot run tasks is a 409, so a
    caller stops before submitting tasks that could only fail.
    """
    from azure.batch import models as m

    client = batch_client(settings, deadline)
    if pool is None:
        pool = call(f"pool {pool_id}", client.get_pool, pool_id)
    if pool_node_role(pool) != "auto":
        return None
    node_id = control_plane_record(settings, pool_id, deadline=deadline)["nodeId"]
    try:
        node = call(f"node {node_id} of pool {pool_id}", client.get_node, pool_id, node_id)
    except NotFoundError:
        raise ConflictError(f"pool {pool_id}: its control-plane node {node_id} is no longer in the pool, so the "
                            "cluster has no control plane; delete and recreate the pool",
                            code="ControlPlaneGone") from None
    state = text(node.state)
    # A failed or gone control plane will not take the task (it would go to a worker) or lost its disk and cluster.
    if node_class(state) in (FAILED, GONE) or not node.affinity_id:
        raise ConflictError(f"pool {pool_id}: its control-plane node {node_id} is {state}; tasks that need kubectl "
                            f"cannot run (see `pool show {pool_id}`)", code="ControlPlaneUnusable")
    return m.BatchAffinityInfo(affinity_id=node.affinity_id)
