"""Scale set power state, and start / deallocate that touches only what needs it.

Why it is shaped this way:

* Idle compute is what costs money, and a timer that fails for one scale set must not leave the
  others running: every scale set is handled in isolation, concurrently, and gets its own report
  (what was done, skipped, or failed, per instance).
* Few requests: per scale set one GET (its tags: AKS-managed scale sets get a warning; and its
  `orchestrationMode`), then one paged list with the instance views (power states of all instances at
  once, never one call per instance), then start/deallocate naming exactly the instances not already
  in the wanted state. Nothing to do -> no action request at all, so running the timer twice is
  harmless.
* Uniform and Flexible scale sets differ (learn.microsoft.com, "orchestration modes API comparison"):
  a Uniform set is started or deallocated by one set-level call naming its instances; a Flexible set
  has no set-level start, deallocate or instance view (ARM answers OperationNotAllowed). Its members
  are ordinary VMs: listed with VirtualMachines_List filtered by `virtualMachineScaleSet/id` (with
  `$expand=instanceView`, power states in the same call), and started or deallocated one VM at a time,
  concurrently. Both paths give the same per-target report, instances named by instance id (Uniform)
  or VM name (Flexible).
* The compute api-version is pinned (settings.COMPUTE_API_VERSION, overridable by AZURE_VMSS_API_VER)
  and sent on every call: what ARM answers must not depend on which azure-mgmt-compute pip installed.
* ARM operations take minutes; a Function's HTTP response is capped at 230 s. The action is started
  and reported as accepted; a caller may ask for a bounded wait, polled here with back-off (honouring
  ARM's Retry-After), not by a background thread that outlives the call. A timer follows its
  operations for its whole budget (timer_budget.py); each operation still running then is handed back
  (`TargetReport.running`: its status URL and instances) so the next firing can `follow_up` on it.
* Retries of 429 (with Retry-After) and 503 are azure-core's RetryPolicy, bounded by the
  operation's deadline (batchk8s.retry): every call carries it, and a wait asked for never outlives it.
* An operation has completed only when ARM says `Succeeded`: a 200 whose body says `Failed`, or
  that cannot be read, is not reported as done.
* Scale sets may live in other subscriptions than AZURE_SUBSCRIPTION_ID (named by full resource id, or
  by a schedule document target's `subscription`): one credential and one token for all of them, one
  compute client per subscription, and the same requests per scale set as in one subscription.
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

from batchk8s.deadline import Deadline
from batchk8s.errors import ARM, BatchK8sError, ConfigError, InputError, UpstreamError, azure_errors, from_azure
from batchk8s.settings import VMSS_ACTIONS, VMSS_ID, is_vmss_name, vmss_ref_problem

if TYPE_CHECKING:
    from batchk8s.settings import Settings

log = logging.getLogger("batchk8s.vmss")

MAX_WORKERS = 64  # scale sets handled at once; the HTTP connection pool is sized to match
MAX_VM_WORKERS = 64  # single-VM calls (Flexible members) in flight at once, across all scale sets
MAX_TARGETS = 100
MAX_WAIT_SECONDS = 200  # fits inside the 230 s HTTP response cap
WAIT_MARGIN_SECONDS = 5.0  # a wait ends this long before the deadline: the answer still has to be written
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
UNREADABLE = "Unknown"  # the status ARM sent could not be read: not terminal, so never "completed"
UNKNOWN_STATUS = "Unknown"  # an operation whose status ARM no longer keeps (read back later, 404)


@dataclass(frozen=True)
class ScaleSetRef:
    resource_group: str
    name: str
    subscription: str | None = None  # None: AZURE_SUBSCRIPTION_ID

    @property
    def resource_id(self) -> str:
        return (f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}/providers/"
                f"Microsoft.Compute/virtualMachineScaleSets/{self.name}")

    def __str__(self) -> str:
        where = f"{self.resource_group}/{self.name}"
        return f"{where} (subscription {self.subscription})" if self.subscription else where


UNIFORM, FLEXIBLE = "Uniform", "Flexible"


@dataclass(frozen=True)
class ScaleSetInfo:
    ref: ScaleSetRef
    tags: dict[str, str]
    location: str | None = None
    orchestration: str = UNIFORM  # ARM's orchestrationMode; absent on old scale sets, which are Uniform
    resource_id: str | None = None

    @property
    def aks_managed(self) -> bool:
        return _aks_managed(self.tags)

    @property
    def flexible(self) -> bool:
        return self.orchestration == FLEXIBLE


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
    orchestration: str | None = None  # Uniform or Flexible, once the scale set was read
    # Operations still running when the report was made: {"url": status URL, "instances": [ids]} each
    running: list[dict[str, Any]] = field(default_factory=list, repr=False, compare=False)

    @property
    def failed(self) -> bool:
        return self.outcome in ("failed", "not-found")

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            **({"subscription": self.ref.subscription} if self.ref.subscription else {}),
            "resourceGroup": self.ref.resource_group,
            "name": self.ref.name,
            "action": self.action,
            "outcome": self.outcome,
            "instances": [instance.to_dict() for instance in self.instances],
            "warnings": list(self.warnings),
        }
        if self.orchestration is not None:
            body["orchestrationMode"] = self.orchestration
        if self.operation is not None:
            body["operation"] = dict(self.operation)
        if self.error is not None:
            body["error"] = dict(self.error)
        return body


def summary_line(report: TargetReport) -> str:
    """One line per scale set for the timer's log: outcome, counts, error code, warnings."""
    head = f"{report.action} {report.ref}" if report.action else str(report.ref)
    if report.orchestration == FLEXIBLE:  # instances are then VM names, acted on one by one
        head += " (Flexible)"
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
    """The scale sets to act on: `names` (validated) or AZURE_VMSS_NAME. A name is in AZURE_RES_GROUP_NAME
    of AZURE_SUBSCRIPTION_ID; a full resource id names its own (then those settings are not needed)."""
    if names is not None:
        settings = dataclasses.replace(settings, vmss_names=tuple(validate_names(names)))
    if settings.problems or not settings.vmss_names or not all(VMSS_ID.match(n) for n in settings.vmss_names):
        settings.require("vmss")
    unique: dict[tuple[str | None, str, str], ScaleSetRef] = {}
    for name in settings.vmss_names:  # names, groups and subscriptions are case-insensitive in ARM
        ref = scale_set_ref(name, settings.resource_group or "")
        unique.setdefault(((ref.subscription or "").lower(), ref.resource_group.lower(), ref.name.lower()), ref)
    return list(unique.values())


