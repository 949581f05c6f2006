"""A fake Azure Resource Manager serving Microsoft.Compute scale sets and their virtual machines.

It follows the Compute REST API, Azure/azure-rest-api-specs
`specification/compute/resource-manager/Microsoft.Compute/ComputeRP/stable/2025-04-01/`
(`virtualMachineScaleSet.json`, `virtualMachine.json`, `computeRPCommon.json`); the parts it serves
are vendored in tests/data/compute-2025-04-01-excerpt.json and tests/contract/test_fake_arm.py
validates its answers against them.

What it answers, with ARM's shapes: scale set GET and lists (paged by an absolute `nextLink` that
carries api-version, as ARM's does); for **Uniform** scale sets the instance list with
`$expand=instanceView` (power state in `instanceView.statuses`) and the set-level `start` /
`deallocate`; for **Flexible** scale sets, whose members are ordinary virtual machines, the
resource group's VM list filtered by `$filter=virtualMachineScaleSet/id eq '<id>'` (with
`$expand=instanceView`, which the spec allows only together with that filter), a VM's
`instanceView`, and the single-VM `start` / `deallocate`. Actions are long-running operations
(202 + `Azure-AsyncOperation` + `Location`, a status that goes InProgress -> Succeeded after
`operation_delay` seconds while the machines pass through starting / deallocating).

It also serves gallery image definitions (GalleryImages_Get), following the gallery API
`specification/compute/resource-manager/Microsoft.Compute/GalleryRP/stable/2024-03-03/GalleryRP.json`,
vendored in tests/data/compute-gallery-2024-03-03-excerpt.json and checked the same way. Galleries have
api-versions of their own (the GalleryRP folders), so a compute api-version is refused there and the
other way round, as ARM's resource provider registration does per resource type.

It refuses what ARM refuses:
* a missing api-version (`MissingApiVersionParameter`), a malformed one (`InvalidApiVersionParameter`)
  and one Microsoft.Compute does not serve (`NoRegisteredProviderFound`, message as ARM words it in
  "Resolve errors for resource provider registration", learn.microsoft.com);
* a bearer token the fake Entra ID did not issue for this audience; unknown resource groups, scale
  sets and VMs; a conflicting operation while another is in progress;
* the set-level start, deallocate and instance view on a Flexible scale set ("orchestration modes API
  comparison": use the single-VM APIs). ARM answers `OperationNotAllowed`, "Operation
  'VirtualMachineScaleSets.instanceView.GET' is not allowed on Virtual Machine Scale Set ..." (as
  reported against a Flexible set in hashicorp/nomad-autoscaler#1096); the fake words start, deallocate
  and the scale-set VM list (Flexible members are VMs, not scale-set VMs) the same way. The 409 status
  is ARM's usual one for `OperationNotAllowed`; the wording of the fake's other 400s (a bad `$filter`,
  `$expand` without one) follows ARM's `InvalidParameter` shape, not a documented text.
"""

from __future__ import annotations

import re
import ssl
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from tests.fakes.aad import FakeAAD
from tests.fakes.https import FakeService, Request, Response

