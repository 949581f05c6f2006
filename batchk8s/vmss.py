"""Scale set power state, and start / deallocate that touches only what needs it.

Why it is shaped this way:

* Idle compute is what costs money, and a timer that fails for one scale set must not leave the
  others running: every scale set is handled in isolation, concurrently, and gets its own report
  (what was done, skipped, or failed, per instance).
* Few requests: per scale set one GET (its tags: AKS-managed scale sets get a warning), one paged
  instance list with the instance view (power states of all instances at once, never one call per
  instance), and one start/deallocate naming exactly the instances not already in the wanted state.
  Nothing to do -> no action request at all, so running the timer twice is harmless.
* ARM operations take minutes; a Function's HTTP response is capped at 230 s. The action is started
  and reported as accepted; a caller may ask for a bounded wait, polled here with back-off (honouring
  ARM's Retry-After), not by a background thread that outlives the call.
* Retries of 429 (with Retry-After) and 503 are azure-core's RetryPolicy, already in the client.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from batchk8s.errors import BatchK8sError, ConfigError, InputError, UpstreamError, from_azure
from batchk8s.settings import VMSS_ACTIONS, is_vmss_name

if TYPE_CHECKING:
    from batchk8s.settings import Settings

log = logging.getLogger("batchk8s.vmss")

MAX_WORKERS = 64  # scale sets handled at once; the HTTP connection pool is sized to match
MAX_TARGETS = 100
MAX_WAIT_SECONDS = 200  # fits inside the 230 s HTTP response cap
FIRST_POLL_DELAY = 1.0
MAX_POLL_DELAY = 10.0
AKS_TAG_PREFIX = "aks-managed-"
AKS_WARNING = ("scale set is managed by AKS (tagged aks-managed-*): AKS recommends `az aks stop` / `az aks start` "
               "or scaling the node pool instead of starting or deallocating its scale set directly")

# Power states that already satisfy an action: the target state, or on its way there.
SATISFIED = {"start": ("running", "starting"), "deallocate": ("deallocated", "deallocating")}
DONE = {"start": "started", "deallocate": "deallocated"}
WOULD = {"start": "would-start", "deallocate": "would-deallocate"}
TERMINAL = {"succeeded", "failed", "canceled", "cancelled"}


@dataclass(frozen=True)
class ScaleSetRef:
    resource_group: str
    name: str

    def __str__(self) -> str:
        return f"{self.resource_group}/{self.name}"


@dataclass(frozen=True)
class ScaleSetInfo:
    ref: ScaleSetRef
    tags: dict[str, str]
    location: str | None = None

    @property
    def aks_managed(self) -> bool:
        return _aks_managed(self.tags)


@dataclass
class InstanceReport:
    instance_id: str
    power_state: str
    outcome: str | None = None  # started, deallocated, would-*, skipped, failed; None for a status read

    def to_dict(self) -> dict[str, Any]:
        entry = {"instanceId": self.instance_id, "powerState": self.power_state}
        if self.outcome:
            entry["outcome"] = self.outcome
        return entry


@dataclass
class TargetReport:
    """What happened to one scale set. `outcome`: accepted, completed, nothing-to-do, dry-run,
    not-found, failed (and `reported` for a status read)."""

    ref: ScaleSetRef
    action: str | None
    outcome: str
    instances: list[InstanceReport] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: dict[str, Any] | None = None
    operation: dict[str, Any] | None = None
    problem: BatchK8sError | None = field(default=None, repr=False, compare=False)

    @property
    def failed(self) -> bool:
        return self.outcome in ("failed", "not-found")

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "resourceGroup": self.ref.resource_group,
            "name": self.ref.name,
            "action": self.action,
            "outcome": self.outcome,
            "instances": [instance.to_dict() for instance in self.instances],
            "warnings": list(self.warnings),
        }
        if self.operation is not None:
            body["operation"] = dict(self.operation)
        if self.error is not None:
            body["error"] = dict(self.error)
        return body


def summary_line(report: TargetReport) -> str:
    """One line per scale set for the timer's log: outcome, counts, error code, warnings."""
    head = f"{report.action} {report.ref}" if report.action else str(report.ref)
    counts: dict[str, int] = {}
    for instance in report.instances:
        key = instance.outcome or instance.power_state
        counts[key] = counts.get(key, 0) + 1
    parts = [f"{report.outcome}"]
    if counts:
        parts.append(", ".join(f"{number} {key}" for key, number in sorted(counts.items())))
    if report.operation:
        parts.append(f"operation {report.operation.get('status')}")
    if report.error:
        parts.append(f"{report.error['code']}: {report.error['message']}")
    parts += [f"warning: {warning}" for warning in report.warnings]
    return f"{head}: " + "; ".join(parts)


