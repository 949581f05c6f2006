"""Blob storage: the artifact containers, their upload, least-privilege SAS URLs and small state blobs.

This is the one module that talks to Blob storage. Nodes fetch their bootstrap script, the TESK
manifests and the sample TES tasks through SAS URLs this module issues: read-only and scoped to one
blob, never the seed's account SAS with every permission (or, on a pool with a managed identity,
through plain URLs and the identity). It also claims a shared container for one owner atomically
(`claim_container`) and re-signs an existing SAS URL with the same scope (`renewed_sas_url`).
The account key, connection strings and SAS tokens never reach a log line or an error message;
URLs are logged with their query string masked. Every function that calls Azure takes the operation's
`deadline=` (batchk8s.deadline) and makes each of its calls within it (`call_options`, `call`).

Which identity signs depends on the settings (`Settings.storage_access` decides): an account key when
AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY are given; the account name alone with the app's
Azure credential; otherwise the AzureWebJobsStorage connection string; otherwise the host's
identity-based connection (AzureWebJobsStorage__accountName / __blobServiceUri, with the managed
identity __credential / __clientId name). With an identity, SAS URLs are signed with a user
delegation key, which Azure limits to seven days.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

from batchk8s import caches
from batchk8s.deadline import Deadline
from batchk8s.errors import BLOB, ConfigError, ConflictError, InputError, UpstreamTimeoutError, azure_errors, excerpt
from batchk8s.problems import whole_number_problem
from batchk8s.settings import CONTAINER_NAME, Settings, StorageAccess

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient, UserDelegationKey

log = logging.getLogger("batchk8s.storage")

REPO_ROOT = Path(__file__).resolve().parent.parent
# Local folder -> the Settings attribute naming its container.
ARTIFACT_TREES = (("scripts", "app_container"), ("k8sresources", "k8s_container"), ("tesk-tasks", "tesk_container"))
CONTENT_TYPES = {
    ".sh": "text/x-shellscript",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".py": "text/x-python",
}
# Start SAS validity a little in the past: a node whose clock runs behind would otherwise get 403.
CLOCK_SKEW = timedelta(minutes=5)
# Azure's hard limit for a user delegation key (and so for any SAS it signs), counted from now.
MAX_DELEGATION = timedelta(days=7)
# A cached delegation key is reused while it covers the requested expiry to within this margin, so issuing
# the SAS URLs for one pool costs one key request, not one per URL.
DELEGATION_REUSE = timedelta(minutes=10)
UPLOAD_WORKERS = 8
STORAGE_SCOPE = "https://storage.azure.com/.default"
# A storage call made without the operation's deadline ends within this, retries and pauses included
# (one call is at most an artifact upload). With a deadline, the call gets what is left of it instead.
STORAGE_CALL_SECONDS = 60.0
CONTAINER_PERMISSIONS = "racwdlt"
BLOB_PERMISSIONS = "racwdt"

T = TypeVar("T")


# --- the client ------------------------------------------------------------------------------


class _Identity(NamedTuple):
    """What decides which account and credential a client uses; equal identities share one client."""

    access: StorageAccess | None
    key: str | None
    connection_string: str | None
    authority: str
    tenant: str | None
    client_id: str | None
    client_secret: str | None


_clients: dict[_Identity, BlobServiceClient] = {}
_clients_lock = threading.Lock()


def _identity(settings: Settings) -> _Identity:
    reveal = lambda secret: secret.reveal() if secret else None  # noqa: E731
    return _Identity(settings.storage_access(), reveal(settings.storage_account_key),
                     reveal(settings.webjobs_storage), settings.authority_host, settings.tenant_id,
                     settings.client_id, reveal(settings.client_secret))


def blob_service(settings: Settings) -> BlobServiceClient:
    """The BlobServiceClient for these settings, created once per storage identity (its connection
    pool and token cache are then shared by every caller)."""
    settings.require("storage")
    identity = _identity(settings)
    with _clients_lock:
        client = _clients.get(identity)
        if client is None:
            client = _clients[identity] = _new_client(settings, identity)
    return client


def _new_client(settings: Settings, identity: _Identity) -> BlobServiceClient:
    """A client whose retries are bounded in time as well as in number (batchk8s.retry): the SDK's own
    policy waits 15-24 s between attempts and 60 s per read, so an account that accepts and never
    answers held a request for 324 s."""
    from azure.storage.blob import BlobServiceClient

    from batchk8s.retry import storage_policy

    bounded = {"retry_policy": storage_policy(budget=STORAGE_CALL_SECONDS)}
    access = identity.access
    if access is None:
        raise ConfigError("AzureWebJobsStorage is not a storage connection string and neither "
                          "AZURE_STORAGE_ACCOUNT_NAME nor AzureWebJobsStorage__accountName is set: set one of them",
                          details=[{"field": "AZURE_STORAGE_ACCOUNT_NAME",
                                    "message": "required without a connection string"}])
    if access.mode == "account key":
        return BlobServiceClient(access.endpoint, credential={"account_name": settings.storage_account_name,
                                                              "account_key": identity.key}, **bounded)
    if access.mode == "connection string":
        try:
            return BlobServiceClient.from_connection_string(identity.connection_string or "", **bounded)
        except ValueError:
            # The SDK's message is generic; never echo the string itself, it carries the key.
            raise ConfigError("AzureWebJobsStorage: is not a usable storage connection string",
                              details=[{"field": "AzureWebJobsStorage", "message": "malformed connection string"}],
                              ) from None
    from batchk8s.credentials import get_credential, get_managed_identity

    credential = get_managed_identity(access.client_id) if access.managed_identity else get_credential(settings)
    _first_token(credential, access.endpoint or "")
    return BlobServiceClient(access.endpoint, credential=credential, **bounded)


def _first_token(credential: Any, endpoint: str) -> None:
    """Ask for a token once before any storage call: the storage SDK retries a refused token like a
    network error (backoffs of 15 s and more, over a minute in all), so a wrong identity would
    otherwise fail slowly. The credential caches the token, so the first real call costs nothing more."""
    with azure_errors(f"storage at {endpoint}", BLOB):
        credential.get_token(STORAGE_SCOPE)


@caches.register
def clear_cache() -> None:
    """Close and forget cached clients (settings changed, e.g. between tests)."""
    with _clients_lock:
        clients = list(_clients.values())
        _clients.clear()
    _delegation_keys.clear()
    for client in clients:
        client.close()


def mask_url(url: str) -> str:
    """The URL with its query string (a SAS token, if any) replaced, for logs and messages."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query="<redacted>" if parts.query else "", fragment=""))