def scale_set_ref(name_or_id: str, resource_group: str) -> ScaleSetRef:
    """A validated scale set name (in `resource_group`) or full resource id as a ScaleSetRef."""
    match = VMSS_ID.match(name_or_id)
    if match is None:
        return ScaleSetRef(resource_group, name_or_id)
    return ScaleSetRef(match["resource_group"], match["name"], match["subscription"].lower())


def validate_names(names: Sequence[str]) -> list[str]:
    """Scale set names or resource ids a caller asked for, or InputError naming `names` with every bad one."""
    names = list(names)
    bad = [repr(name) for name in names if not isinstance(name, str) or
           (not name.startswith("/") and not is_vmss_name(name))]
    if bad:
        raise InputError.for_field("names", f"not valid scale set names: {', '.join(bad)}")
    bad_ids = [problem for name in names if name.startswith("/") and (problem := vmss_ref_problem(name))]
    if bad_ids:
        raise InputError.for_field("names", "; ".join(bad_ids))
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
def _compute(settings: Settings, concurrency: int, deadline: Deadline,
             subscriptions: Sequence[str | None] = (None,)) -> Iterator[dict[str | None, _Arm]]:
    """One ComputeManagementClient per subscription for a whole batch of scale sets, sharing one
    credential (one token), one connection pool and one pool of single-VM workers. Keyed by the
    subscription as the refs name it (None: AZURE_SUBSCRIPTION_ID)."""
    import requests
    from azure.core.pipeline.transport import RequestsTransport
    from azure.mgmt.compute import ComputeManagementClient
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    from batchk8s.credentials import get_credential
    from batchk8s.retry import core_policy

    wanted = {sub: sub or _require_subscription(settings) for sub in dict.fromkeys(subscriptions)}
    # requests keeps 10 connections per host by default; concurrent scale sets would each open and
    # then discard their own. Retries stay azure-core's (urllib3's are off, as azure-core does).
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(concurrency + MAX_VM_WORKERS, 10),
                          max_retries=Retry(total=False, redirect=False, raise_on_status=False))
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    credential = get_credential(settings)
    clients = {key: ComputeManagementClient(credential, subscription, base_url=settings.arm_endpoint,
                                            credential_scopes=[settings.arm_scope], retry_policy=core_policy(),
                                            transport=RequestsTransport(session=session, session_owner=False))
               for key, subscription in wanted.items()}
    # Threads start only when a Flexible scale set submits single-VM calls.
    vm_pool = ThreadPoolExecutor(MAX_VM_WORKERS, thread_name_prefix="vmss-vm")
    try:
        yield {key: _Arm(client, credential, settings, vm_pool, deadline) for key, client in clients.items()}
    finally:
        vm_pool.shutdown(wait=True)
        for client in clients.values():
            client.close()
        session.close()


