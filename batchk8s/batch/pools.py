"""Batch pools whose start task bootstraps Kubernetes: create-or-reuse, status, resize, delete.

The requests are built by `pool_spec` (pure); this module sends them and reads pools back. Creating
is idempotent: an existing pool with the same spec is reused, one with a different spec is a 409 that
lists every field that differs (node counts are not part of the spec: they change with resize). A
resize can "finish" with resize errors (quota, capacity), so status and resize report `resizeErrors`,
not just the allocation state. Status is a `reports.PoolStatus`.

Least privilege: with AZURE_BATCH_POOL_IDENTITY_ID the pool is created through the management plane
(`management`) and carries no SAS at all; otherwise every SAS is scoped to what a node needs
(`CLUSTER_BLOB_URLS`) and re-signed whenever the pool is touched (`renew_start_task`), and status
warns before it expires.
"""

from __future__ import annotations

import dataclasses
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from batchk8s.batch.client import batch_client, call, request_pool_delete, request_pool_resize, text
from batchk8s.batch.gallery import read_definition
from batchk8s.batch.node_states import PoolVerdict, judge_pool
from batchk8s.batch.polling import Waiter, tail
from batchk8s.batch.pool_spec import (
    BOOTSTRAP_BLOB,
    CLUSTER_BLOB_URLS,
    PoolRequest,
    build_pool_spec,
    cluster_container,
    pool_request,
    redacted,
    requested_document,
    resize_options,
    resize_request,
    resolve_node_agent_sku,
    spec_differences,
)
from batchk8s.batch.reports import Deletion, NodeStatus, PoolStatus, ResizeError, sas_time
from batchk8s.errors import (
    BATCH,
    ConflictError,
    InputError,
    NotFoundError,
    UpstreamError,
    azure_errors,
)
from batchk8s.settings import BATCH_ID, Settings

if TYPE_CHECKING:
    from azure.batch import models as batch_models

    from batchk8s.deadline import Deadline

log = logging.getLogger("batchk8s.batch.pools")

STDERR_NODES = 32  # start-task stderr tails fetched per status call (failed nodes first)
# A claim on a cluster container by a pool that does not exist is honoured this long (the claimer may still be
# creating its pool) before another pool id may take the container over.
CLAIM_GRACE = timedelta(minutes=10)
# `pool show` warns when the start task's SAS URLs expire within this window (nodes allocated later cannot start).
SAS_WARNING = timedelta(hours=48)


# --- the start task's SAS lifetime -------------------------------------------------------------


def _start_task_urls(start_task: Any) -> list[tuple[Any, str]]:
    """(model, attribute) of every URL in a start task that can carry a SAS."""
    if start_task is None:
        return []
    places: list[tuple[Any, str]] = []
    for resource in start_task.resource_files or []:
        places += [(resource, name) for name in ("http_url", "storage_container_url") if getattr(resource, name)]
    places += [(env, "value") for env in start_task.environment_settings or []
               if isinstance(env.value, str) and env.value.startswith(("http://", "https://"))]
    return places


def start_task_sas_expiry(pool: batch_models.BatchPool) -> datetime | None:
    """When the first SAS in the pool's start task expires (None: it carries none)."""
    from batchk8s import storage

    expiries = [storage.sas_expiry(getattr(model, name)) for model, name in _start_task_urls(pool.start_task)]
    return min((e for e in expiries if e is not None), default=None)


