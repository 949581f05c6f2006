"""Batch pools whose start task bootstraps Kubernetes: spec, create-or-reuse, status, resize, delete.

`build_pool_spec` is pure (settings + request + URLs -> the create request), so `plan` shows exactly
what `create_pool` would send. Creating is idempotent: an existing pool with the same spec is
reused, one with a different spec is a 409 that lists every field that differs (node counts are
not part of the spec: they change with resize). A resize can "finish" with resize errors (quota,
capacity), so status and resize report `resizeErrors`, not just the allocation state.

Least privilege: with AZURE_BATCH_POOL_IDENTITY_ID the pool is created through the management plane
(`management`) and carries no SAS at all; otherwise every SAS is scoped to what a node needs
(`CLUSTER_BLOB_URLS`) and re-signed whenever the pool is touched (`renew_start_task`), and status
warns before it expires.
"""

from __future__ import annotations

import logging
import re
import shlex
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from batchk8s.batch.client import batch_client, call, request_pool_delete, request_pool_resize, text
from batchk8s.batch.gallery import ImageDefinition, read_definition
from batchk8s.batch.node_states import PoolVerdict, judge_pool, node_class
from batchk8s.batch.polling import Waiter, tail
from batchk8s.errors import (
    BATCH,
    ConfigError,
    ConflictError,
    InputError,
    NotFoundError,
    UpstreamError,
    azure_errors,
    excerpt,
)
from batchk8s.settings import BATCH_ID, GALLERY_IMAGE_ID, VM_SIZE, Settings

if TYPE_CHECKING:
    from azure.batch import models as batch_models

    from batchk8s.deadline import Deadline

log = logging.getLogger("batchk8s.batch.pools")

BOOTSTRAP_BLOB = "k8s-node-setup.sh"
MARKETPLACE_IMAGE = {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"}
START_TASK_RETRIES = 3
MAX_NODES = 1000
STDERR_NODES = 32  # start-task stderr tails fetched per status call (failed nodes first)
NODE_AGENT_SKU = re.compile(r"^batch\.node\.[a-z0-9. ]{1,60}$")
OVERRIDE_FIELDS = ("id", "vmSize", "dedicatedNodes", "spotNodes", "imageId", "nodeAgentSkuId", "metadata")
SAS_PLACEHOLDER = "<placeholder: read-only SAS issued at create time>"
# Workflow tasks are kubectl/curl clients (the work runs in Kubernetes pods). On an `auto` pool they all go to
# the control-plane node, and Batch's affinity is only a preference: with one slot, parallel tasks (k8s-info)
# would overflow onto workers, which have no kubeconfig. 4 is within Batch's limit for any size (4 x vCPUs).
AUTO_TASK_SLOTS = 4
# A claim on a cluster container by a pool that does not exist is honoured this long (the claimer may still be
# creating its pool) before another pool id may take the container over.
CLAIM_GRACE = timedelta(minutes=10)
# `pool show` warns when the start task's SAS URLs expire within this window (nodes allocated later cannot start).
SAS_WARNING = timedelta(hours=48)
# An `auto` pool without an identity: each node reads the cluster container with a read-only SAS and writes
# only these blobs, each through a SAS for that blob alone. The lock may only be created (never overwritten,
# leased or deleted): it pins the control plane's API endpoint and CA, so a worker joins nothing else, whoever
# writes join-command (which the control plane rewrites every few hours).
CLUSTER_BLOB_URLS = {"K8S_CLUSTER_CLAIM_URL": ("control-plane.lock", "c"),
                     "K8S_CLUSTER_JOIN_URL": ("join-command", "cw"),
                     "K8S_CLUSTER_RECORD_URL": ("control-plane.json", "cw")}


@dataclass(frozen=True)
class PoolRequest:
    """A validated pool request: the settings' defaults with the caller's overrides applied."""

    id: str
    vm_size: str
    dedicated_nodes: int
    spot_nodes: int
    image_id: str | None
    node_agent_sku_id: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


def pool_request(settings: Settings, overrides: dict[str, Any] | None = None) -> PoolRequest:
    """Validate `overrides` (HTTP body / CLI options) against Batch's rules; every bad field at once."""
    overrides = dict(overrides or {})
    problems: list[dict[str, str]] = []

    def bad(name: str, message: str) -> None:
        problems.append({"field": name, "message": message})

    for name in sorted(set(overrides) - set(OVERRIDE_FIELDS)):
        bad(name, f"unknown field; expected one of {', '.join(OVERRIDE_FIELDS)}")
    pool_id = overrides.get("id", settings.pool_id)
    if not isinstance(pool_id, str) or not BATCH_ID.fullmatch(pool_id):
        bad("id", "must be 1-64 letters, digits, '-' or '_'")
    vm_size = overrides.get("vmSize", settings.vm_size)
    if not isinstance(vm_size, str) or not VM_SIZE.fullmatch(vm_size):
        bad("vmSize", "must be an Azure VM size such as STANDARD_D2_V3")
    counts = {}
    for name, default in (("dedicatedNodes", settings.node_count), ("spotNodes", settings.spot_node_count)):
        value = overrides.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_NODES:
            bad(name, f"must be a whole number from 0 to {MAX_NODES}")
        counts[name] = value
    image_id = overrides.get("imageId", settings.vm_image_id)
    if image_id is not None and (not isinstance(image_id, str) or not GALLERY_IMAGE_ID.fullmatch(image_id)):
        bad("imageId", "must be a Shared Image Gallery image or image version resource id "
                       "(/subscriptions/.../galleries/G/images/I[/versions/V])")
    sku = overrides.get("nodeAgentSkuId")
    if sku is not None and (not isinstance(sku, str) or not NODE_AGENT_SKU.fullmatch(sku)):
        bad("nodeAgentSkuId", "must be a Batch node agent SKU id such as 'batch.node.ubuntu 24.04'")
    metadata = overrides.get("metadata", {})  # absent is none; null, 0 or [] is refused below
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and k and isinstance(v, str)
                                                 for k, v in metadata.items()):
        bad("metadata", "must be an object of non-empty names to string values")
        metadata = {}
    if problems:
        raise InputError.from_problems(problems, "invalid pool request")
    return PoolRequest(pool_id, vm_size, counts["dedicatedNodes"], counts["spotNodes"], image_id or None, sku,
                       dict(metadata))