class _Arm:
    """The calls per scale set (Uniform) or per member VM (Flexible), each with the pinned api-version."""

    def __init__(self, client: Any, credential: Any, settings: Settings, vm_pool: ThreadPoolExecutor,
                 deadline: Deadline):
        self.client = client
        self.credential = credential
        self.scope = settings.arm_scope
        self.vm_pool = vm_pool
        self.deadline = deadline
        # azure-mgmt-compute has no client-wide api-version: each operation takes `api_version`; the
        # deadline rides along to the retry policy, which fits every timeout and pause to it.
        self.options: dict[str, Any] = {"api_version": settings.vmss_api_version, **deadline.call_options()}

    def authenticate(self) -> BatchK8sError | None:
        """Get the ARM token once before the fan-out: the concurrent calls then share MSAL's cache,
        and a bad service principal is one clear error instead of one token request per scale set."""
        try:
            self.credential.get_token(self.scope)
        except Exception as exc:  # azure-identity raises ClientAuthenticationError and friends
            return from_azure(exc, ARM, ARM)
        return None

    def describe(self, ref: ScaleSetRef) -> ScaleSetInfo:
        scale_set = self.client.virtual_machine_scale_sets.get(ref.resource_group, ref.name, **self.options)
        return _info(scale_set, ref)

    def instances(self, ref: ScaleSetRef) -> list[InstanceReport]:
        """A Uniform set's instances with their power states: one paged call."""
        pages = self.client.virtual_machine_scale_set_vms.list(ref.resource_group, ref.name, expand="instanceView",
                                                               **self.options)
        found = [InstanceReport(str(vm.instance_id), _power_state(vm)) for vm in pages]
        return sorted(found, key=lambda instance: _instance_order(instance.instance_id))

    def members(self, info: ScaleSetInfo) -> list[InstanceReport]:
        """A Flexible set's VMs with their power states: one paged, filtered call. A VM listed without an
        instance view (one still being created, say) has its own read, concurrently."""
        pages = self.client.virtual_machines.list(info.ref.resource_group, filter=flexible_filter(info),
                                                  expand="instanceView", **self.options)
        found = [InstanceReport(str(vm.name), _power_state(vm)) for vm in pages]
        unread = [member for member in found if member.power_state == "unknown"]
        views = self.vm_pool.map(lambda m: self.client.virtual_machines.instance_view(
            info.ref.resource_group, m.instance_id, **self.options), unread)
        for member, view in zip(unread, views, strict=True):
            member.power_state = _power_state_of(getattr(view, "statuses", None))
        return sorted(found, key=lambda member: member.instance_id.lower())

    def begin(self, ref: ScaleSetRef, action: str, instance_ids: list[str]) -> Any:
        """Start the set-level action (Uniform) and return its polling method without blocking on it."""
        begin = getattr(self.client.virtual_machine_scale_sets, f"begin_{action}")
        poller = begin(ref.resource_group, ref.name, {"instanceIds": instance_ids},
                       polling=_stepwise_polling(self.deadline), **self.options)
        return poller.polling_method()

    def begin_vm(self, resource_group: str, vm_name: str, action: str) -> Any:
        """Start the single-VM action (a Flexible member) and return its polling method."""
        begin = getattr(self.client.virtual_machines, f"begin_{action}")
        return begin(resource_group, vm_name, polling=_stepwise_polling(self.deadline),
                     **self.options).polling_method()

    def list_scale_sets(self, resource_group: str | None, subscription: str | None) -> list[ScaleSetInfo]:
        operations = self.client.virtual_machine_scale_sets
        pages = operations.list(resource_group, **self.options) if resource_group else operations.list_all(
            **self.options)
        return [_info(s, ScaleSetRef(_resource_group_of(s.id) or resource_group or "", s.name, subscription))
                for s in pages]


