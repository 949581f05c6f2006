"""Every setting batchk8s reads, parsed and validated in one place.

The app reads the environment exactly once, into a frozen `Settings`. Malformed values are collected
as problems instead of raised one at a time, so `config check` and `GET /api/config` can show the
whole list. What counts as *missing* depends on the operation (a VMSS timer does not need a Batch
account), so each feature declares what it requires and `Settings.require(feature)` raises a single
`ConfigError` listing every gap.

The Functions host has binding rules of its own, and the report follows them: a timer whose
`%Setting%` schedule does not resolve is not loaded at all (the host logs "'%VmssTriggerSchedule%'
does not resolve to a value" and starts without it), so an unset schedule is a problem, not "timer
off"; the host's own way to switch a function off is the app setting `AzureWebJobs.<name>.Disabled`
(true or 1), which TIMERS names for each timer the app registers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from batchk8s import caches
from batchk8s.errors import ConfigError, InputError
from batchk8s.problems import Problems, parse_whole_number, pattern_problem


class Secret:
    """A string that never shows itself in `repr`, `str`, logs or JSON."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def masked(self) -> str:
        # Short secrets reveal too much through their last characters; long ones keep 4 as a hint.
        return "***" + self._value[-4:] if len(self._value) >= 16 else "***"

    def __repr__(self) -> str:
        return f"Secret({self.masked()!r})"

    def __str__(self) -> str:
        return self.masked()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


class ConnectionString(Secret):
    """A storage connection string: the account and endpoints show, the key and any SAS never do.

    Its last characters would be the end of the account key or of a SAS signature, so the usual
    four-character hint is not given."""

    __slots__ = ()
    SECRET_KEYS = ("accountkey", "sharedaccesssignature")

    def masked(self) -> str:
        parts = []
        for part in self._value.split(";"):
            key, sep, _ = part.partition("=")
            parts.append(f"{key}{sep}***" if key.strip().lower() in self.SECRET_KEYS else part)
        return ";".join(parts)


def is_connection_string(value: str) -> bool:
    """Whether a storage connection string names an account or endpoint (anything else cannot reach storage)."""
    keys = {part.split("=", 1)[0].strip().lower() for part in value.split(";") if "=" in part}
    return bool(keys & {"accountname", "blobendpoint", "usedevelopmentstorage"})


# --- value rules -----------------------------------------------------------------------------
# Every pattern is matched against the whole value (re.fullmatch): `re.match(...$)` would let a trailing
# newline through ("newpool\n" reached Batch).

GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
RESOURCE_GROUP = re.compile(r"[-\w.()]{0,89}[-\w()]")
VMSS_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}[A-Za-z0-9_]|[A-Za-z0-9]")
BATCH_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
BATCH_ID_RULE = "must be 1-64 letters, digits, '-' or '_'"
API_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}(-preview)?")
# The Microsoft.Compute api-version batchk8s is tested with (GA, serves orchestrationMode, the filtered
# VM list with instance views, and single-VM start/deallocate). Pinned so that what ARM answers does
# not depend on which azure-mgmt-compute pip installed; AZURE_VMSS_API_VER overrides it.
COMPUTE_API_VERSION = "2025-04-01"
# ASCII: without it IGNORECASE also folds U+017F (long s) to 's' and U+212A (Kelvin) to 'k', which Azure refuses.
VM_SIZE = re.compile(r"(standard|basic)_[a-z0-9_]+", re.IGNORECASE | re.ASCII)
CONTAINER_NAME = re.compile(r"(?=.{3,63}\Z)[a-z0-9]+(-[a-z0-9]+)*")
GALLERY_IMAGE_ID = re.compile(
    r"/subscriptions/[^/\x00-\x20]+/resourceGroups/[^/\x00-\x20]+/providers/Microsoft\.Compute/galleries/"
    r"[^/\x00-\x20]+/images/[^/\x00-\x20]+(/versions/[^/\x00-\x20]+)?",
    re.IGNORECASE | re.ASCII,
)
K8S_MINOR = re.compile(r"1\.\d{1,2}")
USER_ASSIGNED_IDENTITY_ID = re.compile(
    r"/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[-\w.()]{1,90}/providers/Microsoft\.ManagedIdentity"
    r"/userAssignedIdentities/[A-Za-z0-9][A-Za-z0-9_-]{2,127}",
    re.IGNORECASE,
)
BATCH_ACCOUNT = STORAGE_ACCOUNT = re.compile(r"[a-z0-9]{3,24}")
LINUX_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
BLOB_PATH = re.compile(r"[a-z0-9][a-z0-9-]{2,62}/.+")
VMSS_ACTIONS = ("start", "deallocate")
CONSUMPTION_SKUS = ("dynamic", "flexconsumption")


def is_vmss_name(value: str) -> bool:
    return bool(VMSS_NAME.fullmatch(value))


# A scale set's full resource id: the way to name one in another subscription or resource group.
VMSS_ID = re.compile(r"^/subscriptions/(?P<subscription>[^/]+)/resourceGroups/(?P<resource_group>[^/]+)"
                     r"/providers/Microsoft\.Compute/virtualMachineScaleSets/(?P<name>[^/]+)/?$", re.IGNORECASE)