# --- targets ------------------------------------------------------------------------------------


def configured_targets(settings: Settings, names: Sequence[str] | None = None) -> list[ScaleSetRef]:
    """The scale sets to act on: `names` (validated) or AZURE_VMSS_NAME, in AZURE_RES_GROUP_NAME."""
    if names is not None:
        settings = dataclasses.replace(settings, vmss_names=tuple(validate_names(names)))
    settings.require("vmss")
    unique: dict[str, str] = {}
    for name in settings.vmss_names:  # scale set names are case-insensitive in ARM
        unique.setdefault(name.lower(), name)
    return [ScaleSetRef(settings.resource_group or "", name) for name in unique.values()]


def validate_names(names: Sequence[str]) -> list[str]:
    """Scale set names a caller asked for, or InputError naming `names` with every bad one."""
    names = list(names)
    bad = [repr(name) for name in names if not isinstance(name, str) or not is_vmss_name(name)]
    if bad:
        raise InputError.for_field("names", f"not valid scale set names: {', '.join(bad)}")
    if not names:
        raise InputError.for_field("names", "must list at least one scale set")
    if len(names) > MAX_TARGETS:
        raise InputError.for_field("names", f"lists {len(names)} scale sets; the limit is {MAX_TARGETS}")
    return names


def _require_subscription(settings: Settings) -> str:
    if not settings.subscription_id:
        message = "is required for scale sets"
        raise ConfigError(f"AZURE_SUBSCRIPTION_ID {message}",
                          details=[{"field": "AZURE_SUBSCRIPTION_ID", "message": message}])
    return settings.subscription_id


# --- the compute client ---------------------------------------------------------------------------


@contextmanager
def _compute(settings: Settings, concurrency: int) -> Iterator[_Arm]:
    """One ComputeManagementClient for a whole batch of scale sets (one token, one connection pool)."""
    import requests
    from azure.core.pipeline.transport import RequestsTransport
    from azure.mgmt.compute import ComputeManagementClient
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    from batchk8s.credentials import get_credential

    subscription = _require_subscription(settings)
    # requests keeps 10 connections per host by default; concurrent scale sets would each open and
    # then discard their own. Retries stay azure-core's (urllib3's are off, as azure-core does).
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(concurrency, 10),
                          max_retries=Retry(total=False, redirect=False, raise_on_status=False))
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    credential = get_credential(settings)
    client = ComputeManagementClient(credential, subscription, base_url=settings.arm_endpoint,
                                     credential_scopes=[settings.arm_scope],
                                     transport=RequestsTransport(session=session, session_owner=True))
    try:
        yield _Arm(client, credential, settings)
    finally:
        client.close()


class _Arm:
    """The three calls per scale set, with the api-version override applied to each."""

    def __init__(self, client: Any, credential: Any, settings: Settings):
        self.client = client
        self.credential = credential
        self.scope = settings.arm_scope
        # azure-mgmt-compute 39 has no client-wide api-version: each operation takes `api_version`.
        self.options: dict[str, Any] = {"api_version": settings.vmss_api_version} if settings.vmss_api_version else {}

    def authenticate(self) -> BatchK8sError | None:
        """Get the ARM token once before the fan-out: the concurrent calls then share MSAL's cache,
        and a bad service principal is one clear error instead of one token request per scale set."""
        try:
            self.credential.get_token(self.scope)
        except Exception as exc:  # azure-identity raises ClientAuthenticationError and friends
            return from_azure(exc, "Azure Resource Manager")
        return None

    def tags(self, ref: ScaleSetRef) -> dict[str, str]:
        scale_set = self.client.virtual_machine_scale_sets.get(ref.resource_group, ref.name, **self.options)
        return dict(scale_set.tags or {})

    def instances(self, ref: ScaleSetRef) -> list[InstanceReport]:
        pages = self.client.virtual_machine_scale_set_vms.list(ref.resource_group, ref.name, expand="instanceView",
                                                               **self.options)
        found = [InstanceReport(str(vm.instance_id), _power_state(vm)) for vm in pages]
        return sorted(found, key=lambda instance: _instance_order(instance.instance_id))

    def begin(self, ref: ScaleSetRef, action: str, instance_ids: list[str]) -> Any:
        """Start the action and return its polling method without blocking on the operation."""
        begin = getattr(self.client.virtual_machine_scale_sets, f"begin_{action}")
        poller = begin(ref.resource_group, ref.name, {"instanceIds": instance_ids}, polling=_stepwise_polling(),
                       **self.options)
        return poller.polling_method()

    def list_scale_sets(self, resource_group: str | None) -> list[ScaleSetInfo]:
        operations = self.client.virtual_machine_scale_sets
        pages = operations.list(resource_group, **self.options) if resource_group else operations.list_all(
            **self.options)
        return [ScaleSetInfo(ScaleSetRef(_resource_group_of(s.id) or resource_group or "", s.name),
                             dict(s.tags or {}), s.location) for s in pages]