# --- the pure builder --------------------------------------------------------------------------


def cluster_container(pool_id: str) -> str:
    """The private per-pool container nodes of an `auto` pool coordinate through (Batch ids allow
    upper case and '_', container names do not)."""
    name = re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", f"k8s-{pool_id.lower()}")).strip("-")
    return name[:63].rstrip("-")


def start_task_command() -> str:
    """The bootstrap runs under bash from the start task's working directory (its resource file)."""
    return "/bin/bash -c " + shlex.quote(f'exec /bin/bash "$AZ_BATCH_NODE_STARTUP_DIR/wd/{BOOTSTRAP_BLOB}"')


def _image_reference(request: PoolRequest) -> dict[str, str]:
    if request.image_id:
        return {"virtualMachineImageId": request.image_id}
    return dict(MARKETPLACE_IMAGE)


def build_pool_spec(settings: Settings, overrides: dict[str, Any] | PoolRequest | None = None, *,
                    start_task_url: str, cluster_sas_url: str | None = None,
                    cluster_blob_urls: dict[str, str] | None = None,
                    node_agent_sku: str) -> batch_models.BatchPoolCreateOptions:
    """The create-pool request for these settings and overrides; sends nothing.

    The start task runs the bootstrap script (a resource file from the apps container) as the
    pool's admin auto-user, so workflow tasks under the same identity can read the private admin
    kubeconfig; it is retried and nodes take no tasks until it succeeds.
    """
    from azure.batch import models as m

    request = overrides if isinstance(overrides, PoolRequest) else pool_request(settings, overrides)
    environment = [m.EnvironmentSetting(name="K8S_VERSION", value=settings.k8s_version),
                   m.EnvironmentSetting(name="K8S_NODE_ROLE", value=settings.k8s_node_role)]
    identity = node_identity(settings)
    if settings.k8s_node_role == "auto":
        if not cluster_sas_url:
            raise ConfigError("K8S_NODE_ROLE=auto needs the per-pool container URL (K8S_CLUSTER_SAS_URL)",
                              details=[{"field": "K8S_NODE_ROLE", "message": "auto needs a cluster container"}])
        if identity:  # the nodes sign in with the pool identity: the plain URL, and the client id to ask IMDS for
            environment += [m.EnvironmentSetting(name="K8S_CLUSTER_URL", value=cluster_sas_url),
                            m.EnvironmentSetting(name="K8S_STORAGE_CLIENT_ID", value=settings.pool_identity_client_id)]
        else:
            environment.append(m.EnvironmentSetting(name="K8S_CLUSTER_SAS_URL", value=cluster_sas_url))
            environment += [m.EnvironmentSetting(name=name, value=url)
                            for name, url in sorted((cluster_blob_urls or {}).items())]
    admin = m.UserIdentity(auto_user=m.AutoUserSpecification(scope="pool", elevation_level="admin"))
    start_task = m.BatchStartTask(
        command_line=start_task_command(),
        resource_files=[m.ResourceFile(http_url=start_task_url, file_path=BOOTSTRAP_BLOB, file_mode="0755",
                                       identity_reference=identity)],
        environment_settings=environment, user_identity=admin,
        max_task_retry_count=START_TASK_RETRIES, wait_for_success=True)
    vm_config = m.VirtualMachineConfiguration(image_reference=m.BatchVmImageReference(**_snake(
        _image_reference(request))), node_agent_sku_id=node_agent_sku)
    if settings.acr_name:
        server = settings.acr_name if "." in settings.acr_name else f"{settings.acr_name}.azurecr.io"
        registry = m.ContainerRegistryReference(
            registry_server=server, username=settings.acr_user,
            password=settings.acr_password.reveal() if settings.acr_password else None)
        vm_config.container_configuration = m.BatchContainerConfiguration(type="dockerCompatible",
                                                                           container_registries=[registry])
    users = None
    if settings.batch_user_name and settings.batch_user_password:
        users = [m.UserAccount(name=settings.batch_user_name, password=settings.batch_user_password.reveal(),
                               elevation_level=settings.batch_user_elevation)]
    metadata = [m.BatchMetadataItem(name="created-by", value="batchk8s")]
    metadata += [m.BatchMetadataItem(name=k, value=v) for k, v in sorted(request.metadata.items())]
    return m.BatchPoolCreateOptions(
        id=request.id, vm_size=request.vm_size, virtual_machine_configuration=vm_config,
        target_dedicated_nodes=request.dedicated_nodes, target_low_priority_nodes=request.spot_nodes,
        start_task=start_task, user_accounts=users, metadata=metadata,
        task_slots_per_node=AUTO_TASK_SLOTS if settings.k8s_node_role == "auto" else 1,
        enable_inter_node_communication=settings.k8s_node_role == "auto")


