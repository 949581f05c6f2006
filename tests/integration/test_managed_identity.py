"""The managed-identity path, as a Function app in Azure takes it: no service principal settings.

The platform sets IDENTITY_ENDPOINT and IDENTITY_HEADER; AZURE_CLIENT_ID (a setting) picks the
user-assigned identity. The real DefaultAzureCredential / ManagedIdentityCredential ask the fake
endpoint (tests/fakes/identity.py), which gets tokens from the fake Entra ID; the real compute,
Batch and Blob clients then present them to the fake ARM, the fake Batch account and Azurite (HTTPS,
OAuth). The host's identity-based storage (AzureWebJobsStorage__*) is exercised the same way.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from batchk8s import storage
from batchk8s.batch.pools import supported_images
from batchk8s.errors import UpstreamError
from batchk8s.settings import load_settings
from batchk8s.vmss import apply_action, configured_targets
from tests.fakes.aad import FakeAAD
from tests.fakes.arm import FakeARM
from tests.fakes.batch import FakeBatch
from tests.fakes.https import FakeService
from tests.fakes.identity import FakeManagedIdentity
from tests.integration.test_storage import TREE, write_tree

USER_ASSIGNED = "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"
OTHER_IDENTITY = "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d"
# Variables azure-identity reads itself: none may leak in from the machine running the tests.
AMBIENT = ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH",
           "AZURE_USERNAME", "AZURE_FEDERATED_TOKEN_FILE", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT",
           "IDENTITY_SERVER_THUMBPRINT", "AZURE_TOKEN_CREDENTIALS")


@pytest.fixture
def msi(fake_service: Callable[..., FakeService], aad: FakeAAD,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeManagedIdentity]:
    """The app's identity endpoint with one user-assigned identity, in the environment as the platform sets it."""
    endpoint: FakeManagedIdentity = fake_service(FakeManagedIdentity, aad=aad, user_assigned=(USER_ASSIGNED,))
    for name in AMBIENT:
        monkeypatch.delenv(name, raising=False)
    for name, value in endpoint.environment().items():
        monkeypatch.setenv(name, value)
    yield endpoint


def token_requests(msi: FakeManagedIdentity) -> list[dict[str, str]]:
    return [{key: values[0] for key, values in query.items()} for _, _, query in msi.log]


def test_arm_scale_sets_through_the_user_assigned_identity(msi: FakeManagedIdentity, aad: FakeAAD,
                                                           fake_service: Callable[..., FakeService]):
    arm: FakeARM = fake_service(FakeARM, aad=aad, operation_delay=0.05)
    arm.add_scale_set("rg-hpc", "vmss-a", {"0": "deallocated", "1": "deallocated"})
    settings = load_settings({"AZURE_SP_APP_ID_URI": arm.url, "AZURE_SUBSCRIPTION_ID": arm.subscription,
                              "AZURE_RES_GROUP_NAME": "rg-hpc", "AZURE_VMSS_NAME": "vmss-a",
                              "AZURE_CLIENT_ID": USER_ASSIGNED})
    assert not settings.uses_service_principal and settings.problems == ()

    [report] = apply_action(settings, "start", configured_targets(settings), wait_seconds=10)

    assert report.outcome == "completed", report
    assert set(arm.states("rg-hpc", "vmss-a").values()) == {"running"}
    assert aad.count("POST") == 0  # no client-credentials request: the identity endpoint issued the token
    [request] = token_requests(msi)  # one token, cached for every call after it
    assert request == {"api-version": "2019-08-01", "resource": arm.url, "client_id": USER_ASSIGNED}


def test_batch_through_the_user_assigned_identity(msi: FakeManagedIdentity, aad: FakeAAD,
                                                  fake_service: Callable[..., FakeService]):
    batch: FakeBatch = fake_service(FakeBatch, aad=aad)
    settings = load_settings({"AZURE_BATCH_ACCOUNT_URL": batch.url, "AZURE_CLIENT_ID": USER_ASSIGNED})

    images = supported_images(settings)

    assert images and batch.count("GET", "/supportedimages") >= 1
    [request] = token_requests(msi)
    assert request["resource"].rstrip("/") == "https://batch.core.windows.net" and request["client_id"] == USER_ASSIGNED


def test_an_identity_the_app_does_not_have_gets_no_token(msi: FakeManagedIdentity, aad: FakeAAD,
                                                         fake_service: Callable[..., FakeService]):
    batch: FakeBatch = fake_service(FakeBatch, aad=aad)
    settings = load_settings({"AZURE_BATCH_ACCOUNT_URL": batch.url, "AZURE_CLIENT_ID": OTHER_IDENTITY})

    with pytest.raises(UpstreamError) as refused:
        supported_images(settings)

    assert refused.value.code == "AuthenticationFailed"
    assert batch.count() == 0  # nothing reached the service without a token