def _stepwise_polling() -> Any:
    """ARM's rules for reading an operation's status (Azure-AsyncOperation, Location, Retry-After),
    polled by our bounded loop: reporting itself finished stops LROPoller from starting a thread that
    would keep polling after the call returned."""
    from azure.mgmt.core.polling.arm_polling import ARMPolling

    class StepwisePolling(ARMPolling):
        def finished(self) -> bool:
            return True

        def operation_status(self) -> str:
            return str(self.status())

        def retry_after(self) -> float | None:
            value = self._pipeline_response.http_response.headers.get("Retry-After")
            try:
                return max(float(value), 0.0) if value else None
            except ValueError:
                return None

        def failure(self) -> dict[str, Any]:
            try:
                error = self._pipeline_response.http_response.json().get("error") or {}
            except (ValueError, AttributeError):
                error = {}
            return {"code": str(error.get("code") or "OperationFailed"),
                    "message": str(error.get("message") or "the operation failed")[:300]}

    return StepwisePolling()


def _power_state(vm: Any) -> str:
    view = getattr(vm, "instance_view", None)
    for status in getattr(view, "statuses", None) or []:
        code = str(status.code or "")
        if code.lower().startswith("powerstate/"):
            return code.split("/", 1)[1].lower()
    return "unknown"


def _instance_order(instance_id: str) -> tuple[int, int | str]:
    return (0, int(instance_id)) if instance_id.isdigit() else (1, instance_id)


def _resource_group_of(resource_id: str | None) -> str | None:
    parts = (resource_id or "").split("/")
    lowered = [part.lower() for part in parts]
    if "resourcegroups" in lowered:
        index = lowered.index("resourcegroups") + 1
        return parts[index] if index < len(parts) else None
    return None


def _aks_managed(tags: dict[str, str]) -> bool:
    return any(key.lower().startswith(AKS_TAG_PREFIX) for key in tags)


# --- failures -----------------------------------------------------------------------------------


def _failed(report: TargetReport, exc: Exception) -> TargetReport:
    """Record `exc` on the report: not-found for a 404, failed for anything else."""
    from azure.core.exceptions import AzureError

    if not isinstance(exc, (AzureError, BatchK8sError)):
        log.exception("unexpected failure on scale set %s", report.ref)
    problem = exc if isinstance(exc, BatchK8sError) else from_azure(exc, f"scale set {report.ref}")
    report.problem = problem
    report.outcome = "not-found" if problem.status == 404 else "failed"
    report.error = {"code": problem.code, "message": problem.message,
                    "upstreamStatus": getattr(problem, "upstream_status", None) or getattr(exc, "status_code", None)}
    for instance in report.instances:
        if instance.outcome in DONE.values():
            instance.outcome = "failed"
    return report


def _fan_out(settings: Settings, targets: Sequence[ScaleSetRef], action: str | None,
             work: Callable[[_Arm, TargetReport], TargetReport],
             after: Callable[[_Arm, list[TargetReport]], list[TargetReport]] | None = None) -> list[TargetReport]:
    """Run `work` for every target concurrently and in isolation, in one client; then `after`."""
    targets = list(targets)
    if not targets:
        return []
    workers = min(len(targets), MAX_WORKERS)
    with _compute(settings, workers) as arm:
        denied = arm.authenticate()
        if denied:
            return [_failed(TargetReport(ref, action, "failed"), denied) for ref in targets]

        def isolated(ref: ScaleSetRef) -> TargetReport:
            report = TargetReport(ref, action, "reported")
            try:
                return work(arm, report)
            except Exception as exc:  # one scale set's failure is its own report, never the others'
                return _failed(report, exc)

        with ThreadPoolExecutor(workers, thread_name_prefix="vmss") as pool:
            reports = list(pool.map(isolated, targets))
            if after:
                reports = after(arm, reports)
    return reports


# --- public operations --------------------------------------------------------------------------