def renew_start_task(settings: Settings, pool: batch_models.BatchPool, *,
                     deadline: Deadline | None = None) -> datetime | None:
    """Re-sign every SAS in the pool's start task (same blob or container, same permissions, a full
    lifetime from now) and PATCH the start task; returns the new earliest expiry.

    Called whenever batchk8s touches a pool (create-or-reuse, resize, a schedule's scale-up): a
    node allocated later, or one that reboots and reruns its start task, then gets URLs that work.
    Nodes already set up are not affected (Batch applies a new start task to nodes that join or
    restart). A pool whose start task carries no SAS of this app's storage account is left alone.
    The PATCH is conditional on the pool's ETag, so a concurrent change is not overwritten: when the
    pool changed in between, it is read again and renewed once more.
    """
    from azure.batch import models as m
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceModifiedError

    client = batch_client(settings, deadline)
    for attempt in range(2):
        if attempt:
            pool = call(f"pool {pool.id}", client.get_pool, pool.id, select=["id", "eTag", "startTask"])
        renewed = _renewed_urls(settings, pool.start_task, deadline)
        if not renewed:
            return None
        with azure_errors(f"pool {pool.id}", BATCH):
            try:
                client.update_pool(pool.id, m.BatchPoolUpdateOptions(start_task=pool.start_task), etag=pool.etag,
                                   match_condition=MatchConditions.IfNotModified)
                break
            except ResourceModifiedError:
                if attempt:
                    raise UpstreamError(f"pool {pool.id} changed twice while its start-task SAS URLs were renewed",
                                        code="ConditionNotMet") from None
    expiry = start_task_sas_expiry(pool)
    log.info("pool %s: renewed %d start-task SAS URL(s), now valid until %s", pool.id, renewed,
             expiry.isoformat() if expiry else "?")
    return expiry


def _renewed_urls(settings: Settings, start_task: Any, deadline: Deadline | None = None) -> int:
    """Put a freshly signed URL in place of each SAS URL of this app's account in `start_task`; how many."""
    from batchk8s import storage

    count = 0
    for model, name in _start_task_urls(start_task):
        url = storage.renewed_sas_url(settings, getattr(model, name), deadline=deadline)
        if url:
            setattr(model, name, url)
            count += 1
    return count


def sas_warnings(pool_id: str, expiry: datetime | None, now: datetime) -> list[dict[str, str]]:
    """When the start task's SAS is near or past its expiry, a warning that says what breaks and what renews it."""
    if expiry is None or expiry - now >= SAS_WARNING:
        return []
    when = "expired" if expiry <= now else "expires"
    return [{"code": "StartTaskSasExpiring",
             "message": f"the SAS URLs in pool {pool_id}'s start task {when} at {sas_time(expiry)}: a node "
                        "allocated or rebooted after that cannot download its bootstrap (or join an auto cluster); "
                        "create the pool again with the same spec or resize it to renew them"}]


# --- effects -----------------------------------------------------------------------------------


def supported_images(settings: Settings, *, deadline: Deadline | None = None) -> list[dict[str, Any]]:
    client = batch_client(settings, deadline)
    return [image.as_dict() for image in call("supported images", lambda: list(client.list_supported_images()))]


@dataclass(frozen=True)
class _NodeUrls:
    """What a pool's start task is given to reach storage, and whether creating it claimed the cluster
    container for a pool that does not exist yet (to give it back if creation fails)."""

    start_task: str
    cluster: str | None = None
    cluster_blobs: dict[str, str] = field(default_factory=dict)
    claimed: bool = False


def _urls(settings: Settings, request: PoolRequest, *, deadline: Deadline | None = None) -> _NodeUrls:
    """The bootstrap's URL and, for an `auto` pool, its cluster container's (see CLUSTER_BLOB_URLS).

    The container is claimed atomically (`storage.claim_container`): of two pools whose ids map to
    one container, created at the same moment, exactly one gets it and the other a 409. The cluster
    container outlives a pool deleted under the same id; when no pool of this id exists, what is left
    in it is stale and is removed before the new pool's nodes start electing.
    """
    from batchk8s import storage

    if settings.pool_identity_id:  # the nodes read with the pool identity: no SAS is issued at all
        start_task_url = storage.blob_url(settings, settings.app_container, BOOTSTRAP_BLOB)
    else:
        start_task_url = storage.blob_sas_url(settings, settings.app_container, BOOTSTRAP_BLOB, deadline=deadline)
    if settings.k8s_node_role != "auto":
        return _NodeUrls(start_task_url)
    name = cluster_container(request.id)
    sharing = _pools_with_container(settings, name, deadline=deadline)
    others = sorted(pool for pool in sharing if pool.lower() != request.id.lower())
    if others:
        # Ids that differ only in '_' vs '-' (or beyond 59 characters) share a container name: clearing it and
        # handing out its SAS would break the live cluster of the other pool and join the two.
        raise _container_in_use(request.id, name, others[0], "an existing pool")
    container = storage.ensure_container(settings, name, deadline=deadline)
    claim = storage.claim_container(settings, container, request.id, live_owners=sharing, grace=CLAIM_GRACE,
                                    deadline=deadline)
    if not claim.won:
        raise _container_in_use(request.id, name, claim.holder, "it claimed the container and is being created, "
                                f"or was deleted less than {CLAIM_GRACE.seconds // 60} minutes ago")
    if claim.replaced:
        log.warning("cluster container %s: took over the claim of pool %s, which no longer exists", container,
                    claim.replaced)
    if not sharing:
        stale = storage.empty_container(settings, container, keep=(storage.CLAIM_BLOB,), deadline=deadline)
        if stale:
            log.warning("removed %s left in %s by an earlier pool %s", ", ".join(stale), container, request.id)
    if settings.pool_identity_id:
        return _NodeUrls(start_task_url, storage.container_url(settings, container), claimed=not sharing)
    return _NodeUrls(start_task_url, storage.container_sas_url(settings, container, permission="r", deadline=deadline),
                     {name: storage.blob_sas_url(settings, container, blob, permission=letters, deadline=deadline)
                      for name, (blob, letters) in CLUSTER_BLOB_URLS.items()}, claimed=not sharing)


