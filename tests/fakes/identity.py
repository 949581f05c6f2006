"""A fake of the App Service / Azure Functions managed-identity endpoint (IDENTITY_ENDPOINT).

Follows Microsoft Learn, "How to use managed identities for App Service and Azure Functions",
section "REST endpoint reference" (the 2019-08-01 protocol; the platform sets IDENTITY_ENDPOINT and
IDENTITY_HEADER in the app's environment):

- request: `GET {IDENTITY_ENDPOINT}?resource=<resource URI>&api-version=2019-08-01`, header
  `X-IDENTITY-HEADER: {IDENTITY_HEADER}`; optional `client_id`, `principal_id` or `mi_res_id` picks a
  user-assigned identity (without one the system-assigned identity is used, which may not exist);
- response 200: `access_token`, `expires_on` (epoch seconds, as a string), `resource`, `token_type`
  (`Bearer`) and `client_id` of the identity the token was issued to;
- refusals carry `statusCode` and `message`: a missing or wrong header or api-version, an identity
  the app does not have, and Entra ID's own refusal passed through (AADSTS500011 for a resource the
  tenant does not know).

Like the real one it listens on plain http on the local host (the platform's endpoint is
`http://localhost:<port>/msi/token`), and tokens come from the fake Entra ID, so the ARM, Batch and
Azurite fakes accept them exactly as they accept a service principal's.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

from tests.fakes.aad import AADError, FakeAAD
from tests.fakes.https import FakeService, Request, Response

API_VERSION = "2019-08-01"
PATH = "/msi/token"


@dataclass(frozen=True)
class Identity:
    client_id: str
    principal_id: str
    resource_id: str


class FakeManagedIdentity(FakeService):
    """The endpoint for one app: a system-assigned identity (optional) and any user-assigned ones."""

    def __init__(self, _ssl_context: object = None, *, aad: FakeAAD, system_assigned: bool = False,
                 user_assigned: tuple[str, ...] = (), latency: float = 0.0):
        super().__init__(None, latency)
        self.aad = aad
        self.header = secrets.token_hex(16)  # IDENTITY_HEADER: rotates with every app restart in Azure
        self.system = _identity("system") if system_assigned else None
        self.user_assigned = {client_id.lower(): _identity(client_id) for client_id in user_assigned}
        self.route("GET", PATH)(self._token)

    @property
    def endpoint(self) -> str:
        return self.url + PATH

    def environment(self) -> dict[str, str]:
        """What the platform puts in the app's environment."""
        return {"IDENTITY_ENDPOINT": self.endpoint, "IDENTITY_HEADER": self.header}

    def _pick(self, request: Request) -> Identity | None:
        client_id, principal_id, resource_id = (request.arg(key) for key in ("client_id", "principal_id", "mi_res_id"))
        if client_id:
            return self.user_assigned.get(client_id.lower())
        if principal_id:
            return next((i for i in self.user_assigned.values() if i.principal_id == principal_id.lower()), None)
        if resource_id:
            return next((i for i in self.user_assigned.values() if i.resource_id == resource_id.lower()), None)
        return self.system

    def _token(self, request: Request) -> Response:
        if request.headers.get("x-identity-header") != self.header:
            return _refusal(401, "The X-IDENTITY-HEADER header is missing or does not match IDENTITY_HEADER.")
        if request.arg("api-version") != API_VERSION:
            return _refusal(400, f"The api-version '{request.arg('api-version')}' is not supported; "
                                 f"use {API_VERSION}.")
        resource = request.arg("resource")
        if not resource:
            return _refusal(400, "The 'resource' query parameter is required.")
        identity = self._pick(request)
        if identity is None:
            return _refusal(400, "Unable to load the proper Managed Identity.")
        try:
            token, issued = self.aad.issue(resource, identity.client_id)
        except AADError as refusal:
            return _refusal(refusal.status, str(refusal))
        return Response(200, {"access_token": token, "expires_on": str(issued.expires_on), "resource": resource,
                              "token_type": "Bearer", "client_id": identity.client_id})


def _identity(client_id: str) -> Identity:
    if client_id == "system":
        client_id = str(uuid.uuid4())
    principal = str(uuid.uuid5(uuid.NAMESPACE_URL, f"principal/{client_id}"))
    resource = (f"/subscriptions/5ca1ab1e-0000-4000-8000-00000000c0de/resourcegroups/rg/providers/"
                f"microsoft.managedidentity/userassignedidentities/id-{client_id[:8]}").lower()
    return Identity(client_id.lower(), principal, resource)


def _refusal(status: int, message: str) -> Response:
    return Response(status, {"statusCode": status, "message": message, "correlationId": str(uuid.uuid4())})