def test_identity_endpoint_refuses_wrong_header_and_api_version(msi: FakeManagedIdentity):
    base = {"resource": "https://storage.azure.com", "client_id": USER_ASSIGNED}
    good = requests.get(msi.endpoint, params={**base, "api-version": "2019-08-01"},
                        headers={"X-IDENTITY-HEADER": msi.header}, timeout=5)
    body = good.json()
    assert good.status_code == 200 and body["token_type"] == "Bearer" and body["client_id"] == USER_ASSIGNED
    assert body["expires_on"].isdigit() and body["resource"] == "https://storage.azure.com"
    wrong_header = requests.get(msi.endpoint, params={**base, "api-version": "2019-08-01"},
                                headers={"X-IDENTITY-HEADER": "guess"}, timeout=5)
    assert wrong_header.status_code == 401 and "statusCode" in wrong_header.json()
    old_version = requests.get(msi.endpoint, params={**base, "api-version": "2017-09-01"},
                               headers={"X-IDENTITY-HEADER": msi.header}, timeout=5)
    assert old_version.status_code == 400


def test_unknown_resource_is_refused_with_aadsts500011(msi: FakeManagedIdentity, aad: FakeAAD,
                                                       fake_service: Callable[..., FakeService]):
    """A wrong ARM endpoint (a typo in AZURE_SP_APP_ID_URI) is a resource the tenant does not know."""
    direct = requests.get(msi.endpoint, params={"api-version": "2019-08-01", "resource": "https://management.example",
                                                "client_id": USER_ASSIGNED},
                          headers={"X-IDENTITY-HEADER": msi.header}, timeout=5)
    assert direct.status_code == 400 and direct.json()["message"].startswith("AADSTS500011:")

    arm: FakeARM = fake_service(FakeARM, aad=aad, audience="https://management.example")
    aad.resources.discard("https://management.example")
    settings = load_settings({"AZURE_SP_APP_ID_URI": "https://management.example",
                              "AZURE_SUBSCRIPTION_ID": arm.subscription, "AZURE_RES_GROUP_NAME": "rg-hpc",
                              "AZURE_VMSS_NAME": "vmss-a", "AZURE_CLIENT_ID": USER_ASSIGNED})
    [report] = apply_action(settings, "start", configured_targets(settings))
    assert report.outcome == "failed" and "AADSTS500011" in report.error["message"], report.error


def test_service_principal_is_refused_an_unknown_scope_too(aad: FakeAAD):
    from azure.core.exceptions import ClientAuthenticationError
    from azure.identity import ClientSecretCredential

    credential = ClientSecretCredential(aad.tenant, aad.client_id, aad.client_secret, authority=aad.url,
                                        disable_instance_discovery=True)
    with pytest.raises(ClientAuthenticationError, match="AADSTS500011"):
        credential.get_token("https://vault.example.net/.default")
    assert credential.get_token("https://storage.azure.com/.default").token.count(".") == 2  # a JWT


# --- the host's identity-based storage ---------------------------------------------------------


@pytest.fixture
def host_storage(msi: FakeManagedIdentity, oauth_azurite: tuple[str, str], monkeypatch: pytest.MonkeyPatch,
                 tmp_path: Path) -> dict[str, str]:
    """App settings as a Flex Consumption deployment has them: no connection string, no key, no service principal."""
    endpoint, bundle = oauth_azurite
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", bundle)
    prefix = "h" + uuid.uuid4().hex[:10]
    return {"AzureWebJobsStorage__blobServiceUri": endpoint, "AzureWebJobsStorage__credential": "managedidentity",
            "AzureWebJobsStorage__clientId": USER_ASSIGNED, "AZURE_STORAGE_APP_DIRECTORY": f"{prefix}-apps",
            "AZURE_STORAGE_K8S_DIRECTORY": f"{prefix}-k8s", "AZURE_STORAGE_TESK_DIRECTORY": f"{prefix}-tesk"}


def test_host_identity_storage_uploads_and_signs_user_delegation_sas(host_storage: dict[str, str],
                                                                     msi: FakeManagedIdentity, tmp_path: Path):
    settings = load_settings(host_storage)
    assert settings.problems == () and settings.storage_access().mode == "identity"

    report = storage.upload_artifacts(settings, write_tree(tmp_path))
    url = storage.blob_sas_url(settings, settings.app_container, "k8s-node-setup.sh")

    assert report.uploaded == len(TREE)
    assert "skoid" in parse_qs(urlsplit(url).query)  # signed with a user delegation key, not an account key
    got = requests.get(url, timeout=10)
    assert got.status_code == 200 and got.text == TREE["scripts/k8s-node-setup.sh"]
    resources = {(request["resource"], request.get("client_id")) for request in token_requests(msi)}
    assert resources == {("https://storage.azure.com", USER_ASSIGNED)}


def test_host_storage_credential_uses_only_the_named_identity(host_storage: dict[str, str],
                                                             msi: FakeManagedIdentity):
    """`__credential=managedidentity` with a client id the app does not have: no fallback to another
    credential, and a refusal within seconds (the storage SDK alone would retry it for over a minute)."""
    settings = load_settings({**host_storage, "AzureWebJobsStorage__clientId": OTHER_IDENTITY})
    started = time.monotonic()
    with pytest.raises(UpstreamError) as refused:
        storage.ensure_containers(settings)
    assert refused.value.code == "AuthenticationFailed" and time.monotonic() - started < 10
    assert {(r["resource"], r["client_id"]) for r in token_requests(msi)} == {
        ("https://storage.azure.com", OTHER_IDENTITY)}