def flexible_filter(info: ScaleSetInfo) -> str:
    """The OData filter VirtualMachines_List accepts to list one Flexible scale set's VMs."""
    return f"'virtualMachineScaleSet/id' eq '{info.resource_id}'"


def _info(scale_set: Any, ref: ScaleSetRef) -> ScaleSetInfo:
    mode = getattr(scale_set, "orchestration_mode", None)
    mode = str(getattr(mode, "value", mode) or UNIFORM)
    return ScaleSetInfo(ref, dict(scale_set.tags or {}), scale_set.location,
                        FLEXIBLE if mode.lower() == "flexible" else UNIFORM, scale_set.id)


def _stepwise_polling(deadline: Deadline) -> Any:
    """ARM's rules for reading an operation's status (Azure-AsyncOperation, Location, Retry-After),
    polled by our bounded loop: reporting itself finished stops LROPoller from starting a thread that
    would keep polling after the call returned. Every status read carries the deadline."""
    from azure.mgmt.core.polling.arm_polling import ARMPolling

    from batchk8s.retry import retry_after_seconds

    class StepwisePolling(ARMPolling):
        def finished(self) -> bool:
            return True

        def operation_status(self) -> str:
            said = _status_in_body(self._pipeline_response.http_response)
            return said if said is not None else str(self.status())

        def status_url(self) -> str:
            return str(self._operation.get_polling_url())

        def retry_after(self) -> float | None:
            return retry_after_seconds(self._pipeline_response.http_response.headers.get("Retry-After"))

        def failure(self) -> dict[str, Any]:
            try:
                error = self._pipeline_response.http_response.json().get("error") or {}
            except (ValueError, AttributeError):
                error = {}
            return {"code": str(error.get("code") or "OperationFailed"),
                    "message": str(error.get("message") or "the operation failed")[:300]}

    return StepwisePolling(**deadline.call_options())


def _status_in_body(response: Any) -> str | None:
    """The status an ARM answer states in its body (`status`, or `properties.provisioningState`),
    UNREADABLE for a body that is not JSON (cut short, say), None for an empty one (azure-core's reading
    of the headers and status code then stands: a 200 with no body is done)."""
    import json

    try:
        text = response.text()
    except Exception:  # an undecodable body says nothing readable
        return UNREADABLE
    if not text or not text.strip():
        return None
    try:
        body = json.loads(text)
    except ValueError:
        return UNREADABLE
    if not isinstance(body, dict):
        return UNREADABLE
    status = body.get("status")
    if status is None and isinstance(body.get("properties"), dict):
        status = body["properties"].get("provisioningState")
    return status if isinstance(status, str) and status else None


def _power_state(vm: Any) -> str:
    return _power_state_of(getattr(getattr(vm, "instance_view", None), "statuses", None))


def _power_state_of(statuses: Any) -> str:
    for status in statuses or []:
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


def _failed(report: TargetReport, exc: Exception, instances: Sequence[InstanceReport] | None = None) -> TargetReport:
    """Record `exc` on the report: not-found for a 404, failed for anything else. `instances`: the ones
    it concerns (one VM of a Flexible set); by default every instance that was being acted on."""
    from azure.core.exceptions import AzureError

    if not isinstance(exc, (AzureError, BatchK8sError)):
        log.exception("unexpected failure on scale set %s", report.ref)
    problem = from_azure(exc, f"scale set {report.ref}", ARM)
    if report.problem is None:  # the first failure names the report; every failed instance is marked
        report.problem = problem
        report.outcome = "not-found" if problem.status == 404 and instances is None else "failed"
        report.error = {"code": problem.code, "message": problem.message,
                        "upstreamStatus": getattr(problem, "upstream_status", None) or getattr(exc, "status_code",
                                                                                              None)}
    for instance in report.instances if instances is None else instances:
        if instance.outcome in DONE.values():
            instance.outcome = "failed"
    return report


