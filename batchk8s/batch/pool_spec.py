"""Pure pool-spec builders: settings and a request in, the create-pool request (and what it is compared by) out.

Nothing here talks to Azure or Storage, so `plan` shows exactly what `create_pool` would send and every
rule is testable without a client: the request's validation (`pool_request`, `resize_request`), the
create request (`build_pool_spec`), the node agent SKU chosen from the account's supported images
(`resolve_node_agent_sku`, given the list), what makes two pools the same (`comparable`,
`spec_differences`: node counts are not part of it, they change with resize) and the redaction of
documents for output. Azure SDK models are imported inside the functions that build them, so importing
this module loads no SDK. The effects (create-or-reuse, status, resize, delete) are in `pools`.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from batchk8s.batch.gallery import ImageDefinition
from batchk8s.errors import ConfigError, InputError, excerpt
from batchk8s.problems import Problems
from batchk8s.settings import BATCH_ID, BATCH_ID_RULE, GALLERY_IMAGE_ID, VM_SIZE, Settings

if TYPE_CHECKING:
    from azure.batch import models as batch_models

BOOTSTRAP_BLOB = "k8s-node-setup.sh"
MARKETPLACE_IMAGE = {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"}
START_TASK_RETRIES = 3
MAX_NODES = 1000
NODE_AGENT_SKU = re.compile(r"^batch\.node\.[a-z0-9. ]{1,60}$")
OVERRIDE_FIELDS = ("id", "vmSize", "dedicatedNodes", "spotNodes", "imageId", "nodeAgentSkuId", "metadata")
RESIZE_FIELDS = ("dedicatedNodes", "spotNodes")
SAS_PLACEHOLDER = "<placeholder: read-only SAS issued at create time>"
# Workflow tasks are kubectl/curl clients (the work runs in Kubernetes pods). On an `auto` pool they all go to
# the control-plane node, and Batch's affinity is only a preference: with one slot, parallel tasks (k8s-info)
# would overflow onto workers, which have no kubeconfig. 4 is within Batch's limit for any size (4 x vCPUs).
AUTO_TASK_SLOTS = 4
# An `auto` pool without an identity: each node reads the cluster container with a read-only SAS and writes
# only these blobs, each through a SAS for that blob alone. The lock may only be created (never overwritten,
# leased or deleted): it pins the control plane's API endpoint and CA, so a worker joins nothing else, whoever
# writes join-command (which the control plane rewrites every few hours).
CLUSTER_BLOB_URLS = {"K8S_CLUSTER_CLAIM_URL": ("control-plane.lock", "c"),
                     "K8S_CLUSTER_JOIN_URL": ("join-command", "cw"),
                     "K8S_CLUSTER_RECORD_URL": ("control-plane.json", "cw")}


# --- the requests ------------------------------------------------------------------------------


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
    problems = Problems()
    problems.unknown_fields(overrides, OVERRIDE_FIELDS)
    pool_id = problems.matches("id", overrides.get("id", settings.pool_id), BATCH_ID, BATCH_ID_RULE)
    vm_size = problems.matches("vmSize", overrides.get("vmSize", settings.vm_size), VM_SIZE,
                               "must be an Azure VM size such as STANDARD_D2_V3")
    counts = {name: problems.whole_number(name, overrides.get(name, default), 0, MAX_NODES)
              for name, default in (("dedicatedNodes", settings.node_count), ("spotNodes", settings.spot_node_count))}
    image_id = overrides.get("imageId", settings.vm_image_id)
    if image_id is not None:
        problems.matches("imageId", image_id, GALLERY_IMAGE_ID, "must be a Shared Image Gallery image or image "
                         "version resource id (/subscriptions/.../galleries/G/images/I[/versions/V])")
    sku = overrides.get("nodeAgentSkuId")
    if sku is not None:
        problems.matches("nodeAgentSkuId", sku, NODE_AGENT_SKU,
                         "must be a Batch node agent SKU id such as 'batch.node.ubuntu 24.04'")
    metadata = overrides.get("metadata", {})  # absent is none; null, 0 or [] is refused below
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and k and isinstance(v, str)
                                                 for k, v in metadata.items()):
        problems.add("metadata", "must be an object of non-empty names to string values")
    problems.raise_if_any("invalid pool request")
    return PoolRequest(pool_id, vm_size, counts["dedicatedNodes"], counts["spotNodes"], image_id or None, sku,
                       dict(metadata))


@dataclass(frozen=True)
class PoolResize:
    """A validated resize: the new targets; None keeps that kind's current target."""

    dedicated_nodes: int | None
    spot_nodes: int | None


def resize_request(body: dict[str, Any]) -> PoolResize:
    """Validate a resize body (`dedicatedNodes`/`spotNodes`, each optional, not both absent); every problem at once."""
    problems = Problems()
    problems.unknown_fields(body, RESIZE_FIELDS)
    for name in RESIZE_FIELDS:
        if name in body:
            problems.whole_number(name, body[name], 0, MAX_NODES)
    if not problems and body.get("dedicatedNodes") is None and body.get("spotNodes") is None:
        problems.add("dedicatedNodes", "give dedicatedNodes, spotNodes or both")
    problems.raise_if_any("invalid resize request")
    return PoolResize(body.get("dedicatedNodes"), body.get("spotNodes"))


def resize_options(resize: PoolResize) -> batch_models.BatchPoolResizeOptions:
    """The resize request Batch is sent (a target left None is left as it is)."""
    from azure.batch import models as m

    return m.BatchPoolResizeOptions(target_dedicated_nodes=resize.dedicated_nodes,
                                    target_low_priority_nodes=resize.spot_nodes)


# --- the create request ------------------------------------------------------------------------


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
                           image_field: str = "AZURE_BATCH_VM_IMAGE_ID", now: datetime | None = None) -> str:
    """The node agent SKU for the pool's image, from the account's supported images.

    A marketplace image must be in the list. A gallery image is what its `definition` says: a Windows
    one is refused (400 naming `image_field`, the setting or request field that chose it); a Linux one gets
    the SKU of the supported image with the same publisher/offer/sku, else of the distribution and
    version its identifier names (ubuntu 24.04, el 9, debian 12...); one that matches nothing is
    refused too. The request's `nodeAgentSkuId` overrides the match and must be one the account supports.
    Images whose Batch support ended before `now` (default: this moment) are not offered.
    """
    now = now or datetime.now(UTC)
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


# --- the plan ----------------------------------------------------------------------------------


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