def call_options(deadline: Deadline | None) -> dict[str, Any]:
    """Keyword arguments for the SDK calls of one storage operation made under `deadline`: the storage
    retry policy (batchk8s.retry) fits connect/read timeouts and pauses to it. The operation gets what
    is left of the deadline, but never more than STORAGE_CALL_SECONDS, so one slow call does not spend
    a timer's whole budget; without a deadline the client's own per-call budget applies."""
    return deadline.within(STORAGE_CALL_SECONDS).call_options() if deadline is not None else {}


def call(what: str, operation: Callable[[], T], deadline: Deadline | None = None) -> T:
    """Run one storage operation, translating azure-core errors into ours.

    With a deadline, an operation with no time left is not started, and running out midway is
    504 UpstreamTimeout naming Blob storage and `what` (the policy alone could only say "sending a request").
    """
    if deadline is not None:
        deadline.check(BLOB, f"working on {what}")
    with azure_errors(what, BLOB):
        try:
            return operation()
        except UpstreamTimeoutError:  # the retry policy's, raised inside the pipeline
            if deadline is None:
                raise
            spent = deadline if deadline.expired() else deadline.within(STORAGE_CALL_SECONDS)
            raise spent.timeout(BLOB, f"working on {what}") from None


# --- containers ------------------------------------------------------------------------------


def _check_container_name(name: str) -> str:
    if not isinstance(name, str) or not CONTAINER_NAME.fullmatch(name):
        raise InputError.for_field("container",
                                   f"{excerpt(name)} must be 3-63 lowercase letters, digits and single hyphens")
    return name


