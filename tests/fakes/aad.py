"""A fake Microsoft Entra ID (Azure AD) token endpoint for the client-credentials flow.

Follows the Microsoft identity platform's v2.0 "OAuth 2.0 client credentials flow" document (token
request form and error response: `error`, `error_description` starting `AADSTSnnnnn:`, `error_codes`)
and the OpenID discovery document MSAL reads first. Like the real service it refuses a scope whose
resource it does not know with `invalid_resource` / AADSTS500011: only the resources registered
here (Azure's well-known ones plus each fake service's own URL) get tokens.

Tokens are JWT-shaped (`aud`, `iss`, `tid`, `oid`, `appid`, `exp`: what Azurite's OAuth mode reads),
with a signature no one checks; the service fakes accept only tokens this fake issued, for the
resource they were issued for, so a test exercises the real credential -> bearer header -> service
path. The managed-identity endpoint fake (tests/fakes/identity.py) gets its tokens here too.
"""

from __future__ import annotations

import base64
import json
import secrets
import ssl
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from tests.fakes.https import FakeService, Request, Response

# Resources every tenant knows (their service principals exist in every tenant).
WELL_KNOWN_RESOURCES = ("https://management.azure.com", "https://batch.core.windows.net", "https://storage.azure.com")
TOKEN_LIFETIME = 3599


@dataclass(frozen=True)
class Issued:
    """What a token was issued for and to whom."""

    resource: str
    client_id: str
    expires_on: int


class AADError(Exception):
    """A refusal in Entra ID's own terms (the token endpoint's error body)."""

    def __init__(self, status: int, error: str, code: int, description: str):
        super().__init__(f"AADSTS{code}: {description}")
        self.status, self.error, self.code, self.description = status, error, code, description

    def response(self) -> Response:
        return Response(self.status, {"error": self.error,
                                      "error_description": f"AADSTS{self.code}: {self.description}",
                                      "error_codes": [self.code], "timestamp": "2026-01-01 00:00:00Z",
                                      "trace_id": "00000000-0000-0000-0000-000000000000",
                                      "correlation_id": "00000000-0000-0000-0000-000000000000"})


def resource_of(scope: str) -> str:
    """The resource a v2 scope (`https://host/.default`) or a v1 resource URI names, without trailing '/'."""
    return scope.strip().removesuffix("/.default").rstrip("/")


class FakeAAD(FakeService):
    def __init__(self, ssl_context: ssl.SSLContext, *, tenant: str = "00000000-0000-0000-0000-0000000000aa",
                 client_id: str = "11111111-2222-3333-4444-555555555555",
                 client_secret: str = "test-only-client-secret-0000", latency: float = 0.0):
        super().__init__(ssl_context, latency)
        self.tenant = tenant
        self.client_id = client_id
        self.client_secret = client_secret
        self.resources: set[str] = set(WELL_KNOWN_RESOURCES)
        self.tokens: dict[str, Issued] = {}
        self.route("GET", r"/(?P<tenant>[^/]+)/v2\.0/\.well-known/openid-configuration")(self._openid)
        self.route("POST", r"/(?P<tenant>[^/]+)/oauth2/v2\.0/token")(self._token)

    def register(self, resource: str) -> None:
        """Make `resource` (a fake service's URL) known to the tenant, as an app registration would."""
        self.resources.add(resource_of(resource))

    def accepts(self, authorization: str | None, audience: str) -> bool:
        """Whether a service receiving `authorization` should accept it for `audience` (e.g. ARM's URL)."""
        if not authorization or not authorization.startswith("Bearer "):
            return False
        issued = self.tokens.get(authorization[len("Bearer "):])
        return issued is not None and issued.resource == resource_of(audience) and issued.expires_on > time.time()

    def issued_to(self, authorization: str | None) -> str | None:
        """The client id a bearer token was issued to (the app or a managed identity), or None."""
        issued = self.tokens.get((authorization or "").removeprefix("Bearer "))
        return issued.client_id if issued else None

    def issue(self, scope: str, client_id: str) -> tuple[str, Issued]:
        """A token for `scope`'s resource to `client_id`, or AADError AADSTS500011 for an unknown resource."""
        resource = resource_of(scope)
        if resource not in self.resources or urlsplit(resource).scheme != "https":
            raise AADError(400, "invalid_resource", 500011,
                           f"The resource principal named {resource} was not found in the tenant named "
                           f"{self.tenant}. This can happen if the application has not been installed by the "
                           "administrator of the tenant or consented to by any user in the tenant. You might have "
                           "sent your authentication request to the wrong tenant.")
        now = int(time.time())
        issued = Issued(resource, client_id, now + TOKEN_LIFETIME)
        claims = {"aud": resource, "iss": f"https://sts.windows.net/{self.tenant}/", "iat": now - 60,
                  "nbf": now - 60, "exp": issued.expires_on, "appid": client_id, "oid": client_id,
                  "sub": client_id, "tid": self.tenant, "ver": "1.0"}
        token = ".".join((_b64({"typ": "JWT", "alg": "RS256", "kid": "fake"}), _b64(claims),
                          base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()))
        self.tokens[token] = issued
        return token, issued

    def _openid(self, request: Request, tenant: str) -> Response:
        base = f"{self.url}/{tenant}"
        return Response(200, {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "issuer": f"{base}/v2.0",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        })

    def _token(self, request: Request, tenant: str) -> Response:
        form = {key: values[0] for key, values in parse_qs(request.body.decode()).items()}
        try:
            if tenant != self.tenant:
                raise AADError(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
            if form.get("grant_type") != "client_credentials":
                raise AADError(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
            if form.get("client_id") != self.client_id:
                raise AADError(400, "unauthorized_client", 700016,
                               f"Application with identifier '{form.get('client_id')}' was not found.")
            if form.get("client_secret") != self.client_secret:
                raise AADError(401, "invalid_client", 7000215, "Invalid client secret provided.")
            token, _ = self.issue(form.get("scope", ""), self.client_id)
        except AADError as refusal:
            return refusal.response()
        return Response(200, {"token_type": "Bearer", "expires_in": TOKEN_LIFETIME, "ext_expires_in": TOKEN_LIFETIME,
                              "access_token": token})


def _b64(part: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()
