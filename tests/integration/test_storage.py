"""Blob storage against a real Azurite: containers, idempotent upload, SAS scope and expiry, conditional writes."""

from __future__ import annotations

import dataclasses
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from batchk8s import storage
from batchk8s.errors import ConfigError, ConflictError, InputError, NotFoundError
from batchk8s.settings import Settings, load_settings
from tests.conftest import AZURITE_ACCOUNT, AZURITE_KEY

TREE = {
    "scripts/k8s-node-setup.sh": "#!/bin/bash\nset -euo pipefail\necho setup\n",
    "k8sresources/tesk/deployment.yaml": "apiVersion: apps/v1\nkind: Deployment\n",
    "k8sresources/tesk/service.yaml": "apiVersion: v1\nkind: Service\n",
    "tesk-tasks/hello.json": '{"executors": [{"image": "alpine", "command": ["echo", "hello"]}]}\n',
}


def endpoint_of(connection_string: str) -> str:
    parts = dict(part.split("=", 1) for part in connection_string.rstrip(";").split(";"))
    return parts["BlobEndpoint"]


def storage_env(azurite: str, form: str = "connection", prefix: str | None = None) -> dict[str, str]:
    """Settings for Azurite in one of the two key-based forms, with containers unique to the caller."""
    prefix = prefix or "t" + uuid.uuid4().hex[:10]
    env = {"AZURE_STORAGE_APP_DIRECTORY": f"{prefix}-apps", "AZURE_STORAGE_K8S_DIRECTORY": f"{prefix}-k8s",
           "AZURE_STORAGE_TESK_DIRECTORY": f"{prefix}-tesk"}
    if form == "connection":
        env["AzureWebJobsStorage"] = azurite
    else:
        env.update(AZURE_STORAGE_ACCOUNT_NAME=AZURITE_ACCOUNT, AZURE_STORAGE_ACCOUNT_KEY=AZURITE_KEY,
                   AZURE_STORAGE_BLOB_ENDPOINT=endpoint_of(azurite))
    return env


def write_tree(root: Path, files: dict[str, str] = TREE) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def settings(azurite: str) -> Settings:
    return load_settings(storage_env(azurite))


@pytest.fixture
def uploaded(settings: Settings, tmp_path: Path) -> Settings:
    storage.upload_artifacts(settings, write_tree(tmp_path))
    return settings


