"""Batch pools whose start task bootstraps Kubernetes: spec, create-or-reuse, status, resize, delete.

`build_pool_spec` is pure (settings + request + URLs -> the create request), so `plan` shows exactly
what `create_pool` would send. Creating is idempotent: an existing pool with the same spec is
reused, one with a different spec is a 409 that lists every field that differs (node counts are
not part of the spec: they change with resize). A resize can "finish" with resize errors (quota,
capacity), so status and resize report `resizeErrors`, not just the allocation state.
"""

from __future__ import annotations

import logging
import re
import shlex
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from batchk8s.batch.client import batch_client, call, request_pool_delete, request_pool_resize, text, translated
from batchk8s.batch.gallery import ImageDefinition, read_definition
from batchk8s.batch.node_states import PoolVerdict, judge_pool, node_class
from batchk8s.batch.polling import Waiter, tail
from batchk8s.errors import ConfigError, ConflictError, InputError, UpstreamError
from batchk8s.settings import BATCH_ID, GALLERY_IMAGE_ID, VM_SIZE, Settings

if TYPE_CHECKING:
    from azure.batch import models as batch_models

log = logging.getLogger("batchk8s.batch.pools")

BOOTSTRAP_BLOB = "k8s-node-setup.sh"
MARKETPLACE_IMAGE = {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"}
START_TASK_RETRIES = 3
MAX_NODES = 1000
STDERR_NODES = 32  # start-task stderr tails fetched per status call (failed nodes first)
OVERRIDE_FIELDS = ("id", "vmSize", "dedicatedNodes", "spotNodes", "imageId", "nodeAgentSkuId", "metadata")
SAS_PLACEHOLDER = "<placeholder: read-only SAS issued at create time>"
# Workflow tasks are kubectl/curl clients (the work runs in Kubernetes pods). On an `auto` pool they all go to
# the control-plane node, and Batch's affinity is only a preference: with one slot, parallel tasks (k8s-info)
# would overflow onto workers, which have no kubeconfig. 4 is within Batch's limit for any size (4 x vCPUs).
AUTO_TASK_SLOTS = 4


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
    if not isinstance(pool_id, str) or not BATCH_ID.match(pool_id):
        bad("id", "must be 1-64 letters, digits, '-' or '_'")
    vm_size = overrides.get("vmSize", settings.vm_size)
    if not isinstance(vm_size, str) or not VM_SIZE.match(vm_size):
        bad("vmSize", "must be an Azure VM size such as STANDARD_D2_V3")
    counts = {}
    for name, default in (("dedicatedNodes", settings.node_count), ("spotNodes", settings.spot_node_count)):
        value = overrides.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_NODES:
            bad(name, f"must be a whole number from 0 to {MAX_NODES}")
        counts[name] = value
    image_id = overrides.get("imageId", settings.vm_image_id)
    if image_id is not None and (not isinstance(image_id, str) or not GALLERY_IMAGE_ID.match(image_id)):
        bad("imageId", "must be a Shared Image Gallery image or image version resource id "
                       "(/subscriptions/.../galleries/G/images/I[/versions/V])")
    sku = overrides.get("nodeAgentSkuId")
    if sku is not None and (not isinstance(sku, str) or not re.match(r"^batch\.node\.[a-z0-9. ]{1,60}$", sku)):
        bad("nodeAgentSkuId", "must be a Batch node agent SKU id such as 'batch.node.ubuntu 24.04'")
    metadata = overrides.get("metadata") or {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and k and isinstance(v, str)
                                                 for k, v in metadata.items()):
        bad("metadata", "must be an object of non-empty names to string values")
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
    if settings.k8s_node_role == "auto":
        if not cluster_sas_url:
            raise ConfigError("K8S_NODE_ROLE=auto needs the per-pool container URL (K8S_CLUSTER_SAS_URL)",
                              details=[{"field": "K8S_NODE_ROLE", "message": "auto needs a cluster container"}])
        environment.append(m.EnvironmentSetting(name="K8S_CLUSTER_SAS_URL", value=cluster_sas_url))
    admin = m.UserIdentity(auto_user=m.AutoUserSpecification(scope="pool", elevation_level="admin"))
    start_task = m.BatchStartTask(
        command_line=start_task_command(),
        resource_files=[m.ResourceFile(http_url=start_task_url, file_path=BOOTSTRAP_BLOB, file_mode="0755")],
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
        "startTask.resourceFiles": sorted((_strip_query(r.get("httpUrl")), r.get("filePath"))
                                          for r in start.get("resourceFiles") or []),
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
    return [{"field": name, "message": f"existing {found[name]!r}, requested {wanted[name]!r}",
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


# --- effects -----------------------------------------------------------------------------------


def supported_images(settings: Settings) -> list[dict[str, Any]]:
    client = batch_client(settings)
    return [image.as_dict() for image in call("supported images", lambda: list(client.list_supported_images()))]


def _urls(settings: Settings, request: PoolRequest) -> tuple[str, str | None]:
    """The bootstrap's read SAS and, for an `auto` pool, its cluster container's SAS.

    The cluster container outlives a pool deleted under the same id; when no pool of this id exists,
    what is left in it is stale and is removed before the new pool's nodes start electing.
    """
    from batchk8s import storage

    start_task_url = storage.blob_sas_url(settings, settings.app_container, BOOTSTRAP_BLOB)
    if settings.k8s_node_role != "auto":
        return start_task_url, None
    name = cluster_container(request.id)
    sharing = _pools_with_container(settings, name)
    others = sorted(pool for pool in sharing if pool.lower() != request.id.lower())
    if others:
        # Ids that differ only in '_' vs '-' (or beyond 59 characters) share a container name: clearing it and
        # handing out its SAS would break the live cluster of the other pool and join the two.
        raise ConflictError(f"pool {request.id} would share its cluster container {name} with the existing pool "
                            f"{others[0]}: choose an id that differs from it in more than '_' and '-'",
                            code="ClusterContainerInUse",
                            details=[{"field": "id", "message": f"shares cluster container {name} with {others[0]}"}])
    container = storage.ensure_container(settings, name)
    if not sharing:
        stale = storage.empty_container(settings, container)
        if stale:
            log.warning("removed %s left in %s by an earlier pool %s", ", ".join(stale), container, request.id)
    return start_task_url, storage.container_sas_url(settings, container, permission="racwl")


def _pools_with_container(settings: Settings, container: str) -> list[str]:
    """Ids of existing pools whose cluster container is `container` (one listing of pool ids)."""
    client = batch_client(settings)
    listed = call("pools", lambda: [pool.id for pool in client.list_pools(select=["id"])])
    return [pool_id for pool_id in listed if pool_id and cluster_container(pool_id) == container]


def create_pool(settings: Settings, overrides: dict[str, Any] | None = None, *, wait: bool = False,
                timeout: float = 1800, waiter: Waiter | None = None) -> dict[str, Any]:
    """Create the pool, or reuse an identical existing one; 409 naming each difference otherwise."""
    from azure.core.exceptions import ResourceExistsError

    settings.require("batch")
    request = pool_request(settings, overrides)
    client = batch_client(settings)
    image_field = "imageId" if (overrides or {}).get("imageId") else "AZURE_BATCH_VM_IMAGE_ID"
    definition = read_definition(settings, request.image_id, image_field) if request.image_id else None
    sku = resolve_node_agent_sku(supported_images(settings), request, definition, image_field)
    start_task_url, cluster_url = _urls(settings, request)
    spec = build_pool_spec(settings, request, start_task_url=start_task_url, cluster_sas_url=cluster_url,
                           node_agent_sku=sku)
    what = f"pool {request.id}"
    try:
        client.create_pool(spec)
        created = True
        log.info("created %s (%s, %d dedicated, %d spot)", what, request.vm_size, request.dedicated_nodes,
                 request.spot_nodes)
    except ResourceExistsError as exc:
        if getattr(exc.error, "code", None) != "PoolExists":
            raise translated(exc, what) from None  # PoolBeingDeleted: the id is not free yet
        existing = call(what, client.get_pool, request.id)
        differences = spec_differences(spec.as_dict(), existing.as_dict())
        if differences:
            raise ConflictError(f"{what} exists with a different spec: "
                                + "; ".join(f"{d['field']} ({d['message']})" for d in differences),
                                code="PoolExistsWithDifferentSpec",
                                details=[{"field": d["field"], "message": d["message"]} for d in differences],
                                ) from None
        created = False
    except Exception as exc:
        raise translated(exc, what) from None
    result = pool_status(settings, request.id, wait=wait, timeout=timeout, waiter=waiter)
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


def _start_task_stderr(settings: Settings, pool_id: str, node_id: str) -> str | None:
    from azure.core.exceptions import AzureError

    client = batch_client(settings)
    try:
        return tail(client.download_node_file(pool_id, node_id, "startup/stderr.txt"))
    except AzureError:
        return None  # not there yet (node still booting) or the node left: status goes on without it


def _with_stderr(settings: Settings, pool_id: str, nodes: list[dict[str, Any]]) -> None:
    started = [n for n in nodes if "startTask" in n]
    started.sort(key=lambda n: n["state"] != "starttaskfailed")
    chosen = started[:STDERR_NODES]
    if not chosen:
        return
    with ThreadPoolExecutor(max_workers=min(8, len(chosen))) as pool:
        tails = pool.map(lambda n: _start_task_stderr(settings, pool_id, n["id"]), chosen)
        for node, text in zip(chosen, tails, strict=True):
            node["startTask"]["stderrTail"] = text


def _resize_errors(pool: batch_models.BatchPool) -> list[dict[str, Any]]:
    return [{"code": e.code, "message": e.message, "values": {v.name: v.value for v in e.error_values or []}}
            for e in pool.resize_errors or []]


def pool_verdict(settings: Settings, pool_id: str) -> PoolVerdict:
    """The pool's verdict from two light reads (the pool, and node states only): for waits that only
    need to know whether the pool can still run tasks."""
    client = batch_client(settings)
    what = f"pool {pool_id}"
    pool = call(what, client.get_pool, pool_id, select=["id", "state", "allocationState", "resizeErrors"])
    states = [text(n.state) for n in call(what, lambda: list(client.list_nodes(pool_id, select=["id", "state"])))]
    return judge_pool(text(pool.state), text(pool.allocation_state), states,
                      [e["code"] for e in _resize_errors(pool)])


def _status(settings: Settings, pool_id: str) -> dict[str, Any]:
    client = batch_client(settings)
    what = f"pool {pool_id}"
    pool = call(what, client.get_pool, pool_id)
    nodes = [_node_summary(n) for n in call(what, lambda: list(client.list_nodes(pool_id)))]
    _with_stderr(settings, pool_id, nodes)
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
        **verdict.to_dict(),
    }


def pool_status(settings: Settings, pool_id: str, *, wait: bool = False, timeout: float = 1800,
                waiter: Waiter | None = None) -> dict[str, Any]:
    """Allocation state, resize errors, node counts by state and class, each node's start task, and
    the verdict (`ready`, `settled`, `failed`, `reason`; see node_states).

    With `wait`, read again (with backoff) until the pool is settled: every node ready, or nothing
    left that can change without an action (a preempted spot node, a failed start task, a pool being
    deleted). The answer's `reason` says which.
    """
    _check_pool_id(pool_id)
    if not wait:
        return _status(settings, pool_id)

    def probe() -> tuple[bool, dict[str, Any]]:
        status = _status(settings, pool_id)
        return status["settled"], status

    return (waiter or Waiter()).until(probe, timeout, f"pool {pool_id}")


def _check_pool_id(pool_id: str, field_name: str = "poolId") -> None:
    if not isinstance(pool_id, str) or not BATCH_ID.match(pool_id):
        raise InputError.for_field(field_name, "must be 1-64 letters, digits, '-' or '_'")


def resize_pool(settings: Settings, pool_id: str, body: dict[str, Any], *, wait: bool = False,
                timeout: float = 1800, waiter: Waiter | None = None) -> dict[str, Any]:
    """Resize to `dedicatedNodes`/`spotNodes` (each optional; the other keeps its target)."""
    from azure.batch import models as m

    _check_pool_id(pool_id)
    problems = [{"field": name, "message": "unknown field; expected dedicatedNodes and/or spotNodes"}
                for name in sorted(set(body) - {"dedicatedNodes", "spotNodes"})]
    for name in ("dedicatedNodes", "spotNodes"):
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not 0 <= value <= MAX_NODES):
            problems.append({"field": name, "message": f"must be a whole number from 0 to {MAX_NODES}"})
    if not problems and body.get("dedicatedNodes") is None and body.get("spotNodes") is None:
        problems.append({"field": "dedicatedNodes", "message": "give dedicatedNodes, spotNodes or both"})
    if problems:
        raise InputError.from_problems(problems, "invalid resize request")
    client = batch_client(settings)
    what = f"pool {pool_id}"
    options = m.BatchPoolResizeOptions(target_dedicated_nodes=body.get("dedicatedNodes"),
                                       target_low_priority_nodes=body.get("spotNodes"))
    request_pool_resize(client, pool_id, options, what)
    if not wait:
        return _status(settings, pool_id)

    def probe() -> tuple[bool, dict[str, Any]]:
        status = _status(settings, pool_id)
        return status["allocationState"] == "steady", status

    status = (waiter or Waiter()).until(probe, timeout, f"resize of {what}")
    if status["resizeErrors"]:
        first = status["resizeErrors"][0]
        raise UpstreamError(f"{what} resize finished with errors: "
                            + "; ".join(f"{e['code']}: {e['message']}" for e in status["resizeErrors"]),
                            code=first["code"] or "ResizeError",
                            details=[{"field": "resizeErrors", "message": f"{e['code']}: {e['message']}"}
                                     for e in status["resizeErrors"]])
    return status


def delete_pool(settings: Settings, pool_id: str, *, wait: bool = False, timeout: float = 1800,
                waiter: Waiter | None = None) -> dict[str, Any]:
    """Ask Batch to delete the pool; with `wait`, read until it is gone."""
    from azure.core.exceptions import ResourceNotFoundError

    _check_pool_id(pool_id)
    client = batch_client(settings)
    what = f"pool {pool_id}"
    request_pool_delete(client, pool_id, what)
    if wait:
        def probe() -> tuple[bool, None]:
            try:
                client.get_pool(pool_id)
            except ResourceNotFoundError:
                return True, None
            except Exception as exc:
                raise translated(exc, what) from None
            return False, None

        (waiter or Waiter()).until(probe, timeout, f"deletion of {what}")
        return {"id": pool_id, "state": "deleted"}
    return {"id": pool_id, "state": "deleting"}


def planned_pool(settings: Settings, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The create-pool request with placeholder URLs (for `plan`: no network, no SAS issued)."""
    request = pool_request(settings, overrides)
    sku = request.node_agent_sku_id or "<resolved from the account's supported images>"
    cluster = f"<placeholder: SAS for container {cluster_container(request.id)}>" \
        if settings.k8s_node_role == "auto" else None
    spec = build_pool_spec(settings, request, start_task_url=_planned_blob_url(settings), cluster_sas_url=cluster,
                           node_agent_sku=sku)
    return redacted(spec.as_dict())


def _planned_blob_url(settings: Settings) -> str:
    """The bootstrap blob's URL (no network: the client only formats it) with a marked SAS placeholder."""
    from batchk8s import storage
    from batchk8s.errors import BatchK8sError

    try:
        url = storage.blob_url(settings, settings.app_container, BOOTSTRAP_BLOB)
    except BatchK8sError:
        url = f"<storage account>/{settings.app_container}/{BOOTSTRAP_BLOB}"
    return f"{url}?{SAS_PLACEHOLDER}"