def ensure_container(settings: Settings, name: str, *, deadline: Deadline | None = None) -> str:
    """Create the container if needed, private (no anonymous access); an existing public one is made private."""
    from azure.core.exceptions import ResourceExistsError

    container = blob_service(settings).get_container_client(_check_container_name(name))
    options = call_options(deadline)

    def create() -> bool:
        try:
            container.create_container(**options)
            return True
        except ResourceExistsError:
            return False

    if not call(f"container {name}", create, deadline):
        policy = call(f"container {name}", lambda: container.get_container_access_policy(**options), deadline)
        if policy.get("public_access"):
            log.warning("container %s allowed anonymous %s access; making it private", name, policy["public_access"])
            call(f"container {name}", lambda: container.set_container_access_policy(
                signed_identifiers={i.id: i.access_policy for i in policy.get("signed_identifiers") or []},
                public_access=None, **options), deadline)
    return name


def empty_container(settings: Settings, name: str, *, keep: Collection[str] = (),
                    deadline: Deadline | None = None) -> list[str]:
    """Delete every blob in the container but those named in `keep`, breaking a lease first; returns
    the names removed.

    A new pool reuses the cluster container of its id: what an earlier pool of that id left there
    (an infinite lease on the election blob, a join command for a cluster that is gone) would make
    every new node wait to join a control plane that no longer exists.
    """
    from azure.core.exceptions import ResourceNotFoundError
    from azure.storage.blob import BlobLeaseClient

    container = blob_service(settings).get_container_client(_check_container_name(name))
    options = call_options(deadline)

    def clear() -> list[str]:
        removed = []
        for blob in container.list_blobs(**options):
            if blob.name in keep:
                continue
            client = container.get_blob_client(blob.name)
            try:
                if blob.lease.state == "leased":
                    BlobLeaseClient(client).break_lease(lease_break_period=0, **options)
                client.delete_blob(delete_snapshots="include", **options)
            except ResourceNotFoundError:
                continue  # deleted by someone else in between
            removed.append(blob.name)
        return removed

    return call(f"container {name}", clear, deadline)


# --- claiming a container --------------------------------------------------------------------

# The blob whose conditional creation decides which owner a shared container belongs to.
CLAIM_BLOB = "cluster-owner"


@dataclass(frozen=True)
class Claim:
    """The outcome of `claim_container`: whether `owner` holds the container now, who does, and
    which stale owner (if any) the claim replaced."""

    won: bool
    holder: str
    replaced: str | None = None
    since: datetime | None = None


def claim_container(settings: Settings, name: str, owner: str, *, live_owners: Collection[str],
                    grace: timedelta, deadline: Deadline | None = None) -> Claim:
    """Make `owner` (case-insensitive) the one owner of the container, atomically.

    The claim is the blob `cluster-owner` created only if missing (`If-None-Match: *`), so of two
    owners claiming at the same moment exactly one succeeds. A claim held by another owner is
    taken over only when that owner is not in `live_owners` and claimed more than `grace` ago (an
    owner that just claimed may not exist yet: it is being created), and then only with
    `If-Match` on the blob's ETag, so two takers cannot both win either.
    """
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError

    blob = blob_service(settings).get_blob_client(_check_container_name(name), CLAIM_BLOB)
    owner = owner.lower()
    live = {other.lower() for other in live_owners}
    options = call_options(deadline)

    def write(**condition: Any) -> bool:
        try:
            blob.upload_blob(owner.encode(), overwrite=True, metadata={"owner": owner}, **condition, **options)
            return True
        except (ResourceExistsError, ResourceModifiedError):
            return False

    def attempt() -> Claim:
        for _ in range(3):  # each round ends only when someone else changed the claim in between
            if write(match_condition=MatchConditions.IfMissing):
                return Claim(True, owner)
            try:
                found = blob.get_blob_properties(**options)
            except ResourceNotFoundError:
                continue
            holder = (found.metadata or {}).get("owner", "")
            since = _parse_time(found.last_modified)
            if holder == owner:
                return Claim(True, owner, since=since)
            if holder in live or datetime.now(UTC) - since < grace:
                return Claim(False, holder, since=since)
            if write(etag=found.etag, match_condition=MatchConditions.IfNotModified):
                return Claim(True, owner, replaced=holder or None)
        raise ConflictError(f"container {name} is being claimed by several owners at once: try again",
                            code="ClaimContended")

    return call(f"container {name}", attempt, deadline)


