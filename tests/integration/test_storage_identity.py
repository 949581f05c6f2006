"""The managed-identity path: bearer tokens against Azurite (HTTPS, OAuth on) and user-delegation SAS URLs.

Azurite's basic OAuth mode checks a token's issuer, audience and lifetime but not its signature, so the
test credential hands out unsigned JWTs; everything else (bearer header over TLS, the user delegation
key request, SAS validation by the service) is the real thing.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from batchk8s import credentials, storage
from batchk8s.settings import Settings, load_settings
from tests.conftest import AZURITE_ACCOUNT
from tests.integration.test_storage import TREE, RequestLog, write_tree


class UnsignedJwtCredential:
    """A TokenCredential issuing storage tokens of the shape Entra ID issues (unsigned: Azurite does not check)."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **_: Any) -> Any:
        from azure.core.credentials import AccessToken

        self.scopes.append(scopes)
        now = int(time.time())
        claims = {"aud": "https://storage.azure.com", "iss": "https://sts.windows.net/00000000-0000-0000-0000-0000000000aa/",
                  "iat": now - 60, "nbf": now - 60, "exp": now + 3600, "oid": str(uuid.uuid4()),
                  "tid": "00000000-0000-0000-0000-0000000000aa"}
        encode = lambda part: base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()  # noqa: E731
        return AccessToken(f"{encode({'alg': 'none', 'typ': 'JWT'})}.{encode(claims)}.", now + 3600)


@pytest.fixture
def identity(oauth_azurite: tuple[str, str], monkeypatch: pytest.MonkeyPatch,
             tmp_path: Path) -> Iterator[tuple[Settings, UnsignedJwtCredential]]:
    endpoint, bundle = oauth_azurite
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", bundle)
    credential = UnsignedJwtCredential()
    monkeypatch.setattr(credentials, "get_credential", lambda settings: credential)
    prefix = "m" + uuid.uuid4().hex[:10]
    settings = load_settings({
        "AZURE_STORAGE_ACCOUNT_NAME": AZURITE_ACCOUNT, "AZURE_STORAGE_BLOB_ENDPOINT": endpoint,
        "AZURE_STORAGE_APP_DIRECTORY": f"{prefix}-apps", "AZURE_STORAGE_K8S_DIRECTORY": f"{prefix}-k8s",
        "AZURE_STORAGE_TESK_DIRECTORY": f"{prefix}-tesk"})
    storage.upload_artifacts(settings, write_tree(tmp_path))
    yield settings, credential


def test_identity_uploads_with_bearer_tokens(identity: tuple[Settings, UnsignedJwtCredential]):
    settings, credential = identity
    assert credential.scopes and all(scope == ("https://storage.azure.com/.default",) for scope in credential.scopes)
    anonymous = requests.get(storage.blob_url(settings, settings.app_container, "k8s-node-setup.sh"), timeout=10)
    assert anonymous.status_code in (401, 403, 404)


def test_user_delegation_sas_reads_one_blob_over_https_only(identity: tuple[Settings, UnsignedJwtCredential],
                                                            monkeypatch: pytest.MonkeyPatch):
    settings, _ = identity
    log = RequestLog(monkeypatch)
    url = storage.blob_sas_url(settings, settings.app_container, "k8s-node-setup.sh")
    query = parse_qs(urlsplit(url).query)
    assert "skoid" in query and query["spr"] == ["https"] and query["sp"] == ["r"]
    expiry = datetime.fromisoformat(query["se"][0].replace("Z", "+00:00"))
    assert expiry <= datetime.now(UTC) + timedelta(days=7)  # Azure's cap for user delegation keys
    assert expiry > datetime.now(UTC) + timedelta(days=6, hours=23)

    got = requests.get(url, timeout=10)
    assert got.status_code == 200 and got.text == TREE["scripts/k8s-node-setup.sh"]
    assert requests.put(url, data=b"x", headers={"x-ms-blob-type": "BlockBlob"}, timeout=10).status_code == 403
    other = url.replace(f"{settings.app_container}/k8s-node-setup.sh", f"{settings.tesk_container}/hello.json")
    assert requests.get(other, timeout=10).status_code == 403

    container = storage.container_sas_url(settings, settings.k8s_container)
    base, token = container.split("?", 1)
    listing = requests.get(f"{base}?restype=container&comp=list&{token}", timeout=10)
    assert listing.status_code == 200 and "tesk/deployment.yaml" in listing.text
    assert log.count("POST", "comp=userdelegationkey") == 1  # the second SAS reused the key


def test_user_delegation_sas_expires(identity: tuple[Settings, UnsignedJwtCredential]):
    settings, _ = identity
    url = storage.blob_sas_url(settings, settings.tesk_container, "hello.json", expires_in=timedelta(seconds=2))
    assert requests.get(url, timeout=10).status_code == 200
    time.sleep(2.5)
    assert requests.get(url, timeout=10).status_code == 403
