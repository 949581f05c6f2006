"""The Azure credential and the endpoints that go with it.

A service principal (the seed's client-credentials flow) when its settings are present; otherwise
managed identity through DefaultAzureCredential, which is what a Function app in Azure should use.
The authority host and ARM endpoint come from settings so sovereign and private clouds work.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from batchk8s import caches

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from batchk8s.settings import Settings

# Authorities MSAL knows; any other host (Azure Stack, a private cloud) cannot be validated through
# Microsoft's public instance discovery, so discovery is switched off for it.
KNOWN_AUTHORITIES = frozenset({
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login.chinacloudapi.cn",
    "login.microsoftonline.de",
    "login.windows.net",
    "login.partner.microsoftonline.cn",
})


def get_credential(settings: Settings) -> TokenCredential:
    """One credential per distinct identity, so its token cache is shared by every client.

    Without a service principal, AZURE_CLIENT_ID picks the user-assigned managed identity (a Function
    app with several identities, or only a user-assigned one, gets no token without it)."""
    secret = settings.client_secret.reveal() if settings.client_secret else None
    return _credential(settings.authority_host, settings.tenant_id, settings.client_id, secret,
                       settings.managed_identity_client_id)


# A token request is a small POST: it gets a few attempts and a short budget of its own, so an Entra
# outage is a prompt 502 naming Entra, not minutes of the caller's deadline. (azure-identity gives a
# credential no per-call options, so the operation's deadline cannot reach it: this budget is fixed.)
TOKEN_RETRIES = 2
TOKEN_BUDGET_SECONDS = 10.0
TOKEN_READ_SECONDS = 5.0


@caches.register
@lru_cache(maxsize=8)
def _credential(authority: str, tenant: str | None, client_id: str | None, secret: str | None,
                identity_client_id: str | None) -> TokenCredential:
    from batchk8s.retry import core_policy

    discovery_off = urlparse(authority).hostname not in KNOWN_AUTHORITIES
    recorder = _TokenResponses()
    if client_id and secret and tenant:
        from azure.identity import ClientSecretCredential

        bounded = core_policy(total=TOKEN_RETRIES, backoff=0.5, backoff_max=4, budget=TOKEN_BUDGET_SECONDS)
        return _Recording(ClientSecretCredential(
            tenant, client_id, secret, authority=authority, disable_instance_discovery=discovery_off,
            retry_policy_class=lambda **_: bounded, connection_timeout=5, read_timeout=TOKEN_READ_SECONDS,
            raw_response_hook=recorder.record), recorder)
    from azure.identity import DefaultAzureCredential

    # Managed identity keeps azure-identity's own bounded policies (IMDS has its retry rules and a 2 s
    # connect timeout, and refuses another retry policy); only the answers are recorded.
    return _Recording(DefaultAzureCredential(authority=authority, disable_instance_discovery=discovery_off,
                                             managed_identity_client_id=identity_client_id,
                                             exclude_interactive_browser_credential=True,
                                             raw_response_hook=recorder.record), recorder, chain=True)


class _TokenResponses(threading.local):
    """The last error answer from the token endpoint, per thread: azure-identity's exception drops the
    HTTP status (it keeps only Entra's description), and a 502 should say what Entra answered."""

    response: Any = None

    def record(self, pipeline_response: Any) -> None:
        http = pipeline_response.http_response
        self.response = http if http.status_code >= 400 else None


class _Recording:
    """The credential, raising token failures with the status Entra answered (`response`)."""

    def __init__(self, inner: Any, recorder: _TokenResponses, *, chain: bool = False):
        self._inner = inner
        self._recorder = recorder
        self._chain = chain  # DefaultAzureCredential: a failure may mean no identity is configured at all

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        return self._fetch(self._inner.get_token, scopes, kwargs)

    def get_token_info(self, *scopes: str, **kwargs: Any) -> Any:
        return self._fetch(self._inner.get_token_info, scopes, kwargs)

    def _fetch(self, method: Any, scopes: tuple[str, ...], kwargs: dict[str, Any]) -> Any:
        from azure.core.exceptions import ClientAuthenticationError

        self._recorder.response = None
        try:
            return method(*scopes, **kwargs)
        except ClientAuthenticationError as exc:
            # The chain's own summary when every credential in it was unavailable (none configured).
            # A credential in it that reached Entra and was refused says so with an AADSTS code.
            unavailable = (self._chain and "from the included credentials" in str(exc.message)
                           and "AADSTS" not in str(exc.message))
            failed = ClientAuthenticationError(message=exc.message,
                                               response=None if unavailable else self._recorder.response)
            failed.token_request = True  # type: ignore[attr-defined]
            failed.no_credential = unavailable  # type: ignore[attr-defined]
            raise failed from None

    def close(self) -> None:
        self._inner.close()


@caches.register
@lru_cache(maxsize=4)
def get_managed_identity(client_id: str | None) -> TokenCredential:
    """The managed identity alone (user-assigned when `client_id` is given), as the Functions host uses
    it for `AzureWebJobsStorage__credential=managedidentity`: no fallback to another credential."""
    from azure.identity import ManagedIdentityCredential

    recorder = _TokenResponses()
    return _Recording(ManagedIdentityCredential(client_id=client_id, raw_response_hook=recorder.record), recorder)


def clear_cache() -> None:
    """Forget cached credentials (settings changed, e.g. between tests)."""
    _credential.cache_clear()
    get_managed_identity.cache_clear()