def release_claim(settings: Settings, name: str, owner: str, *, deadline: Deadline | None = None) -> bool:
    """Delete the container's claim if `owner` still holds it (after a create that failed)."""
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

    blob = blob_service(settings).get_blob_client(_check_container_name(name), CLAIM_BLOB)
    options = call_options(deadline)

    def release() -> bool:
        try:
            found = blob.get_blob_properties(**options)
            if (found.metadata or {}).get("owner") != owner.lower():
                return False
            blob.delete_blob(etag=found.etag, match_condition=MatchConditions.IfNotModified, **options)
            return True
        except (ResourceNotFoundError, ResourceModifiedError):
            return False

    return call(f"container {name}", release, deadline)


def ensure_containers(settings: Settings, *, deadline: Deadline | None = None) -> list[str]:
    """The three artifact containers (apps, k8s manifests, TES tasks), created concurrently when missing."""
    names = [getattr(settings, attr) for _, attr in ARTIFACT_TREES]
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        return list(pool.map(lambda name: ensure_container(settings, name, deadline=deadline), names))


# --- upload ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlobUpload:
    container: str
    name: str
    status: str  # "uploaded" or "unchanged"
    bytes: int
    content_type: str


@dataclass
class UploadReport:
    root: str
    containers: list[str]
    blobs: list[BlobUpload] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def uploaded(self) -> int:
        return sum(1 for blob in self.blobs if blob.status == "uploaded")

    @property
    def unchanged(self) -> int:
        return sum(1 for blob in self.blobs if blob.status == "unchanged")

    @property
    def bytes_uploaded(self) -> int:
        return sum(blob.bytes for blob in self.blobs if blob.status == "uploaded")

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "containers": self.containers,
            "counts": {"uploaded": self.uploaded, "unchanged": self.unchanged, "total": len(self.blobs)},
            "bytes": {"uploaded": self.bytes_uploaded, "total": sum(blob.bytes for blob in self.blobs)},
            "seconds": round(self.seconds, 3),
            "blobs": [{"container": blob.container, "name": blob.name, "status": blob.status, "bytes": blob.bytes,
                       "contentType": blob.content_type} for blob in self.blobs],
        }


@dataclass(frozen=True)
class _LocalFile:
    container: str
    name: str
    path: Path
    data: bytes
    md5: bytes
    content_type: str


def content_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return CONTENT_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def _artifact_trees(settings: Settings, root: Path | None) -> list[tuple[Path, str]]:
    """(folder, container) for each artifact tree; every folder must exist."""
    base = (root or REPO_ROOT).expanduser()
    trees = [(base / folder, getattr(settings, attr)) for folder, attr in ARTIFACT_TREES]
    missing = [folder.name + "/" for folder, _ in trees if not folder.is_dir()]
    if missing:
        message = f"{base} has no {', '.join(missing)}: expected the repository's scripts/, k8sresources/, tesk-tasks/"
        if root is not None:
            raise InputError.for_field("root", message)
        raise ConfigError(f"the deployed app is incomplete: {message}")
    return trees


def _walk(folder: Path) -> Iterator[Path]:
    """Regular files under `folder`, skipping hidden files and folders and Python caches."""
    for path in sorted(folder.rglob("*")):
        parts = path.relative_to(folder).parts
        if any(part.startswith(".") or part == "__pycache__" for part in parts):
            continue
        if path.is_file():
            yield path


def _local_files(trees: list[tuple[Path, str]]) -> list[_LocalFile]:
    files = []
    for folder, container in trees:
        for path in _walk(folder):
            data = path.read_bytes()
            name = path.relative_to(folder).as_posix()
            files.append(_LocalFile(container, name, path, data, hashlib.md5(data).digest(), content_type(name)))
    return files