def node_identity(settings: Settings) -> batch_models.BatchNodeIdentityReference | None:
    """The pool identity nodes fetch resource files with (None: they use SAS URLs)."""
    if not settings.pool_identity_id:
        return None
    from azure.batch import models as m

    return m.BatchNodeIdentityReference(resource_id=settings.pool_identity_id)


def requested_document(settings: Settings, spec: batch_models.BatchPoolCreateOptions) -> dict[str, Any]:
    """The create request as REST JSON, with the identity the pool is created with (which the data-plane
    request cannot carry), so it compares with an existing pool as the data plane reports it."""
    from batchk8s.batch.management import data_plane_identity

    document = spec.as_dict()
    if settings.pool_identity_id:
        document["identity"] = data_plane_identity(settings.pool_identity_id)
    return document


def _snake(reference: dict[str, str]) -> dict[str, str]:
    return {re.sub(r"([A-Z])", lambda g: "_" + g.group(1).lower(), key): value for key, value in reference.items()}


def resolve_node_agent_sku(images: list[dict[str, Any]], request: PoolRequest,
                           definition: ImageDefinition | None = None,
                           image_field: str = "AZURE_BATCH_VM_IMAGE_ID") -> str:
    """The node agent SKU for the pool's image, from the account's supported images.

    A marketplace image must be in the list. A gallery image is what its `definition` says: a Windows
    one is refused (400 naming `image_field`, the setting or request field that chose it); a Linux one gets
    the SKU of the supported image with the same publisher/offer/sku, else of the distribution and
    version its identifier names (ubuntu 24.04, el 9, debian 12...); one that matches nothing is
    refused too. The request's `nodeAgentSkuId` overrides the match and must be one the account supports.
    """
    now = datetime.now(UTC)
    usable = [image for image in images if str(image.get("osType", "")).lower() == "linux"
              and not _past(image.get("batchSupportEndOfLife"), now)]
    skus = {image["nodeAgentSKUId"] for image in usable}
    if definition is not None and definition.os_type.lower() != "linux":
        raise InputError.for_field(image_field, f"gallery image {definition.identifier} is a {definition.os_type} "
                                                "image; the Kubernetes bootstrap needs a Linux image")
    if request.node_agent_sku_id:
        if request.node_agent_sku_id not in skus:
            raise InputError.for_field("nodeAgentSkuId", f"{request.node_agent_sku_id!r} is not a Linux node agent "
                                       f"SKU this Batch account supports ({', '.join(sorted(skus)) or 'none'})")
        return request.node_agent_sku_id
    if definition is not None:
        return _gallery_sku(definition, usable, skus, image_field)
    for image in usable:
        reference = {k.lower(): str(v).lower() for k, v in (image.get("imageReference") or {}).items()}
        if all(reference.get(key) == MARKETPLACE_IMAGE[key] for key in ("publisher", "offer", "sku")):
            return image["nodeAgentSKUId"]
    image = "/".join(MARKETPLACE_IMAGE[k] for k in ("publisher", "offer", "sku"))
    raise ConfigError(f"no node agent SKU of this Batch account supports {image}; Linux SKUs it offers: "
                      f"{', '.join(sorted(skus)) or 'none'} (pass nodeAgentSkuId for a gallery image)",
                      code="NodeAgentSkuNotFound")