def _fan_out(settings: Settings, targets: Sequence[ScaleSetRef], action: str | None,
             work: Callable[[_Arm, TargetReport], TargetReport],
             after: Callable[[_Arm, list[TargetReport]], list[TargetReport]] | None = None,
             deadline: Deadline | None = None) -> list[TargetReport]:
    """Run `work` for every target concurrently and in isolation, in one client; then `after`."""
    targets = list(targets)
    if not targets:
        return []
    workers = min(len(targets), MAX_WORKERS)
    with _compute(settings, workers, deadline or Deadline.for_http(), [ref.subscription for ref in targets]) as arms:
        arm = next(iter(arms.values()))  # every subscription's client shares its credential and worker pool
        denied = arm.authenticate()
        if denied:
            return [_failed(TargetReport(ref, action, "failed"), denied) for ref in targets]

        def isolated(ref: ScaleSetRef) -> TargetReport:
            report = TargetReport(ref, action, "reported")
            try:
                return work(arms[ref.subscription], report)
            except Exception as exc:  # one scale set's failure is its own report, never the others'
                return _failed(report, exc)

        with ThreadPoolExecutor(workers, thread_name_prefix="vmss") as pool:
            reports = list(pool.map(isolated, targets))
            if after:
                reports = after(arm, reports)
    return reports


def _read(arm: _Arm, report: TargetReport) -> ScaleSetInfo:
    """The scale set (tags, orchestration mode) and its instances with their power states."""
    info = arm.describe(report.ref)
    report.orchestration = info.orchestration
    if info.aks_managed:
        report.warnings.append(AKS_WARNING)
    report.instances = arm.members(info) if info.flexible else arm.instances(report.ref)
    return info


# --- public operations --------------------------------------------------------------------------


def list_scale_sets(settings: Settings, resource_group: str | None = None,
                    subscription: str | None = None, deadline: Deadline | None = None) -> list[ScaleSetInfo]:
    """Scale sets with their tags, in `resource_group` or (None) the whole `subscription` (None:
    AZURE_SUBSCRIPTION_ID): one paged call."""
    with _compute(settings, 1, deadline or Deadline.for_http(), [subscription]) as arms:
        where = f"resource group {resource_group}" if resource_group else "the subscription"
        where += f" of subscription {subscription}" if subscription else ""
        with azure_errors(f"scale sets in {where}", ARM):
            return arms[subscription].list_scale_sets(resource_group, subscription)


def power_states(settings: Settings, targets: Sequence[ScaleSetRef],
                 deadline: Deadline | None = None) -> list[TargetReport]:
    """Power state of every instance of each target (two requests per scale set, either mode)."""

    def read(arm: _Arm, report: TargetReport) -> TargetReport:
        _read(arm, report)
        return report

    return _fan_out(settings, targets, None, read, deadline=deadline)


@dataclass
class _Operation:
    """One accepted ARM operation and the instances it acts on (all of a Uniform set's, or one VM)."""

    instances: list[InstanceReport]
    polling: Any

    @property
    def status(self) -> str:
        return str(self.polling.operation_status())

    @property
    def running(self) -> bool:
        return self.status.lower() not in TERMINAL


def apply_action(settings: Settings, action: str, targets: Sequence[ScaleSetRef], *, dry_run: bool = False,
                 wait_seconds: float = 0, deadline: Deadline | None = None,
                 budget: Deadline | None = None) -> list[TargetReport]:
    """Start or deallocate the instances of each target that are not already in the wanted state.

    Returns as soon as every action is accepted by ARM, unless `wait_seconds` (at most 200, the HTTP and
    CLI doors) or a timer's `budget` asks to follow the operations to their end; whatever is still
    running then is reported as accepted, with its operations in `running`. The wait ends early enough
    to leave `deadline` (which bounds every call) a margin for the answer.
    """
    if action not in VMSS_ACTIONS:
        raise InputError.for_field("action", f"must be one of {', '.join(VMSS_ACTIONS)}")
    if isinstance(wait_seconds, bool) or not 0 <= wait_seconds <= MAX_WAIT_SECONDS:
        raise InputError.for_field("waitSeconds", f"must be a number of seconds from 0 to {MAX_WAIT_SECONDS}")
    deadline = deadline or Deadline.for_http()
    if budget is not None:
        wait_seconds = budget.remaining()
    waiting_until = deadline.within(max(min(wait_seconds, deadline.remaining() - WAIT_MARGIN_SECONDS), 0))
    accepted: dict[ScaleSetRef, list[_Operation]] = {}

    def submit(arm: _Arm, report: TargetReport) -> TargetReport:
        info = _read(arm, report)
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
        if info.flexible:
            operations = _begin_members(arm, report, action, todo)
        else:
            operations = [_Operation(todo, arm.begin(report.ref, action, [i.instance_id for i in todo]))]
        accepted[report.ref] = operations
        return _settled(report, operations)

    def wait(arm: _Arm, reports: list[TargetReport]) -> list[TargetReport]:
        waiting = [r for r in reports if r.outcome == "accepted"]
        if wait_seconds <= 0 or not waiting:
            return reports
        with ThreadPoolExecutor(min(len(waiting), MAX_WORKERS), thread_name_prefix="vmss-wait") as pool:
            list(pool.map(lambda r: _wait(arm, r, accepted[r.ref], waiting_until, wait_seconds), waiting))
        return reports

    return _fan_out(settings, targets, action, submit, wait, deadline)


