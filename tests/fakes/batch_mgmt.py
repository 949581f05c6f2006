"""A fake of the Azure Batch management plane's pools (`Microsoft.Batch/batchAccounts/pools`), sharing its pools
with a FakeBatch data plane, as the two planes of one Batch account do.

It follows the Batch management REST API, api-version 2025-06-01 (Azure/azure-rest-api-specs
`specification/batch/resource-manager/Microsoft.Batch/Batch/stable/2025-06-01/openapi.json`, the version
azure-mgmt-batch 19 sends): Pool_Create (PUT) and Pool_Get. The definitions it answers with are vendored in
tests/data/batch-management-2025-06-01.excerpt.json, and tests/contract/test_fake_batch_mgmt.py checks every
request it accepts and every answer it gives against them.

What it does, with ARM's shapes:
* PUT creates the pool and answers 200 with the `Pool` (identity with each identity's clientId and
  principalId, `provisioningState` Succeeded, the allocation state and node counts of the data plane) and an
  `ETag`. The pool then exists in the FakeBatch: the data plane serves it (with its `identity`, and
  resource files' `identityReference`), resizes and deletes it, as Batch does for pools created either way.
  The body is translated the way the two definitions correspond (deploymentConfiguration ->
  virtualMachineConfiguration, imageReference.id -> virtualMachineImageId, scaleSettings.fixedScale -> target
  node counts, interNodeCommunication -> enableInterNodeCommunication, PascalCase enums -> camelCase), and
  the data plane's own checks apply (ids, required properties, supported node agent SKUs) with its error
  codes, answered in ARM's `CloudError` shape.
* Conditional requests as the operation declares them (`If-Match`, `If-None-Match`): `If-None-Match: *` on a
  pool that exists, or an `If-Match` ETag that no longer matches, is 412 (ARM's answer to a failed
  precondition). An unconditional PUT on an existing pool would replace it; replacing is not served (409), so a
  caller that relies on it fails loudly here.
* ARM's common refusals: no or a wrong bearer token (401), a missing api-version, an unknown subscription,
  resource group or Batch account (404, codes as FakeARM words them).

What it refuses beyond the schema (from the definitions' descriptions): a pool identity of a type other than
`UserAssigned` with identities, an identity that does not exist (seed them with `add_identity`), and an
`identityReference` (resource file or registry) naming an identity the pool does not carry. Their codes
(`InvalidParameter`, `InvalidPropertyValue`) follow ARM's and the data plane's usual ones; the texts are not
documented ones.
"""

from __future__ import annotations

import json
import re
import ssl
import threading
import uuid
from typing import Any

from tests.fakes.aad import FakeAAD
from tests.fakes.arm import SUBSCRIPTION, arm_error
from tests.fakes.batch import BatchFault, FakeBatch
from tests.fakes.https import FakeService, Request, Response

API_VERSION = "2025-06-01"
POOL_PATH = (r"(?i)/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.Batch"
             r"/batchAccounts/(?P<account>[^/]+)/pools/(?P<name>[^/]+)")
_CAMEL = {"Pool": "pool", "Task": "task", "Admin": "admin", "NonAdmin": "nonadmin",
          "DockerCompatible": "dockerCompatible", "CriCompatible": "criCompatible"}