# The distribution and version a gallery identifier names -> the node agent SKU Batch gives it.
DISTRIBUTIONS = (
    (re.compile(r"ubuntu.*?(\d{2})[._-]?(\d{2})"), "batch.node.ubuntu {0}.{1}"),
    (re.compile(r"(?:rhel|redhat|alma|rocky|centos)\D*?(\d{1,2})\b"), "batch.node.el {0}"),
    (re.compile(r"debian\D*?(\d{1,2})\b"), "batch.node.debian {0}"),
)


def _gallery_sku(definition: ImageDefinition, usable: list[dict[str, Any]], skus: set[str], image_field: str) -> str:
    wanted = (definition.publisher.lower(), definition.offer.lower(), definition.sku.lower())
    for image in usable:
        reference = image.get("imageReference") or {}
        if tuple(str(reference.get(key, "")).lower() for key in ("publisher", "offer", "sku")) == wanted:
            return image["nodeAgentSKUId"]
    text = " ".join(wanted)
    for pattern, template in DISTRIBUTIONS:
        found = pattern.search(text)
        if found is None:
            continue
        sku = template.format(*found.groups())
        if (definition.architecture or "").lower() == "arm64":
            sku += " arm64"
        if sku in skus:
            return sku
    raise InputError.for_field(image_field, f"gallery image {definition.identifier} ({definition.os_type}) matches "
                                            "no node agent SKU this Batch account supports "
                                            f"({', '.join(sorted(skus)) or 'none'}); name one with nodeAgentSkuId "
                                            "(CLI: --node-agent-sku)")


def _past(value: Any, now: datetime) -> bool:
    if not value:
        return False
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment < now


# --- comparing specs ---------------------------------------------------------------------------


def _strip_query(url: Any) -> Any:
    if not isinstance(url, str) or "?" not in url:
        return url
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def comparable(spec: dict[str, Any]) -> dict[str, Any]:
    """The parts of a pool (create request or existing pool, REST names) that make it 'the same pool'.

    SAS signatures and passwords differ on every build or are not returned, so URLs are compared
    without their query and registries/users by name; node counts are left to resize.
    """
    vm = spec.get("virtualMachineConfiguration") or {}
    start = spec.get("startTask") or {}
    container = vm.get("containerConfiguration") or {}
    lower = lambda value: value.lower() if isinstance(value, str) else value  # noqa: E731
    return {
        "vmSize": lower(spec.get("vmSize")),
        "imageReference": {k: lower(v) for k, v in (vm.get("imageReference") or {}).items()
                           if k in ("publisher", "offer", "sku", "version", "virtualMachineImageId") and v},
        "nodeAgentSKUId": lower(vm.get("nodeAgentSKUId")),
        "containerRegistries": sorted(lower(r.get("registryServer")) for r in container.get("containerRegistries")
                                      or []),
        "startTask.commandLine": start.get("commandLine"),
        "startTask.environmentSettings": {e["name"]: _strip_query(e.get("value"))
                                          for e in start.get("environmentSettings") or []},
        "startTask.resourceFiles": sorted((_strip_query(r.get("httpUrl")), r.get("filePath"),
                                           lower((r.get("identityReference") or {}).get("resourceId")))
                                          for r in start.get("resourceFiles") or []),
        "identity": sorted(lower(i.get("resourceId")) for i in (spec.get("identity") or {}).get(
            "userAssignedIdentities") or [] if isinstance(i, dict)),
        "startTask.userIdentity": start.get("userIdentity"),
        "startTask.maxTaskRetryCount": start.get("maxTaskRetryCount"),
        "startTask.waitForSuccess": start.get("waitForSuccess"),
        "taskSlotsPerNode": spec.get("taskSlotsPerNode") or 1,
        "userAccounts": sorted((u.get("name"), lower(u.get("elevationLevel") or "nonadmin"))
                               for u in spec.get("userAccounts") or []),
        "metadata": {item["name"]: item.get("value") for item in spec.get("metadata") or []},
    }