def _remote_state(settings: Settings, container: str,
                  deadline: Deadline | None = None) -> dict[str, tuple[bytes | None, str | None]]:
    """Blob name -> (content MD5, content type), from one listing of the container (paged by the service)."""
    client = blob_service(settings).get_container_client(container)

    def listing() -> dict[str, tuple[bytes | None, str | None]]:
        state = {}
        for blob in client.list_blobs(**call_options(deadline)):
            md5 = blob.content_settings.content_md5
            state[blob.name] = (bytes(md5) if md5 else None, blob.content_settings.content_type)
        return state

    return call(f"container {container}", listing, deadline)


def _upload_one(settings: Settings, local: _LocalFile, deadline: Deadline | None = None) -> None:
    from azure.storage.blob import ContentSettings

    blob = blob_service(settings).get_blob_client(local.container, local.name)
    # The MD5 goes into the blob's properties explicitly: the service only computes it for single-shot
    # uploads, and the next run compares against it.
    settings_ = ContentSettings(content_type=local.content_type, content_md5=bytearray(local.md5))
    call(f"blob {local.container}/{local.name}",
          lambda: blob.upload_blob(local.data, overwrite=True, content_settings=settings_, **call_options(deadline)),
          deadline)


def upload_artifacts(settings: Settings, root: Path | None = None, *, deadline: Deadline | None = None) -> UploadReport:
    """Upload scripts/, k8sresources/ and tesk-tasks/ under `root` (default: this repository) into the
    app, k8s and tesk containers, keeping relative paths as blob names. A blob whose MD5 and content type
    already match is left alone, so a rerun after changing one file uploads that one file."""
    started = time.monotonic()
    trees = _artifact_trees(settings, root)
    containers = ensure_containers(settings, deadline=deadline)
    files = _local_files(trees)
    with ThreadPoolExecutor(max_workers=len(containers)) as pool:
        listings = pool.map(lambda name: _remote_state(settings, name, deadline), containers)
        remote = dict(zip(containers, listings, strict=True))
    changed = [f for f in files if remote[f.container].get(f.name) != (f.md5, f.content_type)]
    if changed:
        with ThreadPoolExecutor(max_workers=min(UPLOAD_WORKERS, len(changed))) as pool:
            list(pool.map(lambda local: _upload_one(settings, local, deadline), changed))
    changed_ids = {(f.container, f.name) for f in changed}
    report = UploadReport(str((root or REPO_ROOT).expanduser()), containers, [
        BlobUpload(f.container, f.name, "uploaded" if (f.container, f.name) in changed_ids else "unchanged",
                   len(f.data), f.content_type) for f in files])
    report.seconds = time.monotonic() - started
    log.info("artifacts: %d uploaded (%d bytes), %d unchanged in %.2fs", report.uploaded, report.bytes_uploaded,
             report.unchanged, report.seconds)
    return report


# --- URLs and SAS ----------------------------------------------------------------------------


def blob_url(settings: Settings, container: str, blob_name: str) -> str:
    """The blob's URL without any SAS (for plans and messages)."""
    return blob_service(settings).get_blob_client(_check_container_name(container), _check_blob(blob_name)).url


def container_url(settings: Settings, container: str) -> str:
    """The container's URL without any SAS (for nodes that authenticate with a managed identity)."""
    return blob_service(settings).get_container_client(_check_container_name(container)).url


BLOB_NAME_RULE = "must be a blob name of 1-1024 characters, not ending in '/', without '.' or '..' segments or '\\'"


def blob_name_problem(name: object) -> str | None:
    """Why `name` is not a blob name this app uses, or None.

    HTTP clients resolve '.' and '..' path segments before sending (requests does), so the blob
    'a/../../apps/x' in one container would be a request for 'apps/x' in another. Azure's naming rules
    advise against '\\' (clients treat it differently, so signatures mismatch). Such names are refused,
    never sent."""
    if not isinstance(name, str) or not name or len(name) > 1024 or name.endswith("/"):
        return BLOB_NAME_RULE
    if "\\" in name or any(segment in (".", "..") for segment in name.split("/")):
        return BLOB_NAME_RULE
    return None


def _check_blob(name: str) -> str:
    problem = blob_name_problem(name)
    if problem:
        raise InputError.for_field("blob", problem)
    return name