class FakeBatchManagement(FakeService):
    """`Microsoft.Batch/batchAccounts/{account}/pools` for one account in one resource group."""

    def __init__(self, ssl_context: ssl.SSLContext, *, aad: FakeAAD, batch: FakeBatch,
                 subscription: str = SUBSCRIPTION, resource_group: str = "batch-rg", account: str = "batchacct",
                 latency: float = 0.0):
        super().__init__(ssl_context, latency)
        self.aad = aad
        self.batch = batch
        self.subscription = subscription
        self.resource_group = resource_group
        self.account = account
        self.identities: dict[str, dict[str, str]] = {}  # resource id (lower case) -> clientId, principalId
        self.pools: dict[str, dict[str, Any]] = {}  # pool name (lower case) -> ARM properties, identity, etag
        # Every request body accepted and every JSON answer: (method, path, status, body), for the contract test.
        self.bodies: list[tuple[str, Any]] = []
        self.answers: list[tuple[str, str, int, Any]] = []
        self._state_lock = threading.RLock()
        self.route("PUT", POOL_PATH)(self._put)
        self.route("GET", POOL_PATH)(self._get)

    def start(self) -> FakeBatchManagement:
        super().start()
        self.aad.register(self.url)  # the tenant knows this ARM endpoint as a resource
        return self

    def add_identity(self, resource_id: str, client_id: str | None = None) -> str:
        """Seed a user-assigned identity; returns its client id."""
        client_id = client_id or str(uuid.uuid4())
        self.identities[resource_id.lower()] = {"clientId": client_id, "principalId": str(uuid.uuid4())}
        return client_id

    # -- ARM's common checks ------------------------------------------------------------------

    def dispatch(self, request: Request) -> Response:
        if not self.aad.accepts(request.headers.get("authorization"), self.url):
            if "authorization" not in request.headers:
                return self._answer(request, arm_error(401, "AuthenticationFailed",
                                                       "Authentication failed. The 'Authorization' header is missing."))
            return self._answer(request, arm_error(401, "InvalidAuthenticationToken", "The access token is invalid."))
        if not request.arg("api-version"):
            return self._answer(request, arm_error(
                400, "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests."))
        if request.arg("api-version") != API_VERSION:
            return self._answer(request, arm_error(
                400, "InvalidApiVersionParameter", f"The api-version '{request.arg('api-version')}' is invalid. "
                f"The supported versions are '{API_VERSION}'."))
        with self._state_lock:
            return self._answer(request, super().dispatch(request))

    def not_found(self, request: Request) -> Response:
        return arm_error(404, "NotFound", f"The requested resource path '{request.path}' was not found.")

    def _answer(self, request: Request, response: Response) -> Response:
        if isinstance(response.body, dict):
            self.answers.append((request.method, request.path, response.status, json.loads(json.dumps(response.body))))
        return response

    def _account_error(self, sub: str, rg: str, account: str) -> Response | None:
        if sub.lower() != self.subscription.lower():
            return arm_error(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")
        if rg.lower() != self.resource_group.lower():
            return arm_error(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
        if account.lower() != self.account.lower():
            return arm_error(404, "ResourceNotFound", f"The Resource 'Microsoft.Batch/batchAccounts/{account}' under "
                             f"resource group '{rg}' was not found. For more details please go to "
                             "https://aka.ms/ARMResourceNotFoundFix")
        return None

    # -- pools --------------------------------------------------------------------------------

    def _get(self, request: Request, sub: str, rg: str, account: str, name: str) -> Response:
        problem = self._account_error(sub, rg, account)
        if problem:
            return problem
        pool = self._live(name)
        if pool is None:
            return self._pool_not_found(rg, account, name)
        return Response(200, self._view(sub, rg, account, name), {"ETag": pool["etag"]})

    def _put(self, request: Request, sub: str, rg: str, account: str, name: str) -> Response:
        problem = self._account_error(sub, rg, account)
        if problem:
            return problem
        try:
            body = request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return arm_error(400, "InvalidRequestContent", "The request content was invalid and could not be "
                                                           "deserialized.")
        existing = self._live(name)
        if_none, if_match = request.headers.get("if-none-match"), request.headers.get("if-match")
        if if_none == "*" and existing is not None:
            return arm_error(412, "PreconditionFailed", f"The pool '{name}' already exists (If-None-Match: *).")
        if if_match and (existing is None or if_match.strip('"') not in ("*", existing["etag"].strip('"'))):
            return arm_error(412, "PreconditionFailed", f"The ETag of pool '{name}' does not match If-Match.")
        if existing is not None:
            return arm_error(409, "Conflict", "Replacing an existing pool with PUT is not served by this fake.")
        properties = body.get("properties") or {}
        identity = body.get("identity")
        refusal = self._identity_refusal(identity, properties)
        if refusal:
            return refusal
        try:
            self.batch.add_pool(self._data_plane(name, properties), identity=self._data_plane_identity(identity))
        except BatchFault as fault:
            return arm_error(fault.status, fault.code, fault.message)
        self.bodies.append(("Pool", body))
        self.pools[name.lower()] = {"properties": properties, "identity": identity, "etag": self._etag()}
        return Response(200, self._view(sub, rg, account, name), {"ETag": self.pools[name.lower()]["etag"]})

    def _live(self, name: str) -> dict[str, Any] | None:
        """The pool as this plane knows it, if the data plane still has it (a deleted pool is gone from both)."""
        pool = self.pools.get(name.lower())
        if pool is not None and name.lower() not in self.batch.pools:
            del self.pools[name.lower()]
            return None
        return pool

    def _pool_not_found(self, rg: str, account: str, name: str) -> Response:
        return arm_error(404, "ResourceNotFound", f"The Resource 'Microsoft.Batch/batchAccounts/{account}/pools/"
                         f"{name}' under resource group '{rg}' was not found. For more details please go to "
                         "https://aka.ms/ARMResourceNotFoundFix")

    def _identity_refusal(self, identity: Any, properties: dict[str, Any]) -> Response | None:
        carried: set[str] = set()
        if identity is not None:
            kind = identity.get("type") if isinstance(identity, dict) else None
            assigned = identity.get("userAssignedIdentities") if isinstance(identity, dict) else None
            if kind not in ("UserAssigned", "None") or (kind == "UserAssigned" and not assigned):
                return arm_error(400, "InvalidParameter", "The pool identity must be of type 'UserAssigned' with at "
                                 "least one identity, or 'None'.")
            for resource_id in assigned or {}:
                if resource_id.lower() not in self.identities:
                    return arm_error(400, "InvalidParameter", f"The user assigned identity '{resource_id}' was not "
                                     "found.")
                carried.add(resource_id.lower())
        start = properties.get("startTask") or {}
        vm = (properties.get("deploymentConfiguration") or {}).get("virtualMachineConfiguration") or {}
        registries = (vm.get("containerConfiguration") or {}).get("containerRegistries") or []
        for holder in [*(start.get("resourceFiles") or []), *registries]:
            reference = (holder.get("identityReference") or {}).get("resourceId")
            if reference is not None and reference.lower() not in carried:
                return arm_error(400, "InvalidPropertyValue", f"The identity reference '{reference}' is not an "
                                 "identity of this pool.")
        return None

    # -- the two shapes -----------------------------------------------------------------------

    @staticmethod
    def _data_plane(name: str, properties: dict[str, Any]) -> dict[str, Any]:
        """The data-plane create body this management-plane pool corresponds to."""
        vm = dict((properties.get("deploymentConfiguration") or {}).get("virtualMachineConfiguration") or {})
        image = dict(vm.get("imageReference") or {})
        if "id" in image:
            image = {"virtualMachineImageId": image["id"]}
        vm_config: dict[str, Any] = {"imageReference": image, "nodeAgentSKUId": vm.get("nodeAgentSkuId")}
        if vm.get("containerConfiguration"):
            container = dict(vm["containerConfiguration"])
            container["type"] = _CAMEL.get(container.get("type"), container.get("type"))
            vm_config["containerConfiguration"] = container
        fixed = (properties.get("scaleSettings") or {}).get("fixedScale") or {}
        body: dict[str, Any] = {
            "id": name, "vmSize": properties.get("vmSize"), "virtualMachineConfiguration": vm_config,
            "targetDedicatedNodes": fixed.get("targetDedicatedNodes", 0),
            "targetLowPriorityNodes": fixed.get("targetLowPriorityNodes", 0),
            "enableInterNodeCommunication": properties.get("interNodeCommunication") == "Enabled",
            "taskSlotsPerNode": properties.get("taskSlotsPerNode", 1),
        }
        if properties.get("metadata"):
            body["metadata"] = properties["metadata"]
        if properties.get("userAccounts"):
            body["userAccounts"] = [{**user, "elevationLevel": _CAMEL.get(user.get("elevationLevel", "NonAdmin"))}
                                    for user in properties["userAccounts"]]
        start = properties.get("startTask")
        if start:
            start = dict(start)
            auto = (start.get("userIdentity") or {}).get("autoUser")
            if auto:
                start["userIdentity"] = {"autoUser": {key: _CAMEL.get(value, value) for key, value in auto.items()}}
            body["startTask"] = start
        return body

    def _data_plane_identity(self, identity: dict[str, Any] | None) -> dict[str, Any] | None:
        if not identity or identity.get("type") != "UserAssigned":
            return None
        return {"type": "UserAssigned", "userAssignedIdentities": [
            {"resourceId": resource_id, **self.identities[resource_id.lower()]}
            for resource_id in identity["userAssignedIdentities"]]}

    def _view(self, sub: str, rg: str, account: str, name: str) -> dict[str, Any]:
        pool = self.pools[name.lower()]
        live = self.batch.pool_view(name)
        properties = json.loads(json.dumps(pool["properties"]))
        for user in properties.get("userAccounts") or []:
            user.pop("password", None)  # secrets are write-only
        for registry in ((properties.get("deploymentConfiguration") or {}).get("virtualMachineConfiguration") or {}
                         ).get("containerConfiguration", {}).get("containerRegistries") or []:
            registry.pop("password", None)
        properties.update({
            "provisioningState": "Deleting" if live["state"] == "deleting" else "Succeeded",
            "provisioningStateTransitionTime": live["stateTransitionTime"],
            "allocationState": live["allocationState"].capitalize(),
            "allocationStateTransitionTime": live["allocationStateTransitionTime"],
            "creationTime": live["creationTime"], "lastModified": live["lastModified"],
            "currentDedicatedNodes": live["currentDedicatedNodes"],
            "currentLowPriorityNodes": live["currentLowPriorityNodes"],
            "interNodeCommunication": properties.get("interNodeCommunication", "Disabled"),
            "taskSlotsPerNode": properties.get("taskSlotsPerNode", 1),
        })
        view: dict[str, Any] = {
            "id": f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Batch/batchAccounts/{account}"
                  f"/pools/{name}",
            "name": name, "type": "Microsoft.Batch/batchAccounts/pools", "etag": pool["etag"],
            "properties": properties}
        identity = pool["identity"]
        if identity:
            view["identity"] = {"type": identity["type"], "userAssignedIdentities": {
                resource_id: dict(self.identities[resource_id.lower()])
                for resource_id in identity.get("userAssignedIdentities") or {}}}
        return view

    @staticmethod
    def _etag() -> str:
        return f'W/"0x8DE{uuid.uuid4().hex[:13].upper()}"'


def is_pool_path(path: str) -> bool:
    return bool(re.fullmatch(POOL_PATH, path))