def _begin_members(arm: _Arm, report: TargetReport, action: str, todo: list[InstanceReport]) -> list[_Operation]:
    """Start or deallocate each VM of a Flexible set concurrently; a VM ARM refuses is that VM's failure
    (and the report's), never a reason to leave the others as they were."""
    futures = [(member, arm.vm_pool.submit(arm.begin_vm, report.ref.resource_group, member.instance_id, action))
               for member in todo]
    operations = []
    for member, future in futures:
        try:
            operations.append(_Operation([member], future.result()))
        except Exception as exc:
            _failed(report, exc, [member])
    return operations


def _overall(statuses: list[str]) -> str:
    """One status for several operations: the first that failed, else in progress, else succeeded."""
    ended_badly = [s for s in statuses if s.lower() in TERMINAL and s.lower() != "succeeded"]
    if ended_badly:
        return ended_badly[0]
    running = [s for s in statuses if s.lower() not in TERMINAL]
    return running[0] if running else "Succeeded"


def _status_url(polling: Any) -> str | None:
    """Where a later run can read the operation's status; None when ARM's answer named none (a body that
    could not be read leaves nothing to follow)."""
    try:
        return polling.status_url()
    except ValueError:
        return None


def _settled(report: TargetReport, operations: list[_Operation]) -> TargetReport:
    """Set the outcome from the operations' current status."""
    statuses = [operation.status for operation in operations]
    if statuses:
        report.operation = {"status": _overall(statuses)}
    report.running = [{"url": url, "instances": [i.instance_id for i in operation.instances]}
                      for operation, status in zip(operations, statuses, strict=True)
                      if status.lower() not in TERMINAL and (url := _status_url(operation.polling))]
    for operation, status in zip(operations, statuses, strict=True):
        if status.lower() not in TERMINAL or status.lower() == "succeeded":
            continue
        for instance in operation.instances:
            if instance.outcome in DONE.values():
                instance.outcome = "failed"
        if report.problem is None:
            failure = operation.polling.failure()
            report.problem = UpstreamError(f"scale set {report.ref}: the {report.action} operation ended {status}: "
                                           f"{failure['message']}", code=failure["code"])
            report.error = {**failure, "upstreamStatus": None}
    if UNREADABLE in statuses and report.problem is None:
        report.warnings.append("ARM's answer about the operation could not be read: not reported as completed")
    if report.problem is not None:
        report.outcome = "failed"
    elif all(status.lower() == "succeeded" for status in statuses):
        report.outcome = "completed"
    else:
        report.outcome = "accepted"
    return report


def _wait(arm: _Arm, report: TargetReport, operations: list[_Operation], deadline: Deadline,
          wait_seconds: float) -> None:
    """Poll a target's operations until they end or the deadline passes, backing off between polls;
    the operations of a Flexible set's VMs are polled concurrently."""
    delay = FIRST_POLL_DELAY
    try:
        while any(operation.running for operation in operations):
            remaining = deadline.remaining()
            if remaining <= 0:
                break
            running = [operation for operation in operations if operation.running]
            hinted = [hint for hint in (o.polling.retry_after() for o in running) if hint is not None]
            time.sleep(min(max(hinted) if hinted else delay, remaining))
            list(arm.vm_pool.map(lambda operation: operation.polling.update_status(), running))
            delay = min(delay * 2, MAX_POLL_DELAY)
    except Exception as exc:  # the action was accepted; only reading its status failed
        problem = from_azure(exc, f"operation status of {report.ref}", ARM)
        report.warnings.append(f"could not read the operation status: {problem.message}")
        return
    finally:
        _settled(report, operations)
    if report.outcome == "accepted":
        report.warnings.append(f"still running after waiting {round(wait_seconds, 1):g} s")