def _container_in_use(pool_id: str, container: str, holder: str, reason: str) -> ConflictError:
    return ConflictError(f"pool {pool_id} would share its cluster container {container} with pool {holder} "
                         f"({reason}): choose an id that differs from it in more than '_' and '-'",
                         code="ClusterContainerInUse",
                         details=[{"field": "id", "message": f"shares cluster container {container} with {holder}"}])


def _release(settings: Settings, request: PoolRequest, claimed: bool) -> None:
    """Give the cluster container back after a create that failed, so another id need not wait out the grace."""
    if claimed:
        from batchk8s import storage

        storage.release_claim(settings, cluster_container(request.id), request.id)


def _pools_with_container(settings: Settings, container: str, *, deadline: Deadline | None = None) -> list[str]:
    """Ids of existing pools whose cluster container is `container` (one listing of pool ids)."""
    client = batch_client(settings, deadline)
    listed = call("pools", lambda: [pool.id for pool in client.list_pools(select=["id"])])
    return [pool_id for pool_id in listed if pool_id and cluster_container(pool_id) == container]


def create_pool(settings: Settings, overrides: dict[str, Any] | None = None, *, wait: bool = False,
                timeout: float = 1800, waiter: Waiter | None = None, deadline: Deadline | None = None) -> PoolStatus:
    """Create the pool, or reuse an identical existing one; 409 naming each difference otherwise."""
    settings.require("batch")
    request = pool_request(settings, overrides)
    client = batch_client(settings, deadline)
    image_field = "imageId" if (overrides or {}).get("imageId") else "AZURE_BATCH_VM_IMAGE_ID"
    definition = read_definition(settings, request.image_id, image_field) if request.image_id else None
    sku = resolve_node_agent_sku(supported_images(settings, deadline=deadline), request, definition, image_field)
    urls = _urls(settings, request, deadline=deadline)
    claimed = urls.claimed
    spec = build_pool_spec(settings, request, start_task_url=urls.start_task, cluster_sas_url=urls.cluster,
                           cluster_blob_urls=urls.cluster_blobs, node_agent_sku=sku)
    what = f"pool {request.id}"
    try:
        with azure_errors(what, BATCH):
            if settings.pool_identity_id:  # only the management plane can give a pool an identity
                from batchk8s.batch import management

                created = management.create_pool(settings, request.id, spec.as_dict())
            else:
                client.create_pool(spec)
                created = True
    except ConflictError as error:
        if error.code != "PoolExists":
            _release(settings, request, claimed)
            raise  # PoolBeingDeleted: the id is not free yet
        created = False
    except Exception:
        _release(settings, request, claimed)
        raise
    if created:
        log.info("created %s (%s, %d dedicated, %d spot)", what, request.vm_size, request.dedicated_nodes,
                 request.spot_nodes)
    else:
        existing = call(what, client.get_pool, request.id)
        differences = spec_differences(requested_document(settings, spec), existing.as_dict())
        if differences:
            raise ConflictError(f"{what} exists with a different spec: "
                                + "; ".join(f"{d['field']} ({d['message']})" for d in differences),
                                code="PoolExistsWithDifferentSpec",
                                details=[{"field": d["field"], "message": d["message"]} for d in differences])
        # Reused: its nodes' SAS URLs are renewed, so a node the pool allocates later can still start.
        renew_start_task(settings, existing, deadline=deadline)
    status = pool_status(settings, request.id, wait=wait, timeout=timeout, waiter=waiter, deadline=deadline)
    note = None
    if not created and (status.target_dedicated_nodes, status.target_spot_nodes) != (request.dedicated_nodes,
                                                                                      request.spot_nodes):
        note = (f"reused the existing pool with {status.target_dedicated_nodes} dedicated and "
                f"{status.target_spot_nodes} spot nodes; resize it to change the counts")
    return dataclasses.replace(status, created=created, note=note)