class RequestLog:
    """Every HTTP request the SDK sends, by wrapping requests' transport."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.requests: list[tuple[str, str]] = []
        original = requests.Session.send

        def send(session: requests.Session, request: requests.PreparedRequest, **kwargs: object) -> object:
            self.requests.append((request.method or "", request.url or ""))
            return original(session, request, **kwargs)

        monkeypatch.setattr(requests.Session, "send", send)

    def count(self, method: str, needle: str = "") -> int:
        return sum(1 for m, url in self.requests if m == method and needle in url)


# --- containers ------------------------------------------------------------------------------


def test_ensure_containers_creates_three_private_containers(settings: Settings):
    names = storage.ensure_containers(settings)
    assert names == [settings.app_container, settings.k8s_container, settings.tesk_container]
    service = storage.blob_service(settings)
    for name in names:
        assert service.get_container_client(name).get_container_access_policy()["public_access"] is None
        anonymous = requests.get(f"{service.url.rstrip('/')}/{name}?restype=container&comp=list", timeout=10)
        assert anonymous.status_code in (401, 403, 404)
    assert storage.ensure_containers(settings) == names  # existing containers are fine


def test_an_existing_public_container_is_made_private(settings: Settings):
    container = storage.blob_service(settings).get_container_client(settings.app_container)
    container.create_container(public_access="blob")
    storage.ensure_container(settings, settings.app_container)
    assert container.get_container_access_policy()["public_access"] is None


def test_blob_service_is_shared_per_identity(azurite: str):
    env = storage_env(azurite)
    assert storage.blob_service(load_settings(env)) is storage.blob_service(load_settings(dict(env)))
    other = storage.blob_service(load_settings(storage_env(azurite, form="key")))
    assert other is not storage.blob_service(load_settings(env))
    assert other.url == storage.blob_service(load_settings(env)).url


def test_development_storage_means_azurites_well_known_endpoint():
    client = storage.blob_service(load_settings({"AzureWebJobsStorage": "UseDevelopmentStorage=true"}))
    assert client.url.startswith("http://127.0.0.1:10000/devstoreaccount1")


def test_without_a_connection_string_or_account_it_is_a_config_error():
    with pytest.raises(ConfigError) as raised:
        storage.blob_service(load_settings({}))
    assert "AzureWebJobsStorage" in raised.value.message
    with pytest.raises(ConfigError):
        storage.blob_service(load_settings({"AzureWebJobsStorage": "not-a-connection-string"}))


# --- upload ----------------------------------------------------------------------------------


def test_upload_keeps_relative_paths_and_content_types(settings: Settings, tmp_path: Path):
    report = storage.upload_artifacts(settings, write_tree(tmp_path))
    assert (report.uploaded, report.unchanged) == (4, 0)
    assert report.bytes_uploaded == sum(len(text) for text in TREE.values())
    service = storage.blob_service(settings)
    expected = {
        (settings.app_container, "k8s-node-setup.sh"): "text/x-shellscript",
        (settings.k8s_container, "tesk/deployment.yaml"): "application/yaml",
        (settings.k8s_container, "tesk/service.yaml"): "application/yaml",
        (settings.tesk_container, "hello.json"): "application/json",
    }
    for (container, name), kind in expected.items():
        blob = service.get_blob_client(container, name)
        assert blob.get_blob_properties().content_settings.content_type == kind
    assert service.get_blob_client(settings.k8s_container, "tesk/service.yaml").download_blob().readall() == \
        TREE["k8sresources/tesk/service.yaml"].encode()
    assert report.to_dict()["counts"] == {"uploaded": 4, "unchanged": 0, "total": 4}


def test_upload_is_idempotent_and_lists_once_per_container(settings: Settings, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch):
    root = write_tree(tmp_path)
    storage.upload_artifacts(settings, root)
    log = RequestLog(monkeypatch)
    again = storage.upload_artifacts(settings, root)
    assert (again.uploaded, again.unchanged) == (0, 4)
    assert log.count("GET", "comp=list") == 3
    assert log.count("PUT") == 3  # the three create-container calls (already there), no blob
    assert log.count("HEAD") == 0

    (root / "k8sresources/tesk/service.yaml").write_text("apiVersion: v1\nkind: Service\nmetadata: {}\n")
    third = storage.upload_artifacts(settings, root)
    assert [(b.container, b.name) for b in third.blobs if b.status == "uploaded"] == \
        [(settings.k8s_container, "tesk/service.yaml")]
    assert third.unchanged == 3


def test_upload_skips_hidden_files_and_requires_every_tree(settings: Settings, tmp_path: Path):
    root = write_tree(tmp_path, {**TREE, "scripts/.gitkeep": "", "scripts/.cache/x.sh": "x"})
    assert {b.name for b in storage.upload_artifacts(settings, root).blobs} == {
        "k8s-node-setup.sh", "tesk/deployment.yaml", "tesk/service.yaml", "hello.json"}
    partial = write_tree(tmp_path / "partial", {"scripts/a.sh": "echo\n"})
    with pytest.raises(InputError) as raised:
        storage.upload_artifacts(settings, partial)
    assert raised.value.details[0]["field"] == "root"
    assert "k8sresources/" in raised.value.message and "tesk-tasks/" in raised.value.message


# --- SAS -------------------------------------------------------------------------------------


def test_blob_sas_reads_one_blob_and_nothing_else(uploaded: Settings):
    url = storage.blob_sas_url(uploaded, uploaded.app_container, "k8s-node-setup.sh")
    got = requests.get(url, timeout=10)
    assert got.status_code == 200 and got.text == TREE["scripts/k8s-node-setup.sh"]

    write = requests.put(url, data=b"overwritten", headers={"x-ms-blob-type": "BlockBlob"}, timeout=10)
    assert write.status_code == 403
    base, query = url.split("?", 1)
    other = base.replace(uploaded.app_container + "/k8s-node-setup.sh", uploaded.k8s_container + "/tesk/service.yaml")
    assert requests.get(f"{other}?{query}", timeout=10).status_code == 403
    listing = f"{base.rsplit('/', 1)[0]}?restype=container&comp=list&{query}"
    assert requests.get(listing, timeout=10).status_code == 403
    assert requests.get(url, timeout=10).text == TREE["scripts/k8s-node-setup.sh"]  # the PUT changed nothing


def test_blob_sas_fields_follow_the_settings(uploaded: Settings):
    from datetime import UTC, datetime
    from urllib.parse import parse_qs, urlsplit

    query = parse_qs(urlsplit(storage.blob_sas_url(uploaded, uploaded.app_container, "k8s-node-setup.sh")).query)
    start, expiry = (datetime.fromisoformat(query[k][0].replace("Z", "+00:00")) for k in ("st", "se"))
    now = datetime.now(UTC)
    assert timedelta(minutes=2) < now - start < timedelta(minutes=10)  # tolerates clock skew on nodes
    assert abs(expiry - now - timedelta(hours=168)) < timedelta(minutes=1)
    assert query["sp"] == ["r"] and query["sr"] == ["b"]
    assert query["spr"] == ["https,http"]  # Azurite is http; a real https endpoint gets "https" only
    six_hours = dataclasses.replace(uploaded, sas_expiry_hours=6)
    shorter = parse_qs(urlsplit(storage.blob_sas_url(six_hours, uploaded.app_container, "k8s-node-setup.sh")).query)
    assert abs(datetime.fromisoformat(shorter["se"][0].replace("Z", "+00:00")) - now - timedelta(hours=6)) < \
        timedelta(minutes=1)


def test_https_endpoints_get_https_only_sas():
    settings = load_settings({"AZURE_STORAGE_ACCOUNT_NAME": "examplestore", "AZURE_STORAGE_ACCOUNT_KEY": AZURITE_KEY})
    url = storage.blob_sas_url(settings, "apps", "k8s-node-setup.sh", hours=1)
    assert url.startswith("https://examplestore.blob.core.windows.net/apps/k8s-node-setup.sh?")
    assert "spr=https&" in url


def test_container_sas_lists_and_its_permissions_are_enforced(uploaded: Settings):
    url = storage.container_sas_url(uploaded, uploaded.k8s_container)
    base, query = url.split("?", 1)
    listing = requests.get(f"{base}?restype=container&comp=list&{query}", timeout=10)
    assert listing.status_code == 200 and "<Name>tesk/deployment.yaml</Name>" in listing.text
    assert requests.get(f"{base}/tesk/service.yaml?{query}", timeout=10).status_code == 200
    put = requests.put(f"{base}/new.yaml?{query}", data=b"x", headers={"x-ms-blob-type": "BlockBlob"}, timeout=10)
    assert put.status_code == 403

    private = "p" + uuid.uuid4().hex[:12]
    storage.ensure_container(uploaded, private)
    base, query = storage.container_sas_url(uploaded, private, permission="racwl").split("?", 1)
    put = requests.put(f"{base}/lease?{query}", data=b"", headers={"x-ms-blob-type": "BlockBlob"}, timeout=10)
    assert put.status_code == 201
    lease = requests.put(f"{base}/lease?comp=lease&{query}", timeout=10,
                         headers={"x-ms-lease-action": "acquire", "x-ms-lease-duration": "15"})
    assert lease.status_code == 201
    assert requests.delete(f"{base}/lease?{query}", timeout=10).status_code == 403


def test_sas_stops_working_after_expiry(uploaded: Settings):
    url = storage.blob_sas_url(uploaded, uploaded.tesk_container, "hello.json", expires_in=timedelta(seconds=2))
    assert requests.get(url, timeout=10).status_code == 200
    time.sleep(2.5)
    assert requests.get(url, timeout=10).status_code == 403


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"hours": 0}, "hours"), ({"hours": 169}, "hours"), ({"expires_in": timedelta(days=8)}, "expires_in"),
    ({"expires_in": timedelta(0)}, "expires_in"),
])
def test_sas_lifetime_is_validated(uploaded: Settings, kwargs: dict, field: str):
    with pytest.raises(InputError) as raised:
        storage.blob_sas_url(uploaded, uploaded.app_container, "k8s-node-setup.sh", **kwargs)
    assert raised.value.details[0]["field"] == field


def test_sas_inputs_are_validated(uploaded: Settings):
    with pytest.raises(InputError, match="permission"):
        storage.container_sas_url(uploaded, uploaded.app_container, permission="rlz")
    with pytest.raises(InputError, match="container"):
        storage.blob_sas_url(uploaded, "Not_A_Container", "x")
    with pytest.raises(InputError, match="blob"):
        storage.blob_sas_url(uploaded, uploaded.app_container, "")


@pytest.mark.parametrize("name", ["../apps/k8s-node-setup.sh", "runs/../../apps/x", "./x", "a/./b", "a\\..\\b"])
def test_blob_names_that_would_resolve_elsewhere_are_refused_before_any_request(uploaded: Settings, name: str):
    """requests resolves dot segments, so 'tesk/../../apps/x' would reach another container: never sent."""
    container = uploaded.tesk_container
    operations = (lambda: storage.blob_sas_url(uploaded, container, name),
                  lambda: storage.blob_url(uploaded, container, name),
                  lambda: storage.read_blob(uploaded, container, name),
                  lambda: storage.write_blob_if_match(uploaded, container, name, "x", None),
                  lambda: storage.append_blob_line(uploaded, container, name, "x"))
    for operation in operations:
        with pytest.raises(InputError) as raised:
            operation()
        assert raised.value.details[0]["field"] == "blob"
    assert storage.read_blob_text(uploaded, uploaded.app_container, "k8s-node-setup.sh") == \
        TREE["scripts/k8s-node-setup.sh"]  # nothing was written across containers


def test_blob_url_has_no_sas_and_mask_url_hides_the_token(uploaded: Settings, azurite: str):
    url = storage.blob_url(uploaded, uploaded.k8s_container, "tesk/deployment.yaml")
    assert url == f"{endpoint_of(azurite)}/{uploaded.k8s_container}/tesk/deployment.yaml"
    sas = storage.blob_sas_url(uploaded, uploaded.k8s_container, "tesk/deployment.yaml")
    masked = storage.mask_url(sas)
    assert masked == url + "?<redacted>" and "sig=" not in masked


# --- conditional writes ----------------------------------------------------------------------


def test_conditional_write_detects_a_concurrent_change(settings: Settings):
    container = "s" + uuid.uuid4().hex[:12]  # does not exist yet: the first write creates it
    first = storage.write_blob_if_match(settings, container, "state.json", '{"n": 1}', None)
    with pytest.raises(ConflictError):
        storage.write_blob_if_match(settings, container, "state.json", '{"n": 99}', None)
    text, etag = storage.read_blob(settings, container, "state.json")
    assert (text, etag) == ('{"n": 1}', first)
    second = storage.write_blob_if_match(settings, container, "state.json", '{"n": 2}', etag)
    assert second != first
    with pytest.raises(ConflictError) as raised:
        storage.write_blob_if_match(settings, container, "state.json", '{"n": 3}', first)
    assert raised.value.status == 409
    assert storage.read_blob_text(settings, container, "state.json") == '{"n": 2}'
    with pytest.raises(NotFoundError):
        storage.read_blob_text(settings, container, "missing.json")


def test_conditional_write_stores_metadata_with_the_version_it_describes(settings: Settings):
    container = "s" + uuid.uuid4().hex[:12]
    first = storage.write_blob_if_match(settings, container, "state.json", "{}", None, metadata={"status": "claimed"})
    client = storage.blob_service(settings).get_container_client(container)
    [listed] = list(client.list_blobs(include=["metadata"]))
    assert listed.metadata == {"status": "claimed"} and listed.etag.strip('"') == first.strip('"')
    storage.write_blob_if_match(settings, container, "state.json", "{}", first)  # no metadata: none kept
    assert client.get_blob_client("state.json").get_blob_properties().metadata == {}


def test_append_blob_line_creates_the_blob_and_appends_without_reading(settings: Settings,
                                                                       monkeypatch: pytest.MonkeyPatch):
    container = "s" + uuid.uuid4().hex[:12]  # does not exist yet: the first append creates it, private
    storage.append_blob_line(settings, container, "log/a.jsonl", '{"n": 1}')
    log = RequestLog(monkeypatch)
    storage.append_blob_line(settings, container, "log/a.jsonl", '{"n": 2}\n{"n": 3}\n')
    assert log.requests and all(method == "PUT" and "comp=appendblock" in url for method, url in log.requests)
    assert len(log.requests) == 1  # an existing blob: one request, no read
    assert storage.read_blob_text(settings, container, "log/a.jsonl") == '{"n": 1}\n{"n": 2}\n{"n": 3}\n'
    client = storage.blob_service(settings).get_container_client(container)
    assert client.get_container_access_policy()["public_access"] is None
    properties = client.get_blob_client("log/a.jsonl").get_blob_properties()
    assert (properties.blob_type, properties.content_settings.content_type) == ("AppendBlob", "application/x-ndjson")


def test_concurrent_first_appends_keep_every_line(settings: Settings):
    from concurrent.futures import ThreadPoolExecutor

    container = "s" + uuid.uuid4().hex[:12]
    storage.ensure_container(settings, container)
    with ThreadPoolExecutor(max_workers=8) as pool:  # all race to create the blob: none may truncate another
        list(pool.map(lambda n: storage.append_blob_line(settings, container, "race.log", f"line {n}"), range(16)))
    lines = storage.read_blob_text(settings, container, "race.log").splitlines()
    assert sorted(lines) == sorted(f"line {n}" for n in range(16))


def test_append_blob_line_refuses_bad_input_and_a_block_blob(settings: Settings):
    container = "s" + uuid.uuid4().hex[:12]
    for line in ("", "  \n"):
        with pytest.raises(InputError) as raised:
            storage.append_blob_line(settings, container, "a.log", line)
        assert raised.value.details[0]["field"] == "line"
    with pytest.raises(InputError) as raised:
        storage.append_blob_line(settings, container, "a.log", "x" * (storage.MAX_APPEND_BYTES + 1))
    assert raised.value.details[0]["field"] == "line"
    storage.write_blob_if_match(settings, container, "block.json", "{}", None)
    with pytest.raises(ConflictError):  # 409 InvalidBlobType: never replaced by an append blob
        storage.append_blob_line(settings, container, "block.json", "x")
    assert storage.read_blob_text(settings, container, "block.json") == "{}"


def test_a_storage_error_carries_the_code_azurite_answered(uploaded: Settings):
    """Blob storage puts its code in `x-ms-error-code`, not in the body ARM and Batch use."""
    from batchk8s import storage
    from batchk8s.errors import NotFoundError

    with pytest.raises(NotFoundError) as missing_blob:
        storage.read_blob_text(uploaded, uploaded.app_container, "no-such-blob.txt")
    with pytest.raises(NotFoundError) as missing_container:
        storage.read_blob_text(uploaded, "no-such-container", "a.txt")

    assert missing_blob.value.code == "BlobNotFound"
    assert missing_container.value.code == "ContainerNotFound"
    assert missing_blob.value.status == 404