def spec_differences(requested: dict[str, Any], existing: dict[str, Any]) -> list[dict[str, Any]]:
    wanted, found = comparable(requested), comparable(existing)
    return [{"field": name, "message": f"existing {excerpt(found[name])}, requested {excerpt(wanted[name])}",
             "existing": found[name], "requested": wanted[name]}
            for name in wanted if wanted[name] != found[name]]


def redacted(document: Any) -> Any:
    """A request/response document fit for output: passwords masked, SAS query strings dropped."""
    if isinstance(document, dict):
        return {key: "***" if key.lower() == "password" else redacted(value) for key, value in document.items()}
    if isinstance(document, list):
        return [redacted(item) for item in document]
    if isinstance(document, str) and document.startswith(("http://", "https://")) and "sig=" in document:
        from batchk8s.storage import mask_url

        return mask_url(document)
    return document


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


def sas_report(pool: batch_models.BatchPool, now: datetime) -> dict[str, Any]:
    """`startTaskSasExpiry` and, when it is near or past, a warning that says what breaks and what renews it."""
    expiry = start_task_sas_expiry(pool)
    report: dict[str, Any] = {"startTaskSasExpiry": expiry.isoformat().replace("+00:00", "Z") if expiry else None,
                              "warnings": []}
    if expiry is not None and expiry - now < SAS_WARNING:
        when = "expired" if expiry <= now else "expires"
        report["warnings"].append({
            "code": "StartTaskSasExpiring",
            "message": f"the SAS URLs in pool {pool.id}'s start task {when} at {report['startTaskSasExpiry']}: a node "
                       "allocated or rebooted after that cannot download its bootstrap (or join an auto cluster); "
                       "create the pool again with the same spec or resize it to renew them"})
    return report


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
                timeout: float = 1800, waiter: Waiter | None = None, deadline: Deadline | None = None) -> dict[str,
                                                                                                               Any]:
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
    result = pool_status(settings, request.id, wait=wait, timeout=timeout, waiter=waiter, deadline=deadline)
    result["created"] = created
    if not created and (result["targetDedicatedNodes"], result["targetSpotNodes"]) != (request.dedicated_nodes,
                                                                                        request.spot_nodes):
        result["note"] = (f"reused the existing pool with {result['targetDedicatedNodes']} dedicated and "
                          f"{result['targetSpotNodes']} spot nodes; resize it to change the counts")
    return result



def _node_summary(node: batch_models.BatchNode) -> dict[str, Any]:
    info = node.start_task_info
    state = text(node.state)
    summary: dict[str, Any] = {"id": node.id, "state": state, "class": node_class(state),
                               "dedicated": node.is_dedicated, "ipAddress": node.ip_address}
    if info is not None:
        start: dict[str, Any] = {"state": text(info.state), "exitCode": info.exit_code,
                                 "retryCount": info.retry_count, "result": text(info.result)}
        if info.failure_info is not None:
            start["failure"] = {"category": text(info.failure_info.category), "code": info.failure_info.code,
                                "message": info.failure_info.message}
        summary["startTask"] = start
    return summary


def _start_task_stderr(settings: Settings, pool_id: str, node_id: str, *,
                       deadline: Deadline | None = None) -> str | None:
    from azure.core.exceptions import AzureError

    client = batch_client(settings, deadline)
    try:
        return tail(client.download_node_file(pool_id, node_id, "startup/stderr.txt"))
    except AzureError:
        return None  # not there yet (node still booting) or the node left: status goes on without it