PROVIDER = "providers/Microsoft.Compute"
RG_PATH = r"(?i)/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
VMSS_PATH = RG_PATH + rf"/{PROVIDER}/virtualMachineScaleSets/(?P<name>[^/]+)"
VM_PATH = RG_PATH + rf"/{PROVIDER}/virtualMachines/(?P<vm>[^/]+)"
API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
# The api-versions Microsoft.Compute serves for these types: the ComputeRP folders of the REST API specs.
KNOWN_API_VERSIONS = (
    "2015-06-15", "2016-03-30", "2016-04-30-preview", "2017-03-30", "2017-12-01", "2018-04-01", "2018-06-01",
    "2018-10-01", "2019-03-01", "2019-07-01", "2019-12-01", "2020-06-01", "2020-12-01", "2021-03-01",
    "2021-04-01", "2021-07-01", "2021-11-01", "2022-03-01", "2022-08-01", "2022-11-01", "2023-03-01",
    "2023-07-01", "2023-09-01", "2024-03-01", "2024-07-01", "2024-11-01", "2025-04-01", "2025-11-01",
)
# The api-versions Microsoft.Compute serves for galleries/images: the GalleryRP folders of the REST API specs.
GALLERY_API_VERSIONS = (
    "2018-06-01", "2019-03-01", "2019-07-01", "2019-12-01", "2020-09-30", "2021-07-01", "2021-10-01", "2022-01-03",
    "2022-03-03", "2022-08-03", "2023-07-03", "2024-03-03", "2025-03-03",
)
GALLERY_IMAGE_PATH = RG_PATH + rf"/{PROVIDER}/galleries/(?P<gallery>[^/]+)/images/(?P<image>[^/]+)"
LOCATIONS = ("eastus", "eastus2", "westus", "westeurope", "northeurope", "uksouth", "southeastasia")
VMSS_FILTER = re.compile(r"^\s*'?virtualMachineScaleSet/id'?\s+eq\s+'(?P<id>[^']+)'\s*$", re.IGNORECASE)
SUBSCRIPTION = "5ca1ab1e-0000-4000-8000-00000000c0de"
POWER_STATES = ("running", "deallocated", "stopped", "starting", "deallocating", "stopping")
DISPLAY = {"running": "VM running", "deallocated": "VM deallocated", "stopped": "VM stopped",
           "starting": "VM starting", "deallocating": "VM deallocating", "stopping": "VM stopping"}
# What each action moves an instance through, and where it ends.
TRANSITIONS = {"start": ("starting", "running"), "deallocate": ("deallocating", "deallocated")}


@dataclass
class ScaleSet:
    resource_group: str
    name: str
    instances: dict[str, str]
    tags: dict[str, str] = field(default_factory=dict)
    location: str = "westeurope"
    vm_size: str = "Standard_D2s_v3"
    orchestration: str = "Uniform"  # or "Flexible": `instances` are then VM names
    subscription: str = SUBSCRIPTION
    fail_next: dict[str, str] | None = None  # the next operation ends Failed with this error

    @property
    def flexible(self) -> bool:
        return self.orchestration == "Flexible"


@dataclass
class GalleryImage:
    """An image definition: what the gallery says its versions hold."""

    resource_group: str
    gallery: str
    name: str
    os_type: str  # Linux or Windows
    publisher: str
    offer: str
    sku: str
    os_state: str = "Generalized"
    hyper_v_generation: str = "V2"
    architecture: str = "x64"
    location: str = "westeurope"


@dataclass
class Operation:
    id: str
    action: str
    scale_set: ScaleSet
    instance_ids: list[str]
    started: float
    done_at: float
    status: str = "InProgress"
    error: dict[str, str] | None = None
    vm: str | None = None  # a single-VM operation (Flexible members)


def arm_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(status, {"error": {"code": code, "message": message}}, dict(headers or {}))