def vmss_ref_problem(value: str) -> str | None:
    """Why `value` is neither a scale set name nor a scale set resource id, or None when it is one."""
    if not value.startswith("/"):
        return None if is_vmss_name(value) else f"{value!r} is not a scale set name"
    match = VMSS_ID.fullmatch(value)
    if match is None:
        return f"{value!r} is not a scale set resource id (/subscriptions/<GUID>/resourceGroups/<group>/providers/" \
               "Microsoft.Compute/virtualMachineScaleSets/<name>)"
    if not GUID.fullmatch(match["subscription"]):
        return f"{value!r}: subscription {match['subscription']!r} is not a GUID"
    if not RESOURCE_GROUP.fullmatch(match["resource_group"]) or not is_vmss_name(match["name"]):
        return f"{value!r} does not name a valid resource group and scale set"
    return None


def _str(value: str) -> str:
    return value


def _https_url(value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme != "https" or not parsed.netloc:
        raise ValueError("must be an https:// URL")
    return _no_credentials(value)


def _http_url(value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError("must be an http:// or https:// URL")
    return _no_credentials(value)


def _no_credentials(value: str) -> str:
    """URL settings are shown by `config` and in logs: a user:password or a query (a SAS) must not be in them."""
    parsed = urlparse(value)
    if "@" in parsed.netloc or parsed.query or parsed.fragment:
        raise ValueError("must not carry credentials (user:password@ or a ?query such as a SAS); "
                         "use the setting meant for the secret (e.g. TES_TOKEN, TES_USERNAME/TES_PASSWORD)")
    return value.rstrip("/")


def _webhook_url(value: str) -> str:
    """An incoming-webhook URL: https only (it carries its own secret, often in the path or query)."""
    parsed = urlparse(value)
    if parsed.scheme != "https" or not parsed.hostname:
        raise ValueError("must be an https:// URL (the webhook URL is a secret: it is never sent in the clear)")
    if "@" in parsed.netloc:
        raise ValueError("must not carry user:password@; the URL itself is the secret")
    return value


def _masked_value(raw: str) -> str:
    """A malformed value as a problem message may show it: any URL credentials or query cut out."""
    masked = re.sub(r"(?<=://)[^/?#@\s]*@", "***@", raw)
    return re.sub(r"[?#].*", "?***", masked) if "://" in masked else masked


def _pattern(regex: re.Pattern[str], rule: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if pattern_problem(value, regex, rule):
            raise ValueError(rule)  # load_settings shows the value as given before the rule
        return value

    return check


def _int_range(low: int, high: int) -> Callable[[str], int]:
    return lambda value: parse_whole_number(value, low, high)


def _choice(*choices: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        lowered = value.strip().lower()
        if lowered not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return lowered

    return check


def _time_zone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("is not an IANA time zone name (e.g. Europe/Berlin)") from None
    return value


def _vmss_names(value: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in value.split(",") if part.strip())
    bad = [problem for name in names if (problem := vmss_ref_problem(name))]
    if bad:
        raise ValueError("; ".join(bad))
    if not names:
        raise ValueError("lists no scale set")
    return names


def _ncrontab(value: str) -> str:
    from batchk8s.ncrontab import parse

    parse(value)  # ScheduleError is a ValueError whose message names the field
    return value


def _host_flag(value: str) -> bool:
    """`AzureWebJobs.<name>.Disabled` as the host reads it: true or 1 switch the function off."""
    lowered = value.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise ValueError("the Functions host switches a function off only for true or 1: use true or false")


def _schedules_json(value: str) -> str:
    try:
        json.loads(value)
    except ValueError as exc:
        raise ValueError(f"is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    return value


# --- the settings ----------------------------------------------------------------------------


def setting(*names: str, help: str, parse: Callable[[str], Any] = _str, default: Any = None, secret: bool = False,
            shown_default: str | None = None) -> Any:
    """A Settings field read from the first of `names` that is set (later names are aliases).

    `help` is the sentence docs/settings.md shows for it (that page is generated from these declarations);
    `shown_default` says in words a default that is not a value (e.g. "set by Azure")."""
    return field(default=default, metadata={"names": names, "parse": parse, "secret": secret, "help": help,
                                            "shown_default": shown_default})


_NAME_RULE = "must be 3-24 lowercase letters or digits"
_CONTAINER_RULE = "must be a container name: 3-63 lowercase letters, digits and single hyphens"
_IDENTITY_STORAGE = "the host's identity-based storage (Flex Consumption, no key)"


@dataclass(frozen=True)
class Settings:
    """The app's configuration. Build with `load_settings`; nothing else reads `os.environ`."""

    # Functions host
    webjobs_storage: Secret | None = setting(
        "AzureWebJobsStorage", secret=True, shown_default="required by the host",
        help="host storage; also the default artifact and schedule-state storage "
             "(`UseDevelopmentStorage=true` = Azurite)")
    # The host's identity-based connection (Flex Consumption's default): no key anywhere, only where and who.
    webjobs_storage_account: str | None = setting(
        "AzureWebJobsStorage__accountName", parse=_pattern(STORAGE_ACCOUNT, _NAME_RULE),
        help=f"{_IDENTITY_STORAGE}: the account; batchk8s uses it for artifacts and state too "
             "(`config check` shows `storage`)")
    webjobs_storage_blob_uri: str | None = setting(
        "AzureWebJobsStorage__blobServiceUri", parse=_https_url,
        help=f"{_IDENTITY_STORAGE}: the blob service URI, instead of the account name")
    webjobs_storage_credential: str | None = setting(
        "AzureWebJobsStorage__credential", parse=_choice("managedidentity"),
        help=f"{_IDENTITY_STORAGE}: `managedidentity`")
    webjobs_storage_client_id: str | None = setting(
        "AzureWebJobsStorage__clientId", parse=_pattern(GUID, "must be a GUID (the identity's client id)"),
        help=f"{_IDENTITY_STORAGE}: the user-assigned identity's client id")
    time_zone: str = setting(
        "WEBSITE_TIME_ZONE", parse=_time_zone, default="UTC",
        help="IANA zone of host-evaluated timers; honoured on Premium/Dedicated, **ignored on Linux Consumption "
             "and Flex Consumption** (batchk8s warns; use the schedule document for local times)")
    worker_runtime: str = setting("FUNCTIONS_WORKER_RUNTIME", parse=_choice("python"), default="python",
                                  help="the Functions worker language; only `python`")
    website_sku: str | None = setting(
        "WEBSITE_SKU", shown_default="set by Azure",
        help="the hosting plan; `Dynamic` / `FlexConsumption` trigger the time-zone warning")
    # Identity and endpoints
    tenant_id: str | None = setting("AZURE_AD_TENANT_ID", help="tenant of the service principal")
    authority_host: str = setting(
        "AZURE_AD_TOKEN_EP", parse=_https_url, default="https://login.microsoftonline.com",
        help="authority host (sovereign clouds: `https://login.microsoftonline.us`, "
             "`https://login.chinacloudapi.cn`)")
    client_id: str | None = setting(
        "AZURE_SP_CLIENT_ID", "AZURE_AD_SP_CLIENT_ID",
        help="service principal (client credentials): its client id. When the service principal is absent, "
             "managed identity / `DefaultAzureCredential` is used (recommended in Azure)")
    client_secret: Secret | None = setting("AZURE_SP_CLIENT_SECRET", "AZURE_AD_SP_CLIENT_SECRET", secret=True,
                                           help="service principal (client credentials): its secret")
    managed_identity_client_id: str | None = setting(
        "AZURE_CLIENT_ID", parse=_pattern(GUID, "must be a GUID (the user-assigned identity's client id)"),
        help="client id of the user-assigned managed identity used without a service principal (e.g. `0b1c…`; "
             "set by `azd up`, see [deploy.md](deploy.md))")
    arm_endpoint: str = setting("AZURE_SP_APP_ID_URI", parse=_https_url, default="https://management.azure.com",
                                help="ARM endpoint; the token scope is `<endpoint>/.default`")
    # Scale sets
    subscription_id: str | None = setting("AZURE_SUBSCRIPTION_ID", parse=_pattern(GUID, "must be a GUID"),
                                          help="subscription where the scale sets live")
    resource_group: str | None = setting("AZURE_RES_GROUP_NAME", parse=_pattern(
        RESOURCE_GROUP, "must be 1-90 letters, digits, '-', '_', '.', '(' or ')', not ending in '.'"),
        help="resource group where the scale sets live")
    vmss_names: tuple[str, ...] = setting(
        "AZURE_VMSS_NAME", parse=_vmss_names, default=(),
        help="scale set name, or a comma-separated list (`vmss-a,vmss-b`)")
    vmss_api_version: str = setting(
        "AZURE_VMSS_API_VER", parse=_pattern(API_VERSION, "must look like 2025-04-01"), default=COMPUTE_API_VERSION,
        help="Microsoft.Compute api-version sent on every scale set and VM call; pinned to the version batchk8s is "
             "tested with, whatever azure-mgmt-compute pip installs (the seed documented `2019-12-01`)")
    vmss_action: str | None = setting("AZURE_VMSS_ACTION", parse=_choice(*VMSS_ACTIONS),
                                      help="`start` or `deallocate`, for the `VmssTriggerSchedule` timer")
    vmss_schedule: str | None = setting(
        "VmssTriggerSchedule", parse=_ncrontab,
        help="NCRONTAB of that timer, e.g. `0 0 19 * * Mon-Fri`; **required while the timer is on** (the host does "
             "not load a timer whose `%VmssTriggerSchedule%` is unset, so `config check` reports it)")
    vmss_timer_disabled: bool = setting(
        "AzureWebJobs.vmss_schedule.Disabled", parse=_host_flag, default=False,
        help="the Functions host's own switch: `true` (or `1`) turns the `vmss_schedule` timer off; set it when you "
             "have no scale-set schedule ([timers.md](timers.md))")
    # Batch
    batch_account_name: str | None = setting("AZURE_BATCH_ACCOUNT_NAME", parse=_pattern(BATCH_ACCOUNT, _NAME_RULE),
                                             help="Batch account name")
    batch_account_url: str | None = setting("AZURE_BATCH_ACCOUNT_URL", parse=_https_url,
                                            help="Batch account URL, e.g. `https://hpcbatch.westeurope.batch.azure.com`")
    pool_id: str = setting("AZURE_BATCH_POOL_ID", parse=_pattern(BATCH_ID, BATCH_ID_RULE), default="k8s-pool",
                           help="default pool id")
    vm_image_id: str | None = setting("AZURE_BATCH_VM_IMAGE_ID", parse=_pattern(
        GALLERY_IMAGE_ID, "must be a Shared Image Gallery image or image version resource id"),
        help="Shared Image Gallery image (version) resource id; when absent a marketplace Ubuntu 24.04 LTS image")
    vm_size: str = setting("AZURE_BATCH_VM_SIZE", parse=_pattern(VM_SIZE, "must look like STANDARD_D2_V3"),
                           default="STANDARD_D2_V3", help="VM size of the pool's nodes")
    node_count: int = setting("AZURE_BATCH_VM_NODE_COUNT", parse=_int_range(0, 1000), default=1,
                              help="dedicated nodes (0-1000)")
    spot_node_count: int = setting("AZURE_BATCH_VM_SPOT_NODE_COUNT", parse=_int_range(0, 1000), default=0,
                                   help="spot (low-priority) nodes (0-1000)")
    acr_name: str | None = setting("AZURE_ACR_NAME", help="optional container registry for the pool: its name")
    acr_user: str | None = setting("AZURE_ACR_USER", help="optional container registry for the pool: its user")
    acr_password: Secret | None = setting("AZURE_ACR_USER_PWD", secret=True,
                                          help="optional container registry for the pool: its password")
    batch_user_name: str | None = setting(
        "BATCH_USER_NAME", parse=_pattern(LINUX_USER, "must be a Linux user name"), shown_default="none",
        help="optional login user on the nodes, created only when name **and** password are set")
    batch_user_password: Secret | None = setting(
        "BATCH_USER_PWD", secret=True, shown_default="none",
        help="that login user's password; there is no default password")
    batch_user_elevation: str = setting("BATCH_USER_ELE_LEVEL", parse=_choice("nonadmin", "admin"),
                                        default="nonadmin", help="that login user's elevation: `nonadmin` or `admin`")
    # A user-assigned managed identity for the pool's nodes: they then read and write Blob storage with tokens
    # from the instance metadata service instead of SAS URLs. Such pools are created through the management plane.
    pool_identity_id: str | None = setting("AZURE_BATCH_POOL_IDENTITY_ID", parse=_pattern(
        USER_ASSIGNED_IDENTITY_ID, "must be a user-assigned identity resource id (/subscriptions/S/resourceGroups/G"
        "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/NAME)"),
        help="a user-assigned managed identity for the pool's nodes (its resource id): no SAS at all; the pool is "
             "then created through the management plane ([least-privilege.md](least-privilege.md))")
    pool_identity_client_id: str | None = setting(
        "AZURE_BATCH_POOL_IDENTITY_CLIENT_ID", parse=_pattern(GUID, "must be a GUID (the identity's client id)"),
        help="the client id of that pool identity")
    batch_resource_group: str | None = setting("AZURE_BATCH_RES_GROUP_NAME", parse=_pattern(
        RESOURCE_GROUP, "must be 1-90 letters, digits, '-', '_', '.', '(' or ')', not ending in '.'"),
        shown_default="`AZURE_RES_GROUP_NAME`",
        help="resource group of the Batch account (management-plane calls)")
    # Kubernetes on the pool
    k8s_version: str = setting("K8S_VERSION", parse=_pattern(K8S_MINOR, "must be MAJOR.MINOR, e.g. 1.36"),
                               default="1.36", help="Kubernetes minor installed by the start task (pkgs.k8s.io)")
    k8s_node_role: str = setting(
        "K8S_NODE_ROLE", parse=_choice("single", "auto"), default="single",
        help="`single` (every node its own cluster, as the seed) or `auto` (the pool's nodes form one cluster)")
    # Storage
    storage_account_name: str | None = setting(
        "AZURE_STORAGE_ACCOUNT_NAME", parse=_pattern(STORAGE_ACCOUNT, _NAME_RULE),
        help="artifact storage account; else `AzureWebJobsStorage`; name without key = managed identity + "
             "user delegation SAS")
    storage_account_key: Secret | None = setting("AZURE_STORAGE_ACCOUNT_KEY", secret=True,
                                                 help="the artifact storage account's key")
    storage_blob_endpoint: str | None = setting(
        "AZURE_STORAGE_BLOB_ENDPOINT", parse=_http_url, shown_default="`https://<account>.blob.core.windows.net`",
        help="blob endpoint override (sovereign clouds, Azurite)")
    app_container: str = setting("AZURE_STORAGE_APP_DIRECTORY", parse=_pattern(CONTAINER_NAME, _CONTAINER_RULE),
                                 default="apps", help="container for node scripts")
    k8s_container: str = setting("AZURE_STORAGE_K8S_DIRECTORY", parse=_pattern(CONTAINER_NAME, _CONTAINER_RULE),
                                 default="k8sresources", help="container for Kubernetes manifests")
    tesk_container: str = setting("AZURE_STORAGE_TESK_DIRECTORY", parse=_pattern(CONTAINER_NAME, _CONTAINER_RULE),
                                  default="tesk-tasks", help="container for TES task documents")
    sas_expiry_hours: int = setting(
        "AZURE_STORAGE_SAS_EXPIRY_HOURS", parse=_int_range(1, 168), default=168,
        help="lifetime of generated SAS URLs (1-168; long enough for start-task reruns on reboot)")
    # TES
    tes_url: str | None = setting(
        "TESK_API_URL", parse=_http_url,
        help="TES base URL reachable from the app (e.g. `http://10.0.0.4:31567`); enables the `direct` transport")
    tesk_node_port: int = setting("TESK_NODEPORT", parse=_int_range(30000, 32767), default=31567,
                                  help="NodePort of the TESK API Service on the pool's nodes (30000-32767)")
    tes_transport: str | None = setting(
        "TES_TRANSPORT", parse=_choice("direct", "relay"),
        shown_default="`direct` when `TESK_API_URL` is set, else `relay`", help="how TES requests reach TESK")
    tes_token: Secret | None = setting(
        "TES_TOKEN", secret=True,
        help="bearer auth for `direct` (or `TES_USERNAME` + `TES_PASSWORD`); TESK as deployed from "
             "`k8sresources/tesk/` requires the bearer token of its Secret `tesk/tesk-api-token`")
    tes_user: str | None = setting("TES_USERNAME", help="basic auth for `direct`: the user (with `TES_PASSWORD`)")
    tes_password: Secret | None = setting("TES_PASSWORD", secret=True, help="basic auth for `direct`: the password")
    # The TES gateway (/api/ga4gh/tes/v1): the credentials workflow engines present
    gateway_tokens: Secret | None = setting(
        "TES_GATEWAY_TOKENS", secret=True,
        help="bearer tokens engines present at `/api/ga4gh/tes/v1` (comma-separated, each ≥ 32 characters, e.g. "
             "`openssl rand -hex 32`); and/or `TES_GATEWAY_USERNAME` + `TES_GATEWAY_PASSWORD`; see "
             "[tes-gateway.md](tes-gateway.md)")
    gateway_user: str | None = setting("TES_GATEWAY_USERNAME",
                                       help="basic credentials engines present at `/api/ga4gh/tes/v1`: the user")
    gateway_password: Secret | None = setting("TES_GATEWAY_PASSWORD", secret=True,
                                              help="basic credentials engines present at `/api/ga4gh/tes/v1`: "
                                                   "the password")
    # Schedule document
    schedules_json: str | None = setting("BATCHK8S_SCHEDULES", parse=_schedules_json,
                                         help="the schedule document (JSON)")
    schedules_blob: str | None = setting("BATCHK8S_SCHEDULES_BLOB", parse=_pattern(BLOB_PATH, "must be CONTAINER/BLOB"),
                                         help="or `CONTAINER/BLOB` holding it")
    state_container: str = setting("BATCHK8S_STATE_CONTAINER", parse=_pattern(CONTAINER_NAME, _CONTAINER_RULE),
                                   default="batchk8s-state",
                                   help="container for the schedule engine's last-applied state")
    reconcile_timer_disabled: bool = setting(
        "AzureWebJobs.schedules_reconcile.Disabled", parse=_host_flag, default=False,
        help="likewise for the every-minute `schedules_reconcile` timer")
    # Notifications of the timers' outcomes
    webhook_url: Secret | None = setting(
        "BATCHK8S_WEBHOOK_URL", parse=_webhook_url, secret=True,
        help="secret, `https://` only: incoming webhook told of failed runs, held targets and operations still "
             "running ([notifications.md](notifications.md))")
    webhook_format: str = setting(
        "BATCHK8S_WEBHOOK_FORMAT", parse=_choice("json", "teams", "slack"), default="json",
        help="`json` (Logic Apps, Azure Monitor, scripts), `teams` (Adaptive Card) or `slack`")
    webhook_events: str = setting("BATCHK8S_WEBHOOK_EVENTS", parse=_choice("problems", "all"), default="problems",
                                  help="`problems`, or `all` to post every action too")

    # Not settings: what loading found.
    problems: tuple[Problem, ...] = ()
    sources: dict[str, str] = field(default_factory=dict, compare=False)
    # Settings given with a value that failed validation: documented name -> the value as given, as it
    # may be shown (a secret masked, URL credentials cut out). The field itself keeps its default.
    invalid: dict[str, str] = field(default_factory=dict, compare=False)

    def __repr__(self) -> str:
        shown = ", ".join(f"{spec.name}={_shown(getattr(self, spec.name))!r}" for spec in SPECS
                          if getattr(self, spec.name) not in (None, ()))
        return f"Settings({shown})"

    # -- derived values --------------------------------------------------------------------

    @property
    def uses_service_principal(self) -> bool:
        return bool(self.client_id and self.client_secret)

    def storage_access(self) -> StorageAccess | None:
        """How artifact and state storage is reached, first match wins: AZURE_STORAGE_ACCOUNT_NAME with
        its key, or without one with the app's credential (an account named for artifacts is never
        overridden by the host's); the AzureWebJobsStorage connection string; the host's identity-based
        connection (AzureWebJobsStorage__*) with the identity it names."""
        account, key = self.storage_account_name, self.storage_account_key
        if account and key:
            return StorageAccess("account key", self.storage_blob_endpoint or _blob_endpoint(account))
        if account:
            return StorageAccess("identity", self.storage_blob_endpoint or _blob_endpoint(account),
                                 client_id=self.managed_identity_client_id)
        if self.webjobs_storage and is_connection_string(self.webjobs_storage.reveal()):
            return StorageAccess("connection string", None)
        if self.webjobs_storage_blob_uri or self.webjobs_storage_account:
            endpoint = self.webjobs_storage_blob_uri or _blob_endpoint(self.webjobs_storage_account or "")
            managed = self.webjobs_storage_credential == "managedidentity"
            return StorageAccess("identity", endpoint, managed_identity=managed,
                                 client_id=self.webjobs_storage_client_id or self.managed_identity_client_id)
        return None

    @property
    def time_zone_ignored(self) -> bool:
        """Linux Consumption and Flex Consumption evaluate timers in UTC whatever WEBSITE_TIME_ZONE says."""
        return (self.website_sku or "").lower() in CONSUMPTION_SKUS and self.time_zone != "UTC"

    @property
    def effective_tes_transport(self) -> str:
        return self.tes_transport or ("direct" if self.tes_url else "relay")

    @property
    def batch_account_resource_group(self) -> str | None:
        """Where the Batch account lives (for management-plane calls): its own setting, else the scale sets' group."""
        return self.batch_resource_group or self.resource_group

    @property
    def arm_scope(self) -> str:
        return self.arm_endpoint.rstrip("/") + "/.default"

    # -- checks ----------------------------------------------------------------------------

    def timer_enabled(self, timer: Timer) -> bool:
        return not getattr(self, timer.disabled_attr)

    def binding_problems(self) -> list[Problem]:
        """Timers the Functions host would refuse to load: enabled, with a `%Setting%` schedule that is unset."""
        return [Problem(env_name(timer.schedule_attr),
                        f"is not set, so the Functions host does not load {timer.name} "
                        f"('%{env_name(timer.schedule_attr)}%' does not resolve to a value): set it, or switch "
                        f"the timer off with {env_name(timer.disabled_attr)}=true")
                for timer in TIMERS
                if timer.schedule_attr and self.timer_enabled(timer) and not getattr(self, timer.schedule_attr)
                and env_name(timer.schedule_attr) not in self.invalid]  # an invalid one is a problem already

    def timers(self) -> dict[str, dict[str, Any]]:
        """Each timer the app registers: whether the host runs it, on which schedule, and the setting that stops it."""
        return {timer.name: {"enabled": self.timer_enabled(timer),
                             "schedule": self._schedule_given(timer.schedule_attr) if timer.schedule_attr
                             else timer.schedule,
                             "scheduleSetting": env_name(timer.schedule_attr) if timer.schedule_attr else None,
                             "disabledBy": env_name(timer.disabled_attr)}
                for timer in TIMERS}

    def _schedule_given(self, attr: str) -> str | None:
        """A `%Setting%` schedule as given: the parsed one, or the invalid text (report marks it invalid)."""
        return getattr(self, attr) or self.invalid.get(env_name(attr))

    def missing(self, feature: str) -> list[Problem]:
        """What `feature` needs that is not set (each entry: one of these settings is required)."""
        gaps = []
        for alternatives in REQUIREMENTS[feature]:
            if not any(getattr(self, attr) for attr in alternatives):
                others = " or ".join(env_name(attr) for attr in alternatives[1:])
                gaps.append(Problem(env_name(alternatives[0]),
                                    f"is required for {feature}" + (f" (or set {others})" if others else "")))
        return gaps

    def feature_state(self, feature: str) -> str:
        """One word for `config check`: ready, off (its timer switched off), not configured (none of
        what it needs is set), incomplete (some is), or blocked (all set, but a setting has a problem)."""
        if any(timer.feature == feature and not self.timer_enabled(timer) for timer in TIMERS):
            return "off"
        if not self.missing(feature):
            return "blocked" if self.problems else "ready"
        given = [alternatives for alternatives in REQUIREMENTS[feature]
                 if any(getattr(self, attr) or env_name(attr) in self.invalid for attr in alternatives)]
        return "incomplete" if given else "not configured"

    def require(self, feature: str) -> Settings:
        """Raise one ConfigError with every malformed or missing setting, or return self."""
        problems = Problems()
        problems.extend(p.to_dict() for p in (*self.problems, *self.missing(feature)))
        problems.raise_if_any(f"{len(problems)} configuration problem(s) for {feature}", ConfigError)
        return self

    def report(self) -> dict[str, Any]:
        """The settings with secrets masked, every problem, which features are ready and which timers run.

        A timer switched off with `AzureWebJobs.<name>.Disabled` makes its feature "off" (not ready,
        nothing missing); an enabled timer the host would not load is listed among the problems.
        """
        off = {timer.feature for timer in TIMERS if timer.feature and not self.timer_enabled(timer)}
        features: dict[str, dict[str, Any]] = {}
        for name in REQUIREMENTS:
            gaps = [] if name in off else [p.to_dict() for p in self.missing(name)]
            features[name] = {"ready": name not in off and not gaps and not self.problems, "missing": gaps}
            if name in off:
                features[name]["off"] = True
        return {
            "settings": {(name := spec.metadata["names"][0]): self.invalid.get(name, _shown(getattr(self, spec.name)))
                         for spec in SPECS},
            "invalid": list(self.invalid),
            "problems": [p.to_dict() for p in (*self.problems, *self.binding_problems())],
            "features": features,
            "timers": self.timers(),
            "storage": access.to_dict() if (access := self.storage_access()) else None,
            "warnings": [time_zone_warning(self)] if self.time_zone_ignored else [],
        }


SPECS = tuple(spec for spec in fields(Settings) if "names" in spec.metadata)
_BY_ATTR = {spec.name: spec for spec in SPECS}


def env_name(attr: str) -> str:
    """The documented environment name of a Settings field."""
    return _BY_ATTR[attr].metadata["names"][0]


# Features that only serve the others: AzureWebJobsStorage is in every new Functions project's
# local.settings.json, so storage being ready does not make an app that does anything.
SUPPORTING_FEATURES = ("storage", "pool-identity")

# What each feature needs before it can run; an entry of several names means any one of them.
REQUIREMENTS: dict[str, tuple[tuple[str, ...], ...]] = {
    "vmss": (("subscription_id",), ("resource_group",), ("vmss_names",)),
    "vmss-timer": (("subscription_id",), ("resource_group",), ("vmss_names",), ("vmss_action",),
                   ("vmss_schedule",)),
    "batch": (("batch_account_url",),),
    "pool-identity": (("subscription_id",), ("batch_resource_group", "resource_group"), ("batch_account_name",)),
    "storage": (("webjobs_storage", "storage_account_name", "webjobs_storage_account", "webjobs_storage_blob_uri"),),
    "tes": (("tes_url", "batch_account_url"),),
    "schedules": (("schedules_json", "schedules_blob"),),
}


@dataclass(frozen=True)
class Timer:
    """A timer function the app registers (the tests hold this to function_app's bindings).

    `schedule_attr` names the field behind a `%Setting%` schedule; a literal schedule is `schedule`.
    """

    name: str
    disabled_attr: str
    schedule_attr: str | None = None
    schedule: str | None = None
    feature: str | None = None


RECONCILE_SCHEDULE = "0 * * * * *"  # every minute: the schedule document's own rules say when anything happens
TIMERS = (
    Timer("vmss_schedule", "vmss_timer_disabled", schedule_attr="vmss_schedule", feature="vmss-timer"),
    Timer("schedules_reconcile", "reconcile_timer_disabled", schedule=RECONCILE_SCHEDULE),
)


@dataclass(frozen=True)
class StorageAccess:
    """Which way storage is reached; `managed_identity` means the host's `__credential=managedidentity`
    (that identity and no other), otherwise the app's credential chain."""

    mode: str  # "account key", "connection string" or "identity"
    endpoint: str | None
    managed_identity: bool = False
    client_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"mode": self.mode, "endpoint": self.endpoint}
        if self.mode == "identity":
            shown["credential"] = "managedidentity" if self.managed_identity else "app credential"
            shown["clientId"] = self.client_id
        return shown


def _blob_endpoint(account: str) -> str:
    return f"https://{account}.blob.core.windows.net"


@dataclass(frozen=True)
class Problem:
    setting: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.setting, "message": self.message}


def time_zone_warning(settings: Settings) -> str:
    return (f"WEBSITE_TIME_ZONE={settings.time_zone} is not honoured on {settings.website_sku} "
            "(Linux Consumption / Flex Consumption): the timer fires in UTC. "
            "Use the schedule document (BATCHK8S_SCHEDULES) for local times.")


def _shown(value: Any) -> Any:
    if isinstance(value, Secret):
        return value.masked()
    if isinstance(value, tuple):
        return list(value)
    return value


def written(value: Any) -> str:
    """A reported setting value as a person writes it in an app setting: `vmss-a, vmss-b`, `false`."""
    if isinstance(value, list | tuple):
        return ", ".join(written(item) for item in value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Parse `env` (default: the process environment) into Settings, collecting every problem."""
    if env is None:
        import os

        env = os.environ
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    problems = Problems()
    invalid: dict[str, str] = {}
    for spec in SPECS:
        names, parse, secret = spec.metadata["names"], spec.metadata["parse"], spec.metadata["secret"]
        present = [(name, env[name].strip()) for name in names if (env.get(name) or "").strip()]
        if not present:
            continue
        name, raw = present[0]
        if len({value for _, value in present}) > 1:
            problems.add(name, f"{' and '.join(n for n, _ in present)} are both set, to different values")
        sources[spec.name] = name
        if secret:
            hidden = ConnectionString(raw) if spec.name == "webjobs_storage" else Secret(raw)
            try:  # a secret is checked like any value, but a problem never shows it
                parse(raw)
            except ValueError as exc:
                problems.add(name, str(exc))
                invalid[names[0]] = hidden.masked()
                continue
            values[spec.name] = hidden
            continue
        try:
            values[spec.name] = parse(raw)
        except ValueError as exc:
            shown = _masked_value(raw)
            shown = shown if len(shown) <= 80 else shown[:77] + "..."
            problems.add(name, f"{shown!r}: {exc}")
            invalid[names[0]] = shown
    _contradictions(values, problems)
    return Settings(**values, problems=tuple(Problem(p["field"], p["message"]) for p in problems),
                    sources=sources, invalid=invalid)


def _contradictions(values: dict[str, Any], problems: Problems) -> None:
    """Settings that are each valid but do not go together (one half of a pair, a key without its account)."""
    if bool(values.get("client_id")) != bool(values.get("client_secret")):
        problems.add("AZURE_SP_CLIENT_SECRET" if values.get("client_id") else "AZURE_SP_CLIENT_ID",
                     "the service principal needs both AZURE_SP_CLIENT_ID and AZURE_SP_CLIENT_SECRET")
    if values.get("client_id") and values.get("client_secret") and not values.get("tenant_id"):
        problems.add("AZURE_AD_TENANT_ID", "is required with a service principal")
    if bool(values.get("batch_user_name")) != bool(values.get("batch_user_password")):
        problems.add("BATCH_USER_PWD" if values.get("batch_user_name") else "BATCH_USER_NAME",
                     "the login user needs both BATCH_USER_NAME and BATCH_USER_PWD (there is no default)")
    if values.get("acr_name") and bool(values.get("acr_user")) != bool(values.get("acr_password")):
        problems.add("AZURE_ACR_USER_PWD", "the registry needs both AZURE_ACR_USER and AZURE_ACR_USER_PWD")
    if values.get("storage_account_key") and not values.get("storage_account_name"):
        problems.add("AZURE_STORAGE_ACCOUNT_NAME", "is required with AZURE_STORAGE_ACCOUNT_KEY")
    if bool(values.get("tes_user")) != bool(values.get("tes_password")):
        problems.add("TES_PASSWORD", "basic auth needs both TES_USERNAME and TES_PASSWORD")
    _gateway_problems(values, problems)
    _host_storage_contradictions(values, problems)
    if bool(values.get("pool_identity_id")) != bool(values.get("pool_identity_client_id")):
        problems.add("AZURE_BATCH_POOL_IDENTITY_CLIENT_ID" if values.get("pool_identity_id")
                     else "AZURE_BATCH_POOL_IDENTITY_ID",
                     "the pool identity needs both AZURE_BATCH_POOL_IDENTITY_ID (its resource id, for the "
                     "pool) and AZURE_BATCH_POOL_IDENTITY_CLIENT_ID (its client id, for the nodes' tokens)")
    if values.get("tes_transport") == "direct" and not values.get("tes_url"):
        problems.add("TESK_API_URL", "is required when TES_TRANSPORT=direct")


GATEWAY_SECRET_MIN = 32  # characters: a guessable gateway credential opens TESK to the internet


def _gateway_problems(values: dict[str, Any], problems: Problems) -> None:
    """The TES gateway's credentials: basic needs both halves, and every secret must be long enough."""
    if bool(values.get("gateway_user")) != bool(values.get("gateway_password")):
        problems.add("TES_GATEWAY_PASSWORD" if values.get("gateway_user") else "TES_GATEWAY_USERNAME",
                     "basic auth needs both TES_GATEWAY_USERNAME and TES_GATEWAY_PASSWORD")
    tokens = values.get("gateway_tokens")
    if tokens and any(len(token.strip()) < GATEWAY_SECRET_MIN for token in tokens.reveal().split(",")):
        problems.add("TES_GATEWAY_TOKENS", f"each comma-separated token must be at least "
                     f"{GATEWAY_SECRET_MIN} characters (e.g. `openssl rand -hex 32`)")
    password = values.get("gateway_password")
    if password and len(password.reveal()) < GATEWAY_SECRET_MIN:
        problems.add("TES_GATEWAY_PASSWORD", f"must be at least {GATEWAY_SECRET_MIN} characters")


def _host_storage_contradictions(values: dict[str, Any], problems: Problems) -> None:
    """The host reads AzureWebJobsStorage either as a connection string or as the __ section, never both."""
    identity_based = values.get("webjobs_storage_account") or values.get("webjobs_storage_blob_uri")
    if values.get("webjobs_storage") and identity_based:
        problems.add("AzureWebJobsStorage", "is a connection string while AzureWebJobsStorage__accountName "
                     "or __blobServiceUri is also set: keep one form (identity-based needs no key)")
    if (values.get("webjobs_storage_credential") or values.get("webjobs_storage_client_id")) and not identity_based:
        problems.add("AzureWebJobsStorage__accountName",
                     "is required with AzureWebJobsStorage__credential / __clientId "
                     "(or set AzureWebJobsStorage__blobServiceUri)")
    if values.get("webjobs_storage_client_id") and values.get("webjobs_storage_credential") != "managedidentity":
        problems.add("AzureWebJobsStorage__credential",
                     "must be managedidentity when AzureWebJobsStorage__clientId names a user-assigned "
                     "identity")


def read_settings_file(path: str | Path) -> dict[str, str]:
    """The `Values` of a local.settings.json-shaped file, as an environment mapping.

    A leading UTF-8 byte-order mark is skipped: Windows editors and PowerShell's Out-File write one.
    """
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise InputError.for_field("--settings", f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise InputError.for_field("--settings", f"{path} is not valid JSON ({exc})") from None
    values = document.get("Values") if isinstance(document, dict) else None
    if not isinstance(values, dict):
        raise InputError.for_field("--settings", f"{path} has no 'Values' object")
    return {str(key): "" if value is None else str(value) for key, value in values.items()}


def setting_names() -> list[str]:
    """Every environment name batchk8s reads, aliases included."""
    return [name for spec in SPECS for name in spec.metadata["names"]]


_current: Settings | None = None


def current_settings() -> Settings:
    """The process's settings, read from the environment once (app settings change = restart)."""
    global _current
    if _current is None:
        _current = load_settings()
    return _current


@caches.register
def clear_cache() -> None:
    """Forget the settings read from the environment (the next read loads them again)."""
    global _current
    _current = None