def _start_task_stderr(settings: Settings, pool_id: str, node_id: str, *,
                       deadline: Deadline | None = None) -> str | None:
    from azure.core.exceptions import AzureError

    client = batch_client(settings, deadline)
    try:
        return tail(client.download_node_file(pool_id, node_id, "startup/stderr.txt"))
    except AzureError:
        return None  # not there yet (node still booting) or the node left: status goes on without it


def _with_stderr(settings: Settings, pool_id: str, nodes: list[NodeStatus], *,
                 deadline: Deadline | None = None) -> list[NodeStatus]:
    """The nodes, with the end of the start task's stderr for up to STDERR_NODES of them (failed ones
    first), fetched concurrently."""
    started = [n for n in nodes if n.start_task is not None]
    started.sort(key=lambda n: n.state != "starttaskfailed")
    chosen = started[:STDERR_NODES]
    if not chosen:
        return nodes
    with ThreadPoolExecutor(max_workers=min(8, len(chosen))) as pool:
        tails = dict(zip([n.id for n in chosen],
                         pool.map(lambda n: _start_task_stderr(settings, pool_id, n.id, deadline=deadline), chosen),
                         strict=True))
    return [node if node.id not in tails or node.start_task is None else dataclasses.replace(
        node, start_task=dataclasses.replace(node.start_task, stderr_tail=tails[node.id], stderr_read=True))
        for node in nodes]


def pool_verdict(settings: Settings, pool_id: str, *, deadline: Deadline | None = None) -> PoolVerdict:
    """The pool's verdict from two light reads (the pool, and node states only): for waits that only
    need to know whether the pool can still run tasks."""
    client = batch_client(settings, deadline)
    what = f"pool {pool_id}"
    pool = call(what, client.get_pool, pool_id, select=["id", "state", "allocationState", "resizeErrors"])
    states = [text(n.state) for n in call(what, lambda: list(client.list_nodes(pool_id, select=["id", "state"])))]
    return judge_pool(text(pool.state), text(pool.allocation_state), states,
                      [e.code for e in ResizeError.all_of(pool)])


def status_of(pool: batch_models.BatchPool, nodes: list[NodeStatus], now: datetime) -> PoolStatus:
    """The status of a pool as read (pure: `nodes` already carry the stderr tails that were fetched)."""
    vm = pool.virtual_machine_configuration
    errors = ResizeError.all_of(pool)
    verdict = judge_pool(text(pool.state), text(pool.allocation_state), [n.state for n in nodes],
                         [e.code for e in errors])
    expiry = start_task_sas_expiry(pool)
    return PoolStatus(
        id=pool.id, state=text(pool.state), allocation_state=text(pool.allocation_state), vm_size=pool.vm_size,
        image=redacted(vm.image_reference.as_dict()) if vm else None,
        node_agent_sku_id=vm.node_agent_sku_id if vm else None, task_slots_per_node=pool.task_slots_per_node or 1,
        target_dedicated_nodes=pool.target_dedicated_nodes or 0,
        target_spot_nodes=pool.target_low_priority_nodes or 0,
        current_dedicated_nodes=pool.current_dedicated_nodes, current_spot_nodes=pool.current_low_priority_nodes,
        resize_errors=errors, nodes=nodes, verdict=verdict, start_task_sas_expiry=expiry,
        warnings=sas_warnings(pool.id, expiry, now))