class FakeARM(FakeService):
    """ARM compute for one subscription, or several (`add_subscription`); seed it with `add_scale_set`.
    Every subscription is reached through the one endpoint with the one token, as ARM's are."""

    def __init__(self, ssl_context: ssl.SSLContext, *, aad: FakeAAD, subscription: str = SUBSCRIPTION,
                 operation_delay: float = 0.2, page_size: int = 100, retry_after: str | None = None,
                 audience: str | None = None, latency: float = 0.0):
        super().__init__(ssl_context, latency)
        self.aad = aad
        self.subscription = subscription
        self.operation_delay = operation_delay
        self.page_size = page_size
        if retry_after is not None and not retry_after.isdigit():
            raise ValueError("ARM sends Retry-After in whole seconds (azure-mgmt-compute parses it as int)")
        self.retry_after = retry_after  # Retry-After on 202s and on operation status while in progress
        self.audience = audience  # the ARM endpoint tokens must be issued for; default: this fake's URL
        self.subscriptions: set[str] = {subscription.lower()}
        self._sets: dict[tuple[str, str, str], ScaleSet] = {}  # (subscription, resource group, name), lowercased
        self._groups: set[tuple[str, str]] = set()
        self.operations: dict[str, Operation] = {}
        self.gallery_images: dict[tuple[str, str, str], GalleryImage] = {}
        # (action, rg, scale set, instance ids) accepted; a single-VM action names that one VM
        self.actions: list[tuple[str, str, str, list[str]]] = []
        self._state_lock = threading.RLock()
        route = self.route
        route("GET", VMSS_PATH)(self._get_scale_set)
        route("GET", RG_PATH + rf"/{PROVIDER}/virtualMachineScaleSets")(self._list_in_group)
        route("GET", rf"(?i)/subscriptions/(?P<sub>[^/]+)/{PROVIDER}/virtualMachineScaleSets")(self._list_all)
        route("GET", VMSS_PATH + r"/virtualMachines")(self._list_vms)
        route("POST", VMSS_PATH + r"/(?P<action>start|deallocate)")(self._act)
        route("GET", VMSS_PATH + r"/instanceView")(self._scale_set_instance_view)
        route("GET", RG_PATH + rf"/{PROVIDER}/virtualMachines")(self._list_rg_vms)
        route("GET", VM_PATH + r"/instanceView")(self._vm_instance_view)
        route("POST", VM_PATH + r"/(?P<action>start|deallocate)")(self._act_vm)
        route("GET", rf"(?i)/subscriptions/(?P<sub>[^/]+)/{PROVIDER}/locations/(?P<location>[^/]+)"
                     r"/operations/(?P<op>[^/]+)")(self._operation)
        route("GET", GALLERY_IMAGE_PATH)(self._get_gallery_image)

    def start(self) -> FakeARM:
        super().start()
        self.aad.register(self.audience or self.url)  # the tenant knows this ARM endpoint as a resource
        return self

    # -- seeding and observation --------------------------------------------------------------

    @property
    def scale_sets(self) -> dict[tuple[str, str], ScaleSet]:
        """The first subscription's scale sets by (resource group, name), lowercased."""
        primary = self.subscription.lower()
        return {(rg, name): found for (sub, rg, name), found in self._sets.items() if sub == primary}

    def add_subscription(self, subscription: str) -> None:
        with self._state_lock:
            self.subscriptions.add(subscription.lower())

    def add_scale_set(self, rg: str, name: str, instances: dict[str, str] | None = None,
                      tags: dict[str, str] | None = None, location: str = "westeurope",
                      orchestration: str = "Uniform", subscription: str | None = None) -> ScaleSet:
        """A scale set (in the first subscription unless told); for orchestration="Flexible" the keys of
        `instances` are its VMs' names."""
        for state in (instances or {}).values():
            if state not in POWER_STATES:
                raise ValueError(f"unknown power state {state!r}; use one of {POWER_STATES}")
        if orchestration not in ("Uniform", "Flexible"):
            raise ValueError("orchestrationMode is Uniform or Flexible")
        sub = subscription or self.subscription
        scale_set = ScaleSet(rg, name, dict(instances or {}), dict(tags or {}), location,
                             orchestration=orchestration, subscription=sub)
        with self._state_lock:
            self.subscriptions.add(sub.lower())
            self._sets[(sub.lower(), rg.lower(), name.lower())] = scale_set
            self._groups.add((sub.lower(), rg.lower()))
        return scale_set

    def add_gallery_image(self, rg: str, gallery: str, name: str, os_type: str, publisher: str, offer: str,
                          sku: str, **extra: str) -> str:
        """An image definition in a gallery; returns its resource id."""
        if os_type not in ("Linux", "Windows"):
            raise ValueError("osType is Linux or Windows")
        image = GalleryImage(rg, gallery, name, os_type, publisher, offer, sku, **extra)
        with self._state_lock:
            self.gallery_images[(rg.lower(), gallery.lower(), name.lower())] = image
            self._groups.add((self.subscription.lower(), rg.lower()))
        return (f"/subscriptions/{self.subscription}/resourceGroups/{rg}/{PROVIDER}/galleries/{gallery}"
                f"/images/{name}")

    def add_resource_group(self, rg: str, subscription: str | None = None) -> None:
        with self._state_lock:
            self._groups.add(((subscription or self.subscription).lower(), rg.lower()))

    def _set(self, rg: str, name: str, subscription: str | None) -> ScaleSet:
        return self._sets[((subscription or self.subscription).lower(), rg.lower(), name.lower())]

    def fail_next_operation(self, rg: str, name: str, code: str, message: str, subscription: str | None = None) -> None:
        """The next start/deallocate on this scale set is accepted, then ends Failed (instances unchanged)."""
        self._set(rg, name, subscription).fail_next = {"code": code, "message": message}

    def states(self, rg: str, name: str, subscription: str | None = None) -> dict[str, str]:
        with self._state_lock:
            self._settle()
            return dict(self._set(rg, name, subscription).instances)

    def api_versions(self) -> set[str]:
        """Every api-version the client sent (operation polls included)."""
        with self._lock:
            return {query["api-version"][0] for _, _, query in self.log if query.get("api-version")}

    # -- ARM's common checks ------------------------------------------------------------------

    def dispatch(self, request: Request) -> Response:
        if not self.aad.accepts(request.headers.get("authorization"), self.audience or self.url):
            if "authorization" not in request.headers:
                return arm_error(401, "AuthenticationFailed",
                                 "Authentication failed. The 'Authorization' header is missing.")
            return arm_error(401, "InvalidAuthenticationToken", "The access token is invalid.", {
                "WWW-Authenticate": 'Bearer authorization_uri="https://login.windows.net/", error="invalid_token", '
                                    'error_description="The access token is invalid."'})
        version = request.arg("api-version")
        if not version:
            return arm_error(400, "MissingApiVersionParameter",
                             "The api-version query parameter (?api-version=) is required for all requests.")
        if not API_VERSION.match(version):
            return arm_error(400, "InvalidApiVersionParameter", f"The api-version '{version}' is invalid. "
                             f"The supported versions are '{','.join(reversed(KNOWN_API_VERSIONS))}'.")
        galleries = "/galleries/" in request.path.lower()
        known = GALLERY_API_VERSIONS if galleries else KNOWN_API_VERSIONS
        if version not in known:
            kind = "galleries/images" if galleries else "virtualMachines" if "/virtualmachines" in \
                request.path.lower() and "/virtualmachinescalesets/" not in request.path.lower() \
                else "virtualMachineScaleSets"
            return arm_error(400, "NoRegisteredProviderFound",
                             f"No registered resource provider found for location 'westeurope' and API version "
                             f"'{version}' for type '{kind}'. The supported api-versions are "
                             f"'{', '.join(reversed(known))}'. The supported locations are "
                             f"'{', '.join(LOCATIONS)}'.")
        with self._state_lock:
            self._settle()
            return super().dispatch(request)

    def not_found(self, request: Request) -> Response:
        return arm_error(404, "NotFound", f"The requested resource path '{request.path}' was not found.")

    def _subscription_error(self, sub: str) -> Response | None:
        if sub.lower() not in self.subscriptions:
            return arm_error(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")
        return None

    def _group_error(self, sub: str, rg: str) -> Response | None:
        """ARM's 404 for an unknown subscription or resource group, else None."""
        problem = self._subscription_error(sub)
        if problem:
            return problem
        if (sub.lower(), rg.lower()) not in self._groups:
            return arm_error(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
        return None

    def _find(self, sub: str, rg: str, name: str, *, child: str | None = None) -> ScaleSet | Response:
        problem = self._group_error(sub, rg)
        if problem:
            return problem
        scale_set = self._sets.get((sub.lower(), rg.lower(), name.lower()))
        if scale_set is not None:
            return scale_set
        if child:
            return arm_error(404, "ParentResourceNotFound",
                             f"Failed to perform 'read' on resource(s) of type 'virtualMachineScaleSets/{child}', "
                             f"because the parent resource '{self._id(sub, rg, name)}' could not be found.")
        return arm_error(404, "ResourceNotFound",
                         f"The Resource 'Microsoft.Compute/virtualMachineScaleSets/{name}' under resource group "
                         f"'{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix")

    @staticmethod
    def _id(sub: str, rg: str, name: str) -> str:
        return f"/subscriptions/{sub}/resourceGroups/{rg}/{PROVIDER}/virtualMachineScaleSets/{name}"

    def _page(self, request: Request, items: list[dict[str, Any]]) -> Response:
        """One page of `items` and, when more remain, ARM's absolute nextLink (api-version included)."""
        start = int(request.arg("$skiptoken", "0") or 0)
        body: dict[str, Any] = {"value": items[start:start + self.page_size]}
        if start + self.page_size < len(items):
            kept = [(key, values[0]) for key, values in request.query.items() if key != "$skiptoken"]
            query = "&".join(f"{key}={quote(value, safe='')}" for key, value in kept)
            body["nextLink"] = f"{self.url}{request.path}?{query}&$skiptoken={start + self.page_size}"
        return Response(200, body)

    # -- scale sets ---------------------------------------------------------------------------

    def _scale_set_body(self, scale_set: ScaleSet) -> dict[str, Any]:
        properties: dict[str, Any] = {"provisioningState": "Succeeded", "orchestrationMode": scale_set.orchestration,
                                      "uniqueId": str(uuid.uuid5(uuid.NAMESPACE_URL, scale_set.name))}
        if scale_set.flexible:  # Flexible sets spread over fault domains and have no upgrade policy of their own
            properties["platformFaultDomainCount"] = 1
        else:
            properties["upgradePolicy"] = {"mode": "Manual"}
        return {
            "id": self._id(scale_set.subscription, scale_set.resource_group, scale_set.name),
            "name": scale_set.name,
            "type": "Microsoft.Compute/virtualMachineScaleSets",
            "location": scale_set.location,
            "tags": dict(scale_set.tags),
            "sku": {"name": scale_set.vm_size, "tier": "Standard", "capacity": len(scale_set.instances)},
            "properties": properties,
        }

    @staticmethod
    def _not_allowed_on_flexible(scale_set: ScaleSet, operation: str) -> Response:
        return arm_error(409, "OperationNotAllowed", f"Operation 'VirtualMachineScaleSets.{operation}' is not "
                                                     f"allowed on Virtual Machine Scale Set '{scale_set.name}'.")

    def _get_scale_set(self, request: Request, sub: str, rg: str, name: str) -> Response:
        found = self._find(sub, rg, name)
        return found if isinstance(found, Response) else Response(200, self._scale_set_body(found))

    def _list_in_group(self, request: Request, sub: str, rg: str) -> Response:
        problem = self._group_error(sub, rg)
        if problem:
            return problem
        return self._page(request, self._bodies(found for (s, g, _), found in self._sets.items()
                                                if (s, g) == (sub.lower(), rg.lower())))

    def _list_all(self, request: Request, sub: str) -> Response:
        return self._subscription_error(sub) or self._page(request, self._bodies(
            found for (s, _, _), found in self._sets.items() if s == sub.lower()))

    def _bodies(self, scale_sets: Iterable[ScaleSet]) -> list[dict[str, Any]]:
        return [self._scale_set_body(s) for s in sorted(scale_sets, key=lambda s: (s.resource_group, s.name))]

    # -- instances ----------------------------------------------------------------------------

    def _list_vms(self, request: Request, sub: str, rg: str, name: str) -> Response:
        found = self._find(sub, rg, name, child="virtualMachines")
        if isinstance(found, Response):
            return found
        if found.flexible:  # Flexible members are VMs: VirtualMachines_List, not VirtualMachineScaleSetVMs_List
            return self._not_allowed_on_flexible(found, "virtualMachines.GET")
        expand = request.arg("$expand")
        if expand is not None and expand.lower() != "instanceview":
            return arm_error(400, "InvalidParameter", f"The value '{expand}' of parameter '$expand' is not valid.")
        vms = []
        for instance_id, state in sorted(found.instances.items(), key=lambda item: int(item[0])):
            vm: dict[str, Any] = {
                "id": f"{self._id(sub, rg, name)}/virtualMachines/{instance_id}",
                "name": f"{name}_{instance_id}",
                "type": "Microsoft.Compute/virtualMachineScaleSets/virtualMachines",
                "location": found.location,
                "instanceId": instance_id,
                "sku": {"name": found.vm_size, "tier": "Standard"},
                "properties": {"latestModelApplied": True, "provisioningState": "Succeeded"},
            }
            if expand:
                vm["properties"]["instanceView"] = {"statuses": _statuses(state)}
            vms.append(vm)
        return self._page(request, vms)

    def _scale_set_instance_view(self, request: Request, sub: str, rg: str, name: str) -> Response:
        found = self._find(sub, rg, name)
        if isinstance(found, Response):
            return found
        if found.flexible:
            return self._not_allowed_on_flexible(found, "instanceView.GET")
        counts: dict[str, int] = {}
        for state in found.instances.values():
            counts[f"PowerState/{state}"] = counts.get(f"PowerState/{state}", 0) + 1
        return Response(200, {"virtualMachine": {"statusesSummary": [
            {"code": code, "count": count} for code, count in sorted(counts.items())]},
            "statuses": [_statuses("running")[0]]})

    # -- Flexible members: ordinary virtual machines --------------------------------------------

    def _vm_id(self, sub: str, rg: str, vm: str) -> str:
        return f"/subscriptions/{sub}/resourceGroups/{rg}/{PROVIDER}/virtualMachines/{vm}"

    def _vm_body(self, scale_set: ScaleSet, vm: str, state: str, expand: bool) -> dict[str, Any]:
        set_id = self._id(scale_set.subscription, scale_set.resource_group, scale_set.name)
        properties: dict[str, Any] = {
            "vmId": str(uuid.uuid5(uuid.NAMESPACE_URL, set_id + vm)),
            "virtualMachineScaleSet": {"id": set_id},
            "provisioningState": "Succeeded",
        }
        if expand:
            properties["instanceView"] = {"computerName": vm[:15], "statuses": _statuses(state)}
        return {"id": self._vm_id(scale_set.subscription, scale_set.resource_group, vm), "name": vm,
                "type": "Microsoft.Compute/virtualMachines", "location": scale_set.location, "properties": properties}

    def _flexible_vms(self, sub: str, rg: str) -> list[tuple[ScaleSet, str, str]]:
        members = [(s, vm, state) for (sid, gid, _), s in self._sets.items()
                   if s.flexible and (sid, gid) == (sub.lower(), rg.lower()) for vm, state in s.instances.items()]
        return sorted(members, key=lambda member: member[1].lower())

    def _list_rg_vms(self, request: Request, sub: str, rg: str) -> Response:
        problem = self._group_error(sub, rg)
        if problem:
            return problem
        members = self._flexible_vms(sub, rg)
        wanted = request.arg("$filter")
        if wanted is not None:
            match = VMSS_FILTER.match(wanted)
            if not match:
                return arm_error(400, "InvalidParameter", f"The value '{wanted}' of parameter '$filter' is not valid. "
                                 "Allowed value is 'virtualMachineScaleSet/id' eq '<scale set resource id>'.")
            members = [m for m in members if self._id(m[0].subscription, m[0].resource_group, m[0].name).lower()
                       == match["id"].lower()]
        expand = request.arg("$expand")
        if expand is not None and (expand.lower() != "instanceview" or wanted is None):
            return arm_error(400, "InvalidParameter", f"The value '{expand}' of parameter '$expand' is not valid: "
                             "'instanceView' can only be specified together with a valid $filter.")
        return self._page(request, [self._vm_body(s, vm, state, expand is not None) for s, vm, state in members])

    def _find_vm(self, sub: str, rg: str, vm: str) -> tuple[ScaleSet, str] | Response:
        problem = self._group_error(sub, rg)
        if problem:
            return problem
        for scale_set, name, _ in self._flexible_vms(sub, rg):
            if name.lower() == vm.lower():
                return scale_set, name
        return arm_error(404, "ResourceNotFound",
                         f"The Resource 'Microsoft.Compute/virtualMachines/{vm}' under resource group '{rg}' was not "
                         "found. For more details please go to https://aka.ms/ARMResourceNotFoundFix")

    def _vm_instance_view(self, request: Request, sub: str, rg: str, vm: str) -> Response:
        found = self._find_vm(sub, rg, vm)
        if isinstance(found, Response):
            return found
        scale_set, name = found
        return Response(200, {"computerName": name[:15], "statuses": _statuses(scale_set.instances[name])})

    def _act_vm(self, request: Request, sub: str, rg: str, vm: str, action: str) -> Response:
        found = self._find_vm(sub, rg, vm)
        if isinstance(found, Response):
            return found
        scale_set, name = found
        return self._accept(request, sub, scale_set, action.lower(), [name], vm=name)

    # -- gallery image definitions -------------------------------------------------------------

    def _get_gallery_image(self, request: Request, sub: str, rg: str, gallery: str, image: str) -> Response:
        problem = self._group_error(sub, rg)
        if problem:
            return problem
        found = self.gallery_images.get((rg.lower(), gallery.lower(), image.lower()))
        if found is None:
            if not any(key[:2] == (rg.lower(), gallery.lower()) for key in self.gallery_images):
                parent = f"/subscriptions/{sub}/resourceGroups/{rg}/{PROVIDER}/galleries/{gallery}"
                return arm_error(404, "ParentResourceNotFound",
                                 f"Failed to perform 'read' on resource(s) of type 'galleries/images', because the "
                                 f"parent resource '{parent}' could not be found.")
            return arm_error(404, "ResourceNotFound",
                             f"The Resource 'Microsoft.Compute/galleries/{gallery}/images/{image}' under resource "
                             f"group '{rg}' was not found. For more details please go to "
                             "https://aka.ms/ARMResourceNotFoundFix")
        return Response(200, {
            "id": f"/subscriptions/{sub}/resourceGroups/{found.resource_group}/{PROVIDER}/galleries/"
                  f"{found.gallery}/images/{found.name}",
            "name": found.name, "type": "Microsoft.Compute/galleries/images", "location": found.location,
            "properties": {"osType": found.os_type, "osState": found.os_state,
                           "hyperVGeneration": found.hyper_v_generation, "architecture": found.architecture,
                           "identifier": {"publisher": found.publisher, "offer": found.offer, "sku": found.sku},
                           "provisioningState": "Succeeded"}})

    # -- actions as long-running operations ---------------------------------------------------

    def _act(self, request: Request, sub: str, rg: str, name: str, action: str) -> Response:
        found = self._find(sub, rg, name)
        if isinstance(found, Response):
            return found
        action = action.lower()
        if found.flexible:
            return self._not_allowed_on_flexible(found, f"{action}.POST")
        try:
            body = request.json() if request.body else None
        except ValueError:
            return arm_error(400, "InvalidRequestContent",
                             "The request content was invalid and could not be deserialized.")
        ids = list(found.instances) if not body or body.get("instanceIds") is None else body["instanceIds"]
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            return arm_error(400, "InvalidRequestContent", "instanceIds must be an array of strings.")
        unknown = [i for i in ids if i not in found.instances]
        if unknown:
            return arm_error(400, "InvalidParameter",
                             f"The instance ids '{', '.join(unknown)}' are not valid for the scale set '{name}'.")
        return self._accept(request, sub, found, action, list(ids))

    def _accept(self, request: Request, sub: str, found: ScaleSet, action: str, ids: list[str],
                vm: str | None = None) -> Response:
        """Start `action` on `ids` of `found` (or on the single VM `vm`) as a long-running operation."""
        busy = [op for op in self.operations.values() if op.scale_set is found and op.status == "InProgress"
                and op.action != action and set(op.instance_ids) & set(ids)]
        if busy:
            where = f"VM '{vm}'" if vm else f"scale set '{found.name}'"
            return arm_error(409, "OperationNotAllowed",
                             f"Operation '{action}' is not allowed on {where} since an operation "
                             f"'{busy[0].action}' is in progress on it.")
        now = time.monotonic()
        operation = Operation(str(uuid.uuid4()), action, found, list(ids), now, now + self.operation_delay,
                              error=found.fail_next, vm=vm)
        found.fail_next = None
        self.operations[operation.id] = operation
        self.actions.append((action, found.resource_group, found.name, list(ids)))
        if operation.error is None:
            for instance_id in ids:
                if found.instances[instance_id] != TRANSITIONS[action][1]:
                    found.instances[instance_id] = TRANSITIONS[action][0]
        version = request.arg("api-version")
        status_url = (f"{self.url}/subscriptions/{sub}/{PROVIDER}/locations/{found.location}/operations/"
                      f"{operation.id}?p={uuid.uuid4()}&api-version={version}")
        headers = {"Azure-AsyncOperation": status_url, "Location": status_url + "&monitor=true",
                   "Azure-AsyncNotification": "Enabled"}
        if self.retry_after:
            headers["Retry-After"] = self.retry_after
        return Response(202, None, headers)

    def _settle(self) -> None:
        """Finish operations whose time has come: instances reach their final state (or stay put)."""
        now = time.monotonic()
        for operation in self.operations.values():
            if operation.status != "InProgress" or now < operation.done_at:
                continue
            operation.status = "Failed" if operation.error else "Succeeded"
            if operation.error is None:
                for instance_id in operation.instance_ids:
                    if instance_id in operation.scale_set.instances:
                        operation.scale_set.instances[instance_id] = TRANSITIONS[operation.action][1]

    def _operation(self, request: Request, sub: str, location: str, op: str) -> Response:
        problem = self._subscription_error(sub)
        if problem:
            return problem
        operation = self.operations.get(op)
        if operation is None:
            return arm_error(404, "NotFound", f"The operation '{op}' was not found.")
        headers = {"Retry-After": self.retry_after} if self.retry_after else {}
        if request.arg("monitor") == "true":  # the Location URL: 202 while running, then the (empty) result
            return Response(202 if operation.status == "InProgress" else 200, None, headers)
        body: dict[str, Any] = {"name": operation.id, "status": operation.status,
                                "startTime": _iso(operation.started)}
        if operation.status != "InProgress":
            body["endTime"] = _iso(operation.done_at)
        if operation.error:
            body["error"] = dict(operation.error)
        return Response(200, body, headers if operation.status == "InProgress" else {})


def _statuses(state: str) -> list[dict[str, str]]:
    """An instance view's statuses: provisioning state, then power state (ARM's order)."""
    return [{"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded"},
            {"code": f"PowerState/{state}", "level": "Info", "displayStatus": DISPLAY[state]}]


def _iso(monotonic: float) -> str:
    wall = time.time() - (time.monotonic() - monotonic)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(wall)) + f".{int(wall % 1 * 1e6):06d}+00:00"


def arm_env(aad: FakeAAD, arm: FakeARM, **extra: str) -> dict[str, str]:
    """Settings that point the real credential and compute client at these fakes."""
    env = {
        "AZURE_AD_TENANT_ID": aad.tenant,
        "AZURE_AD_TOKEN_EP": aad.url,
        "AZURE_SP_CLIENT_ID": aad.client_id,
        "AZURE_SP_CLIENT_SECRET": aad.client_secret,
        "AZURE_SP_APP_ID_URI": arm.url,
        "AZURE_SUBSCRIPTION_ID": arm.subscription,
    }
    env.update(extra)
    return env