def _lifetime(settings: Settings, hours: int | None, expires_in: timedelta | None) -> timedelta:
    if expires_in is not None:
        if not isinstance(expires_in, timedelta) or not timedelta(0) < expires_in <= MAX_DELEGATION:
            raise InputError.for_field("expires_in", "must be more than 0 and at most 7 days")
        return expires_in
    hours = settings.sas_expiry_hours if hours is None else hours
    if problem := whole_number_problem(hours, 1, 168):  # 7 days
        raise InputError.for_field("hours", problem)
    return timedelta(hours=hours)


@dataclass(frozen=True)
class _Signer:
    """What a SAS is signed with: the account key, or a user delegation key (identity-based access)."""

    account: str
    https: bool
    account_key: str | None = None
    delegation_key: UserDelegationKey | None = None

    def kwargs(self) -> dict[str, Any]:
        signing: dict[str, Any] = {"account_name": self.account, "protocol": "https" if self.https else "https,http"}
        if self.account_key:
            signing["account_key"] = self.account_key
        else:
            signing["user_delegation_key"] = self.delegation_key
        return signing


_delegation_keys: dict[BlobServiceClient, UserDelegationKey] = {}


def _signer(settings: Settings, start: datetime, expiry: datetime,
            deadline: Deadline | None = None) -> tuple[_Signer, datetime]:
    """The signer and the SAS expiry it can vouch for (a delegation key caps it at seven days from now)."""
    client = blob_service(settings)
    https = urlsplit(client.url).scheme == "https"
    account_key = getattr(client.credential, "account_key", None)
    if account_key:
        return _Signer(client.account_name, https, account_key=account_key), expiry
    if not hasattr(client.credential, "get_token"):
        raise ConfigError("the storage connection string carries a SAS, not a key: it cannot sign SAS URLs; "
                          "set AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY or use a managed identity")
    # Azure refuses a delegation key that ends more than 7 days from now; keep a margin for clock skew.
    expiry = min(expiry, datetime.now(UTC) + MAX_DELEGATION - CLOCK_SKEW)
    cached = _delegation_keys.get(client)
    if (cached is not None and _parse_time(cached.signed_start) <= start
            and _parse_time(cached.signed_expiry) >= expiry - DELEGATION_REUSE):
        expiry = min(expiry, _parse_time(cached.signed_expiry))
        return _Signer(client.account_name, https, delegation_key=cached), expiry
    key = call(f"user delegation key for {client.account_name}",
                lambda: client.get_user_delegation_key(start, expiry, **call_options(deadline)), deadline)
    _delegation_keys[client] = key
    return _Signer(client.account_name, https, delegation_key=key), expiry


