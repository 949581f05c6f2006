"""The Azure credential and the endpoints that go with it.

A service principal (the seed's client-credentials flow) when its settings are present; otherwise
managed identity through DefaultAzureCredential, which is what a Function app in Azure should use.
The authority host and ARM endpoint come from settings so sovereign and private clouds work.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import urlparse

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


@lru_cache(maxsize=8)
def _credential(authority: str, tenant: str | None, client_id: str | None, secret: str | None,
                identity_client_id: str | None) -> TokenCredential:
    discovery_off = urlparse(authority).hostname not in KNOWN_AUTHORITIES
    if client_id and secret and tenant:
        from azure.identity import ClientSecretCredential

        return ClientSecretCredential(tenant, client_id, secret, authority=authority,
                                      disable_instance_discovery=discovery_off)
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(authority=authority, disable_instance_discovery=discovery_off,
                                  managed_identity_client_id=identity_client_id,
                                  exclude_interactive_browser_credential=True)


@lru_cache(maxsize=4)
def get_managed_identity(client_id: str | None) -> TokenCredential:
    """The managed identity alone (user-assigned when `client_id` is given), as the Functions host uses
    it for `AzureWebJobsStorage__credential=managedidentity`: no fallback to another credential."""
    from azure.identity import ManagedIdentityCredential

    return ManagedIdentityCredential(client_id=client_id)


def clear_cache() -> None:
    """Forget cached credentials (settings changed, e.g. between tests)."""
    _credential.cache_clear()
    get_managed_identity.cache_clear()