def _with_stderr(settings: Settings, pool_id: str, nodes: list[dict[str, Any]], *,
                 deadline: Deadline | None = None) -> None:
    started = [n for n in nodes if "startTask" in n]
    started.sort(key=lambda n: n["state"] != "starttaskfailed")
    chosen = started[:STDERR_NODES]
    if not chosen:
        return
    with ThreadPoolExecutor(max_workers=min(8, len(chosen))) as pool:
        tails = pool.map(lambda n: _start_task_stderr(settings, pool_id, n["id"], deadline=deadline), chosen)
        for node, text in zip(chosen, tails, strict=True):
            node["startTask"]["stderrTail"] = text


def _resize_errors(pool: batch_models.BatchPool) -> list[dict[str, Any]]:
    return [{"code": e.code, "message": e.message, "values": {v.name: v.value for v in e.error_values or []}}
            for e in pool.resize_errors or []]


def pool_verdict(settings: Settings, pool_id: str, *, deadline: Deadline | None = None) -> PoolVerdict:
    """The pool's verdict from two light reads (the pool, and node states only): for waits that only
    need to know whether the pool can still run tasks."""
    client = batch_client(settings, deadline)
    what = f"pool {pool_id}"
    pool = call(what, client.get_pool, pool_id, select=["id", "state", "allocationState", "resizeErrors"])
    states = [text(n.state) for n in call(what, lambda: list(client.list_nodes(pool_id, select=["id", "state"])))]
    return judge_pool(text(pool.state), text(pool.allocation_state), states,
                      [e["code"] for e in _resize_errors(pool)])


def _status(settings: Settings, pool_id: str, *, deadline: Deadline | None = None) -> dict[str, Any]:
    client = batch_client(settings, deadline)
    what = f"pool {pool_id}"
    pool = call(what, client.get_pool, pool_id)
    nodes = [_node_summary(n) for n in call(what, lambda: list(client.list_nodes(pool_id)))]
    _with_stderr(settings, pool_id, nodes, deadline=deadline)
    counts: dict[str, int] = {}
    for node in nodes:
        counts[node["state"]] = counts.get(node["state"], 0) + 1
    vm = pool.virtual_machine_configuration
    errors = _resize_errors(pool)
    verdict = judge_pool(text(pool.state), text(pool.allocation_state), [n["state"] for n in nodes],
                         [e["code"] for e in errors])
    return {
        "id": pool.id, "state": text(pool.state), "allocationState": text(pool.allocation_state),
        "vmSize": pool.vm_size,
        "image": redacted(vm.image_reference.as_dict()) if vm else None,
        "nodeAgentSkuId": vm.node_agent_sku_id if vm else None,
        "taskSlotsPerNode": pool.task_slots_per_node or 1,
        "targetDedicatedNodes": pool.target_dedicated_nodes or 0, "targetSpotNodes": pool.target_low_priority_nodes
        or 0, "currentDedicatedNodes": pool.current_dedicated_nodes, "currentSpotNodes":
        pool.current_low_priority_nodes, "resizeErrors": errors, "nodeCounts": counts, "nodes": nodes,
        **verdict.to_dict(), **sas_report(pool, datetime.now(UTC)),
    }


def pool_status(settings: Settings, pool_id: str, *, wait: bool = False, timeout: float = 1800,
                waiter: Waiter | None = None, deadline: Deadline | None = None) -> dict[str, Any]:
    """Allocation state, resize errors, node counts by state and class, each node's start task, and
    the verdict (`ready`, `settled`, `failed`, `reason`; see node_states).

    With `wait`, read again (with backoff) until the pool is settled: every node ready, or nothing
    left that can change without an action (a preempted spot node, a failed start task, a pool being
    deleted). The answer's `reason` says which.
    """
    _check_pool_id(pool_id)
    if not wait:
        return _status(settings, pool_id, deadline=deadline)

    def probe() -> tuple[bool, dict[str, Any]]:
        status = _status(settings, pool_id, deadline=deadline)
        return status["settled"], status

    return (waiter or Waiter()).until(probe, timeout, f"pool {pool_id}", deadline=deadline)


def _check_pool_id(pool_id: str, field_name: str = "poolId") -> None:
    if not isinstance(pool_id, str) or not BATCH_ID.fullmatch(pool_id):
        raise InputError.for_field(field_name, "must be 1-64 letters, digits, '-' or '_'")