# --- following up on operations a previous run left running ----------------------------------


@dataclass(frozen=True)
class Followed:
    """An operation a previous run left running: where to read its status, and what it acts on."""

    url: str
    instances: tuple[str, ...]


def follow_up(settings: Settings, ref: ScaleSetRef, action: str, operations: Sequence[Followed],
              orchestration: str | None = None, deadline: Deadline | None = None) -> TargetReport:
    """Read, once each, the status of operations a previous run started on `ref` and left running.

    One GET per operation (a Uniform set's one, or one per Flexible VM), concurrently; the report's
    outcome is completed, failed (with ARM's code and message) or accepted (still running, with those
    operations in `running`). A status URL that is not on the ARM endpoint is never sent a token: it is
    that operation's failure. A status ARM no longer has (404: it keeps them for a limited time) is
    reported as unknown, not as a failure of the action.
    """
    report = TargetReport(ref, action, "reported", orchestration=orchestration)
    report.instances = [InstanceReport(i, "unknown", DONE[action]) for o in operations for i in o.instances]
    trusted = settings.arm_endpoint.rstrip("/") + "/"
    with _compute(settings, 1, deadline or Deadline.for_http(), [ref.subscription]) as arms:
        arm = arms[ref.subscription]
        denied = arm.authenticate()
        if denied:
            return _failed(report, denied)
        results = list(arm.vm_pool.map(lambda o: _read_status(arm, o, trusted), operations))
    statuses = [status for status, _ in results]
    known = [status for status in statuses if status != UNKNOWN_STATUS]
    report.operation = {"status": _overall(known) if known else UNKNOWN_STATUS}
    report.running = [{"url": o.url, "instances": list(o.instances)} for o, status in zip(operations, statuses,
                                                                                          strict=True)
                      if status.lower() not in TERMINAL and status != UNKNOWN_STATUS]
    unknown = len(statuses) - len(known)
    for operation, (status, failure) in zip(operations, results, strict=True):
        if status.lower() in TERMINAL and status.lower() != "succeeded":
            members = [i for i in report.instances if i.instance_id in operation.instances]
            for instance in members:
                instance.outcome = "failed"
            if report.problem is None:
                report.problem = UpstreamError(f"scale set {ref}: the {action} operation ended {status}: "
                                               f"{failure['message']}", code=failure["code"])
                report.error = {**failure, "upstreamStatus": None}
    if report.problem is not None:
        report.outcome = "failed"
    elif report.running:
        report.outcome = "accepted"
    else:
        report.outcome = "completed"
        if unknown:
            report.warnings.append(f"{unknown} operation status(es) no longer kept by ARM; "
                                   "read the power state to confirm")
    return report


def _read_status(arm: _Arm, operation: Followed, trusted: str) -> tuple[str, dict[str, str]]:
    """(status, failure) of one operation from its Azure-AsyncOperation (or Location) URL."""
    from azure.core.rest import HttpRequest

    if not operation.url.lower().startswith(trusted.lower()):
        return "Failed", {"code": "UntrustedOperationUrl",
                          "message": "the recorded operation URL is not on the ARM endpoint; not followed"}
    try:
        response = arm.client.send_request(HttpRequest("GET", operation.url))
    except Exception as exc:  # a status that cannot be read is still running as far as we know
        problem = from_azure(exc, "operation status", ARM)
        log.warning("could not read an operation status: %s", problem.message)
        return "InProgress", {}
    if response.status_code == 404:
        return UNKNOWN_STATUS, {}
    try:
        body = response.json() if response.content else {}
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    if response.status_code >= 400 and "status" not in body:
        return "InProgress", {}
    status = str(body.get("status") or ("InProgress" if response.status_code == 202 else "Succeeded"))
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    return status, {"code": str(error.get("code") or "OperationFailed"),
                    "message": str(error.get("message") or "the operation failed")[:300]}
