"""A fake Microsoft Entra ID (Azure AD) token endpoint for the client-credentials flow.

MSAL first reads the tenant's OpenID configuration, then posts to its token endpoint. Tokens are
opaque random strings; the service fakes accept only tokens this fake issued, for the scope
they were issued for, so a test exercises the real credential -> bearer header -> service path.
"""

from __future__ import annotations

import secrets
import ssl
from urllib.parse import parse_qs

from tests.fakes.https import FakeService, Request, Response


class FakeAAD(FakeService):
    def __init__(self, ssl_context: ssl.SSLContext, *, tenant: str = "00000000-0000-0000-0000-0000000000aa",
                 client_id: str = "11111111-2222-3333-4444-555555555555",
                 client_secret: str = "test-only-client-secret-0000", latency: float = 0.0):
        super().__init__(ssl_context, latency)
        self.tenant = tenant
        self.client_id = client_id
        self.client_secret = client_secret
        self.tokens: dict[str, str] = {}  # token -> scope
        self.route("GET", r"/(?P<tenant>[^/]+)/v2\.0/\.well-known/openid-configuration")(self._openid)
        self.route("POST", r"/(?P<tenant>[^/]+)/oauth2/v2\.0/token")(self._token)

    def accepts(self, authorization: str | None, audience: str) -> bool:
        """Whether a service receiving `authorization` should accept it for `audience` (e.g. ARM's URL)."""
        if not authorization or not authorization.startswith("Bearer "):
            return False
        scope = self.tokens.get(authorization[len("Bearer "):])
        return scope is not None and scope.rstrip("/").removesuffix("/.default").rstrip("/") == audience.rstrip("/")

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
        if tenant != self.tenant:
            return _aad_error(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
        if form.get("grant_type") != "client_credentials":
            return _aad_error(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
        if form.get("client_id") != self.client_id:
            return _aad_error(400, "unauthorized_client", 700016,
                              f"Application with identifier '{form.get('client_id')}' was not found.")
        if form.get("client_secret") != self.client_secret:
            return _aad_error(401, "invalid_client", 7000215, "Invalid client secret provided.")
        token = "fake-" + secrets.token_urlsafe(24)
        self.tokens[token] = form.get("scope", "")
        return Response(200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                              "access_token": token})


def _aad_error(status: int, error: str, code: int, description: str) -> Response:
    return Response(status, {"error": error, "error_description": f"AADSTS{code}: {description}",
                             "error_codes": [code], "timestamp": "2026-01-01 00:00:00Z",
                             "trace_id": "00000000-0000-0000-0000-000000000000",
                             "correlation_id": "00000000-0000-0000-0000-000000000000"})