def resize_pool(settings: Settings, pool_id: str, body: dict[str, Any], *, wait: bool = False,
                timeout: float = 1800, waiter: Waiter | None = None, deadline: Deadline | None = None) -> dict[str,
                                                                                                               Any]:
    """Resize to `dedicatedNodes`/`spotNodes` (each optional; the other keeps its target)."""
    from azure.batch import models as m

    _check_pool_id(pool_id)
    problems = [{"field": name, "message": "unknown field; expected dedicatedNodes and/or spotNodes"}
                for name in sorted(set(body) - {"dedicatedNodes", "spotNodes"})]
    for name in ("dedicatedNodes", "spotNodes"):
        value = body.get(name)
        if name in body and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_NODES):
            problems.append({"field": name, "message": f"must be a whole number from 0 to {MAX_NODES}"})
    if not problems and body.get("dedicatedNodes") is None and body.get("spotNodes") is None:
        problems.append({"field": "dedicatedNodes", "message": "give dedicatedNodes, spotNodes or both"})
    if problems:
        raise InputError.from_problems(problems, "invalid resize request")
    client = batch_client(settings, deadline)
    what = f"pool {pool_id}"
    # A resize (a schedule's morning scale-up among them) allocates nodes that run the start task now.
    renew_start_task(settings, call(what, client.get_pool, pool_id, select=["id", "eTag", "startTask"]),
                     deadline=deadline)
    options = m.BatchPoolResizeOptions(target_dedicated_nodes=body.get("dedicatedNodes"),
                                       target_low_priority_nodes=body.get("spotNodes"))
    request_pool_resize(client, pool_id, options, what)
    if not wait:
        return _status(settings, pool_id, deadline=deadline)

    def probe() -> tuple[bool, dict[str, Any]]:
        status = _status(settings, pool_id, deadline=deadline)
        return status["allocationState"] == "steady", status

    status = (waiter or Waiter()).until(probe, timeout, f"resize of {what}", deadline=deadline)
    if status["resizeErrors"]:
        first = status["resizeErrors"][0]
        raise UpstreamError(f"{what} resize finished with errors: "
                            + "; ".join(f"{e['code']}: {e['message']}" for e in status["resizeErrors"]),
                            code=first["code"] or "ResizeError",
                            details=[{"field": "resizeErrors", "message": f"{e['code']}: {e['message']}"}
                                     for e in status["resizeErrors"]])
    return status


def delete_pool(settings: Settings, pool_id: str, *, wait: bool = False, timeout: float = 1800,
                waiter: Waiter | None = None, deadline: Deadline | None = None) -> dict[str, Any]:
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
        return {"id": pool_id, "state": "deleted"}
    return {"id": pool_id, "state": "deleting"}


def planned_pool(settings: Settings, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The create-pool request with placeholder URLs (for `plan`: no network, no SAS issued)."""
    request = pool_request(settings, overrides)
    sku = request.node_agent_sku_id or "<resolved from the account's supported images>"
    cluster = f"<placeholder: SAS for container {cluster_container(request.id)}>" \
        if settings.k8s_node_role == "auto" else None
    blobs = {}
    if settings.pool_identity_id and cluster:
        cluster = f"<container URL of {cluster_container(request.id)}: the nodes use the pool identity>"
    elif cluster:
        cluster = f"<placeholder: read-only SAS for container {cluster_container(request.id)}>"
        blobs = {name: f"<placeholder: '{letters}' SAS for {cluster_container(request.id)}/{blob}>"
                 for name, (blob, letters) in CLUSTER_BLOB_URLS.items()}
    spec = build_pool_spec(settings, request, start_task_url=_planned_blob_url(settings), cluster_sas_url=cluster,
                           cluster_blob_urls=blobs, node_agent_sku=sku)
    return redacted(requested_document(settings, spec))


def _planned_blob_url(settings: Settings) -> str:
    """The bootstrap blob's URL (no network: the client only formats it) with a marked SAS placeholder."""
    from batchk8s import storage
    from batchk8s.errors import BatchK8sError

    try:
        url = storage.blob_url(settings, settings.app_container, BOOTSTRAP_BLOB)
    except BatchK8sError:
        url = f"<storage account>/{settings.app_container}/{BOOTSTRAP_BLOB}"
    return url if settings.pool_identity_id else f"{url}?{SAS_PLACEHOLDER}"