def list_scale_sets(settings: Settings, resource_group: str | None = None) -> list[ScaleSetInfo]:
    """Scale sets with their tags, in `resource_group` or (None) the whole subscription: one paged call."""
    with _compute(settings, 1) as arm:
        try:
            return arm.list_scale_sets(resource_group)
        except Exception as exc:
            where = f"resource group {resource_group}" if resource_group else "the subscription"
            raise from_azure(exc, f"scale sets in {where}") from None


def power_states(settings: Settings, targets: Sequence[ScaleSetRef]) -> list[TargetReport]:
    """Power state of every instance of each target (two requests per scale set)."""

    def read(arm: _Arm, report: TargetReport) -> TargetReport:
        if _aks_managed(arm.tags(report.ref)):
            report.warnings.append(AKS_WARNING)
        report.instances = arm.instances(report.ref)
        return report

    return _fan_out(settings, targets, None, read)


def apply_action(settings: Settings, action: str, targets: Sequence[ScaleSetRef], *, dry_run: bool = False,
                 wait_seconds: float = 0) -> list[TargetReport]:
    """Start or deallocate the instances of each target that are not already in the wanted state.

    Returns as soon as every action is accepted by ARM, unless `wait_seconds` (at most 200) asks to
    wait for the operations; whatever is still running then is reported as accepted.
    """
    if action not in VMSS_ACTIONS:
        raise InputError.for_field("action", f"must be one of {', '.join(VMSS_ACTIONS)}")
    if isinstance(wait_seconds, bool) or not 0 <= wait_seconds <= MAX_WAIT_SECONDS:
        raise InputError.for_field("waitSeconds", f"must be a number of seconds from 0 to {MAX_WAIT_SECONDS}")
    deadline = time.monotonic() + wait_seconds
    pollers: dict[ScaleSetRef, Any] = {}

    def submit(arm: _Arm, report: TargetReport) -> TargetReport:
        if _aks_managed(arm.tags(report.ref)):
            report.warnings.append(AKS_WARNING)
        report.instances = arm.instances(report.ref)
        todo = [i for i in report.instances if i.power_state not in SATISFIED[action]]
        for instance in report.instances:
            instance.outcome = "skipped"
        if not todo:
            report.outcome = "nothing-to-do"
            return report
        for instance in todo:
            instance.outcome = WOULD[action] if dry_run else DONE[action]
        if dry_run:
            report.outcome = "dry-run"
            return report
        polling = arm.begin(report.ref, action, [i.instance_id for i in todo])
        pollers[report.ref] = polling
        return _settled(report, polling)

    def wait(arm: _Arm, reports: list[TargetReport]) -> list[TargetReport]:
        if wait_seconds <= 0 or not any(r.outcome == "accepted" for r in reports):
            return reports
        waiting = [r for r in reports if r.outcome == "accepted"]
        with ThreadPoolExecutor(min(len(waiting), MAX_WORKERS), thread_name_prefix="vmss-wait") as pool:
            list(pool.map(lambda r: _wait(r, pollers[r.ref], deadline, wait_seconds), waiting))
        return reports

    return _fan_out(settings, targets, action, submit, wait)


def _settled(report: TargetReport, polling: Any) -> TargetReport:
    """Set the outcome from the operation's current status."""
    status = polling.operation_status()
    report.operation = {"status": status}
    lowered = status.lower()
    if lowered == "succeeded":
        report.outcome = "completed"
    elif lowered in TERMINAL:
        failure = polling.failure()
        report.outcome = "failed"
        report.problem = UpstreamError(f"scale set {report.ref}: the {report.action} operation ended {status}: "
                                       f"{failure['message']}", code=failure["code"])
        report.error = {**failure, "upstreamStatus": None}
        for instance in report.instances:
            if instance.outcome in DONE.values():
                instance.outcome = "failed"
    else:
        report.outcome = "accepted"
    return report


def _wait(report: TargetReport, polling: Any, deadline: float, wait_seconds: float) -> None:
    """Poll one operation until it ends or the deadline passes, backing off between polls."""
    delay = FIRST_POLL_DELAY
    try:
        while report.outcome == "accepted":
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(polling.retry_after() or delay, remaining))
            polling.update_status()
            _settled(report, polling)
            delay = min(delay * 2, MAX_POLL_DELAY)
    except Exception as exc:  # the action was accepted; only reading its status failed
        problem = exc if isinstance(exc, BatchK8sError) else from_azure(exc, f"operation status of {report.ref}")
        report.warnings.append(f"could not read the operation status: {problem.message}")
        return
    if report.outcome == "accepted":
        report.warnings.append(f"still running after waiting {wait_seconds:g} s")