def _status(settings: Settings, pool_id: str, *, deadline: Deadline | None = None) -> PoolStatus:
    client = batch_client(settings, deadline)
    what = f"pool {pool_id}"
    pool = call(what, client.get_pool, pool_id)
    nodes = [NodeStatus.from_model(n) for n in call(what, lambda: list(client.list_nodes(pool_id)))]
    return status_of(pool, _with_stderr(settings, pool_id, nodes, deadline=deadline), datetime.now(UTC))


def pool_status(settings: Settings, pool_id: str, *, wait: bool = False, timeout: float = 1800,
                waiter: Waiter | None = None, deadline: Deadline | None = None) -> PoolStatus:
    """Allocation state, resize errors, node counts by state and class, each node's start task, and
    the verdict (`ready`, `settled`, `failed`, `reason`; see node_states).

    With `wait`, read again (with backoff) until the pool is settled: every node ready, or nothing
    left that can change without an action (a preempted spot node, a failed start task, a pool being
    deleted). The answer's `reason` says which.
    """
    _check_pool_id(pool_id)
    if not wait:
        return _status(settings, pool_id, deadline=deadline)

    def probe() -> tuple[bool, PoolStatus]:
        status = _status(settings, pool_id, deadline=deadline)
        return status.settled, status

    return (waiter or Waiter()).until(probe, timeout, f"pool {pool_id}", deadline=deadline)


def _check_pool_id(pool_id: str, field_name: str = "poolId") -> None:
    if not isinstance(pool_id, str) or not BATCH_ID.fullmatch(pool_id):
        raise InputError.for_field(field_name, "must be 1-64 letters, digits, '-' or '_'")


def resize_pool(settings: Settings, pool_id: str, body: dict[str, Any], *, wait: bool = False,
                timeout: float = 1800, waiter: Waiter | None = None, deadline: Deadline | None = None) -> PoolStatus:
    """Resize to `dedicatedNodes`/`spotNodes` (each optional; the other keeps its target)."""
    _check_pool_id(pool_id)
    resize = resize_request(body)
    client = batch_client(settings, deadline)
    what = f"pool {pool_id}"
    # A resize (a schedule's morning scale-up among them) allocates nodes that run the start task now.
    renew_start_task(settings, call(what, client.get_pool, pool_id, select=["id", "eTag", "startTask"]),
                     deadline=deadline)
    request_pool_resize(client, pool_id, resize_options(resize), what)
    if not wait:
        return _status(settings, pool_id, deadline=deadline)

    def probe() -> tuple[bool, PoolStatus]:
        status = _status(settings, pool_id, deadline=deadline)
        return status.allocation_state == "steady", status

    status = (waiter or Waiter()).until(probe, timeout, f"resize of {what}", deadline=deadline)
    if status.resize_errors:
        errors = status.resize_errors
        raise UpstreamError(f"{what} resize finished with errors: "
                            + "; ".join(f"{e.code}: {e.message}" for e in errors),
                            code=errors[0].code or "ResizeError",
                            details=[{"field": "resizeErrors", "message": f"{e.code}: {e.message}"} for e in errors])
    return status


def delete_pool(settings: Settings, pool_id: str, *, wait: bool = False, timeout: float = 1800,
                waiter: Waiter | None = None, deadline: Deadline | None = None) -> Deletion:
    """Ask Batch to delete the pool; with `wait`, read until it is gone."""
    _check_pool_id(pool_id)
    client = batch_client(settings, deadline)
    what = f"pool {pool_id}"
    request_pool_delete(client, pool_id, what)
    if wait:
        def probe() -> tuple[bool, None]:
            try:
                call(what, client.get_pool, pool_id)
            except NotFoundError:
                return True, None
            return False, None

        (waiter or Waiter()).until(probe, timeout, f"deletion of {what}", deadline=deadline)
        return Deletion(pool_id, "deleted")
    return Deletion(pool_id, "deleting")
