"""`POST /api/artifacts/upload` and `artifacts upload` against Azurite, in both key-based settings forms."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import azure.functions as func
import pytest

from batchk8s import settings as settings_module
from batchk8s import storage
from batchk8s.cli import main
from tests.app_index import indexed_functions
from tests.conftest import AZURITE_KEY
from tests.integration.test_storage import TREE, storage_env, write_tree


@functools.cache
def upload_function() -> Callable[[func.HttpRequest], func.HttpResponse]:
    """The function as the host indexes it from function_app.py (a fresh app: indexing happens once per app)."""
    function = indexed_functions()["artifacts_upload"]
    trigger = function.get_bindings()[0]
    assert (trigger.route, [str(m) for m in trigger.methods]) == ("artifacts/upload", ["POST"])
    assert trigger.auth_level == func.AuthLevel.FUNCTION
    return function.get_user_function()


def call_upload(body: bytes = b"") -> func.HttpResponse:
    request = func.HttpRequest("POST", "http://localhost:7071/api/artifacts/upload", body=body, headers={})
    return upload_function()(request)


@pytest.fixture
def app_env(azurite: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The app's environment pointing at Azurite, and its own trees at a temporary root."""
    monkeypatch.setattr(storage, "REPO_ROOT", write_tree(tmp_path / "app"))
    env = storage_env(azurite)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings_module.clear_cache()
    yield env


@pytest.mark.parametrize("form", ["connection", "key"])
def test_http_upload_reports_then_skips_unchanged(azurite: str, form: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture):
    monkeypatch.setattr(storage, "REPO_ROOT", write_tree(tmp_path))
    for name, value in storage_env(azurite, form).items():
        monkeypatch.setenv(name, value)
    settings_module.clear_cache()
    caplog.set_level(logging.DEBUG)

    first = call_upload()
    assert first.status_code == 200 and first.mimetype == "application/json"
    report = json.loads(first.get_body())
    assert report["counts"] == {"uploaded": 4, "unchanged": 0, "total": 4}
    assert {blob["name"]: blob["contentType"] for blob in report["blobs"]}["tesk/deployment.yaml"] == "application/yaml"
    second = json.loads(call_upload(b"{}").get_body())
    assert second["counts"] == {"uploaded": 0, "unchanged": 4, "total": 4}
    assert second["bytes"] == {"uploaded": 0, "total": sum(len(text) for text in TREE.values())}
    assert AZURITE_KEY not in first.get_body().decode() + caplog.text


def test_http_upload_refuses_a_body_naming_a_directory(app_env: dict[str, str]):
    response = call_upload(b'{"root": "/etc"}')
    assert response.status_code == 400
    error = json.loads(response.get_body())["error"]
    assert error["details"] == [{"field": "root", "message": "unknown field 'root' (no fields are accepted)"}]
    assert call_upload(b"{not json").status_code == 400


def test_http_upload_without_storage_settings_is_503(monkeypatch: pytest.MonkeyPatch):
    for name in ("AzureWebJobsStorage", "AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT_KEY"):
        monkeypatch.delenv(name, raising=False)
    settings_module.clear_cache()
    response = call_upload()
    assert response.status_code == 503
    assert json.loads(response.get_body())["error"]["code"] == "InvalidConfiguration"


def write_settings(path: Path, env: dict[str, str]) -> str:
    path.write_text(json.dumps({"IsEncrypted": False, "Values": env}))
    return str(path)


@pytest.mark.parametrize("form", ["connection", "key"])
def test_cli_upload_json_and_text(azurite: str, form: str, tmp_path: Path, capsys: pytest.CaptureFixture,
                                  caplog: pytest.LogCaptureFixture):
    root = write_tree(tmp_path / "repo")
    settings_file = write_settings(tmp_path / "local.settings.json", storage_env(azurite, form))
    caplog.set_level(logging.DEBUG)
    assert main(["artifacts", "upload", "--root", str(root), "--settings", settings_file, "--json", "-v"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["counts"]["uploaded"] == 4
    assert AZURITE_KEY not in captured.out + captured.err + caplog.text

    (root / "scripts/k8s-node-setup.sh").write_text("#!/bin/bash\necho changed\n")
    assert main(["artifacts", "upload", "--root", str(root), "--settings", settings_file]) == 0
    text = capsys.readouterr().out
    assert "uploaded  " in text and "k8s-node-setup.sh" in text
    assert text.strip().splitlines()[-1].startswith("1 uploaded (")
    assert sum(line.startswith("unchanged ") for line in text.splitlines()) == 3


def test_cli_bad_root_exits_2_naming_the_field(azurite: str, tmp_path: Path, capsys: pytest.CaptureFixture):
    settings_file = write_settings(tmp_path / "local.settings.json", storage_env(azurite))
    assert main(["artifacts", "upload", "--root", str(tmp_path / "nowhere"), "--settings", settings_file]) == 2
    err = capsys.readouterr().err
    assert "root:" in err and "scripts/" in err and "Traceback" not in err


def test_wrong_key_is_an_upstream_error_that_does_not_echo_the_key(azurite: str, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture,
                                                                   caplog: pytest.LogCaptureFixture):
    wrong = "V3Jvbmcta2V5LW5ldmVyLXByaW50ZWQtMDA0Mi1hYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODk="
    env = {**storage_env(azurite, "key"), "AZURE_STORAGE_ACCOUNT_KEY": wrong}
    settings_file = write_settings(tmp_path / "local.settings.json", env)
    caplog.set_level(logging.DEBUG)
    code = main(["artifacts", "upload", "--root", str(write_tree(tmp_path / "repo")), "--settings", settings_file,
                 "-v"])
    captured = capsys.readouterr()
    assert code == 3
    assert "403" in captured.err
    assert wrong not in captured.out + captured.err + caplog.text


def test_sas_urls_are_logged_masked(azurite: str, caplog: pytest.LogCaptureFixture):
    settings = settings_module.load_settings(storage_env(azurite))
    caplog.set_level(logging.DEBUG)
    url = storage.blob_sas_url(settings, settings.app_container, "k8s-node-setup.sh", hours=1)
    signature = url.split("sig=", 1)[1]
    assert url.split("?", 1)[0] in caplog.text
    assert signature not in caplog.text and "sig=" not in caplog.text and AZURITE_KEY not in caplog.text