def _parse_time(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _window(settings: Settings, hours: int | None, expires_in: timedelta | None) -> tuple[datetime, datetime]:
    now = datetime.now(UTC).replace(microsecond=0)
    return now - CLOCK_SKEW, now + _lifetime(settings, hours, expires_in)


def blob_sas_url(settings: Settings, container: str, blob_name: str, *, hours: int | None = None,
                 expires_in: timedelta | None = None, permission: str = "r", deadline: Deadline | None = None) -> str:
    """A URL for one blob, read-only unless `permission` says otherwise, valid from a few minutes
    ago until `hours` (default AZURE_STORAGE_SAS_EXPIRY_HOURS, 168) or `expires_in` from now; long
    enough by default for a start task that reruns when a node reboots. Signed with a user delegation
    key the lifetime is capped at 7 days."""
    from azure.storage.blob import BlobSasPermissions, generate_blob_sas

    if not isinstance(permission, str) or not permission or set(permission) - set(BLOB_PERMISSIONS):
        raise InputError.for_field("permission", f"must be letters from {BLOB_PERMISSIONS!r}, e.g. 'r'")
    url = blob_url(settings, container, blob_name)
    start, expiry = _window(settings, hours, expires_in)
    signer, expiry = _signer(settings, start, expiry, deadline)
    token = generate_blob_sas(container_name=container, blob_name=blob_name,
                              permission=BlobSasPermissions.from_string(permission), start=start, expiry=expiry,
                              **signer.kwargs())
    log.info("%s SAS for %s until %s", permission, mask_url(url), expiry.isoformat())
    return f"{url}?{token}"


def container_sas_url(settings: Settings, container: str, *, permission: str = "rl", hours: int | None = None,
                      expires_in: timedelta | None = None, deadline: Deadline | None = None) -> str:
    """A URL for one container with `permission` (read+list by default: what Batch needs for a
    container resource file). The multi-node bootstrap asks for "racwl" on its private per-pool container."""
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    if not isinstance(permission, str) or not permission or set(permission) - set(CONTAINER_PERMISSIONS):
        raise InputError.for_field("permission", f"must be letters from {CONTAINER_PERMISSIONS!r}, e.g. 'rl'")
    url = blob_service(settings).get_container_client(_check_container_name(container)).url
    start, expiry = _window(settings, hours, expires_in)
    signer, expiry = _signer(settings, start, expiry, deadline)
    token = generate_container_sas(container_name=container, permission=ContainerSasPermissions.from_string(permission),
                                   start=start, expiry=expiry, **signer.kwargs())
    log.info("%s SAS for %s until %s", permission, mask_url(url), expiry.isoformat())
    return f"{url}?{token}"


def sas_expiry(url: str) -> datetime | None:
    """When the SAS in `url` expires (its `se` field), or None for a URL without one."""
    if not isinstance(url, str) or "?" not in url:
        return None
    fields = parse_qs(urlsplit(url).query)
    if "sig" not in fields or "se" not in fields:
        return None
    try:
        return _parse_time(fields["se"][0])
    except ValueError:
        return None


def renewed_sas_url(settings: Settings, url: str, *, hours: int | None = None,
                    deadline: Deadline | None = None) -> str | None:
    """`url` with a fresh SAS of the same scope (one blob or one container) and permissions, or None
    when it carries no SAS or points outside this app's storage account (not ours to sign)."""
    if sas_expiry(url) is None:
        return None
    fields = parse_qs(urlsplit(url).query)
    base = blob_service(settings).url.rstrip("/") + "/"
    plain = urlunsplit(urlsplit(url)._replace(query="", fragment=""))
    if not plain.startswith(base):
        return None
    container, _, blob = unquote(plain[len(base):]).partition("/")
    permission = fields.get("sp", ["r"])[0]
    if fields.get("sr", [""])[0] == "b" and blob:
        return blob_sas_url(settings, container, blob, hours=hours, permission=permission, deadline=deadline)
    if fields.get("sr", [""])[0] == "c" and not blob:
        return container_sas_url(settings, container, permission=permission, hours=hours, deadline=deadline)
    return None


def list_blob_names(settings: Settings, container: str, prefix: str, *, deadline: Deadline | None = None) -> list[str]:
    """Names of the blobs under `prefix` in `container` (one listing, paged by the service)."""
    client = blob_service(settings).get_container_client(_check_container_name(container))
    return call(f"container {container}", lambda: [
        blob.name for blob in client.list_blobs(name_starts_with=prefix, **call_options(deadline))], deadline)


# --- small text blobs with optimistic concurrency --------------------------------------------


class BlobText(NamedTuple):
    text: str
    etag: str


def read_blob(settings: Settings, container: str, blob: str, *, deadline: Deadline | None = None) -> BlobText:
    """A UTF-8 blob and its ETag, for a later `write_blob_if_match` (read-modify-write without locks)."""
    client = blob_service(settings).get_blob_client(_check_container_name(container), _check_blob(blob))

    def download() -> BlobText:
        stream = client.download_blob(**call_options(deadline))
        return BlobText(stream.readall().decode("utf-8"), stream.properties.etag)

    try:
        return call(f"blob {container}/{blob}", download, deadline)
    except UnicodeDecodeError:
        raise InputError.for_field("blob", f"{container}/{blob} is not UTF-8 text") from None


def read_blob_text(settings: Settings, container: str, blob: str, *, deadline: Deadline | None = None) -> str:
    """A UTF-8 blob's text (NotFoundError when it does not exist)."""
    return read_blob(settings, container, blob, deadline=deadline).text


def write_blob_if_match(settings: Settings, container: str, blob: str, text: str, etag: str | None, *,
                        metadata: Mapping[str, str] | None = None, deadline: Deadline | None = None) -> str:
    """Write `text` only if the blob still has `etag` (None: only if it does not exist yet); returns the
    new ETag. Someone else's write in between raises ConflictError, so concurrent writers never lose
    each other's updates. A missing container is created (private). `metadata` (ASCII names and values)
    is stored in the same atomic write, so a listing with metadata shows a summary of exactly the
    version that ETag names."""
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
    from azure.storage.blob import ContentSettings

    client = blob_service(settings).get_blob_client(_check_container_name(container), _check_blob(blob))
    condition = ({"etag": etag, "match_condition": MatchConditions.IfNotModified} if etag
                 else {"match_condition": MatchConditions.IfMissing})
    kind = "application/json" if blob.endswith(".json") else "text/plain; charset=utf-8"
    data = text.encode("utf-8")

    def put() -> str:
        try:
            return client.upload_blob(data, overwrite=True, content_settings=ContentSettings(content_type=kind),
                                      metadata=dict(metadata) if metadata else None, **condition,
                                      **call_options(deadline))["etag"]
        except (ResourceModifiedError, ResourceExistsError):
            expected = f"ETag {etag}" if etag else "no blob"
            raise ConflictError(f"blob {container}/{blob} changed since it was read (expected {expected})",
                                code="ConditionNotMet") from None

    def write() -> str:
        try:
            return put()
        except ResourceNotFoundError as exc:
            if getattr(exc, "error_code", None) != "ContainerNotFound":
                raise
        ensure_container(settings, container, deadline=deadline)
        return put()

    return call(f"blob {container}/{blob}", write, deadline)


def delete_blob_if_match(settings: Settings, container: str, blob: str, etag: str, *,
                         deadline: Deadline | None = None) -> bool:
    """Delete the blob only if it still has `etag`: True when this call deleted it, False when it changed
    or is gone (someone else dealt with it first)."""
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

    client = blob_service(settings).get_blob_client(_check_container_name(container), _check_blob(blob))

    def delete() -> bool:
        try:
            client.delete_blob(etag=etag, match_condition=MatchConditions.IfNotModified, **call_options(deadline))
            return True
        except (ResourceModifiedError, ResourceNotFoundError):
            return False

    return call(f"blob {container}/{blob}", delete, deadline)


# --- append-only logs ------------------------------------------------------------------------

# Azure's limit for one Append Block request (4 MiB on every service version that supports append blobs).
MAX_APPEND_BYTES = 4 * 1024 * 1024


def append_blob_line(settings: Settings, container: str, blob: str, line: str, *,
                     deadline: Deadline | None = None) -> None:
    """Append `line` (newline-terminated; several lines go in as one atomic block) to an append blob.

    No read is needed: an append never conflicts with another writer's, so a log grows without
    read-modify-write. A missing blob is created (only if still missing: a concurrent creator's lines
    are never truncated), and a missing container too (private). One request when the blob exists.
    An append blob holds at most 50,000 blocks; callers that append often rotate the blob name.
    """
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
    from azure.storage.blob import ContentSettings

    client = blob_service(settings).get_blob_client(_check_container_name(container), _check_blob(blob))
    if not isinstance(line, str) or not line.strip():
        raise InputError.for_field("line", "must be non-empty text")
    data = (line if line.endswith("\n") else line + "\n").encode("utf-8")
    if len(data) > MAX_APPEND_BYTES:
        raise InputError.for_field("line", f"must be at most {MAX_APPEND_BYTES} bytes as UTF-8")
    kind = "application/x-ndjson" if blob.endswith((".jsonl", ".ndjson")) else "text/plain; charset=utf-8"
    options = call_options(deadline)

    def create() -> None:
        for _ in range(2):  # a second try only after creating a missing container
            try:
                client.create_append_blob(content_settings=ContentSettings(content_type=kind),
                                          match_condition=MatchConditions.IfMissing, **options)
                return
            except ResourceExistsError:
                return  # created by someone else in between: append to theirs
            except ResourceNotFoundError as exc:
                if getattr(exc, "error_code", None) != "ContainerNotFound":
                    raise
                ensure_container(settings, container, deadline=deadline)

    def append() -> None:
        try:
            client.append_block(data, **options)
            return
        except ResourceNotFoundError:
            create()
        client.append_block(data, **options)

    call(f"blob {container}/{blob}", append, deadline)
