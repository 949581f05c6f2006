"""Samples and `azureblob://` placeholders: only the configured TES container is ever signed."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from batchk8s.errors import InputError
from batchk8s.settings import Settings, load_settings
from batchk8s.tes import load_sample, mark_placeholders, sample_names
from batchk8s.tes.samples import resolve_blob_inputs

EXECUTORS = [{"image": "alpine", "command": ["true"]}]


@pytest.fixture
def settings() -> Settings:
    return load_settings({"AZURE_STORAGE_TESK_DIRECTORY": "lab-tes-inputs"})


class Signer:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def __call__(self, settings: Settings, container: str, blob: str) -> str:
        self.calls.append((container, blob))
        return f"https://acct.blob.core.windows.net/{container}/{blob}?sp=r&sig=x"


def test_both_forms_resolve_in_the_configured_container_and_the_original_is_untouched(settings: Settings) -> None:
    task: dict[str, Any] = {"executors": EXECUTORS, "inputs": [
        {"path": "/in/a.fq", "url": "azureblob:///runs/7/a.fq"},
        {"path": "/in/b.fq", "url": "azureblob://lab-tes-inputs/b.fq"},
        {"path": "/in/c.fq", "url": "https://elsewhere.example.org/c.fq"},
        {"path": "/in/d.txt", "content": "inline"},
    ]}
    original = copy.deepcopy(task)
    sign = Signer()
    resolved = resolve_blob_inputs(task, settings, sign)
    assert sign.calls == [("lab-tes-inputs", "runs/7/a.fq"), ("lab-tes-inputs", "b.fq")]
    assert [entry.get("url") for entry in resolved["inputs"]] == [
        "https://acct.blob.core.windows.net/lab-tes-inputs/runs/7/a.fq?sp=r&sig=x",
        "https://acct.blob.core.windows.net/lab-tes-inputs/b.fq?sp=r&sig=x",
        "https://elsewhere.example.org/c.fq", None]
    assert task == original


def test_a_task_without_placeholders_needs_no_signer(settings: Settings) -> None:
    task = {"executors": EXECUTORS, "inputs": [{"path": "/i", "url": "https://x.example.org/i"}]}
    assert resolve_blob_inputs(task, settings) is task  # storage is never touched


def test_every_bad_placeholder_is_reported_with_its_path_and_nothing_is_signed(settings: Settings) -> None:
    task = {"executors": EXECUTORS,
            "inputs": [{"path": "/a", "url": "azureblob://tesk-tasks/hello.json"},  # the default name, not ours
                       {"path": "/b", "url": "azureblob://azure-webjobs-secrets/host.json"},
                       {"path": "/c", "url": "azureblob:///"},
                       {"path": "/d", "url": "azureblob:///dir/"},
                       {"path": "/e", "url": "azureblob:///" + "x" * 1025},
                       {"path": "/f", "url": "azureblob:///fine.txt"}],
            "outputs": [{"path": "/o", "url": "azureblob:///out.txt"}]}
    sign = Signer()
    with pytest.raises(InputError) as caught:
        resolve_blob_inputs(task, settings, sign)
    found = {d["field"]: d["message"] for d in caught.value.details}
    assert list(found) == [f"inputs[{i}].url" for i in range(5)] + ["outputs[0].url"]
    assert "'lab-tes-inputs'" in found["inputs[0].url"] and "'lab-tes-inputs'" in found["inputs[1].url"]
    assert all("1-1024" in found[f"inputs[{i}].url"] for i in (2, 3, 4))
    assert "read-only" in found["outputs[0].url"]
    assert sign.calls == []


@pytest.mark.parametrize("url", ["azureblob:///../apps/k8s-node-setup.sh", "azureblob:///runs/../../apps/x",
                                 "azureblob://lab-tes-inputs/./x", "azureblob:///a\\b"])
def test_a_placeholder_cannot_leave_the_tes_container_through_dot_segments(settings: Settings, url: str) -> None:
    """HTTP clients resolve '..', so such a blob name would name a blob in another container."""
    task = {"executors": EXECUTORS, "inputs": [{"path": "/in", "url": url}]}
    sign = Signer()
    with pytest.raises(InputError) as caught:
        resolve_blob_inputs(task, settings, sign)
    assert [d["field"] for d in caught.value.details] == ["inputs[0].url"]
    assert sign.calls == []


def test_plan_placeholders_name_the_configured_container(settings: Settings) -> None:
    shown = mark_placeholders(load_sample("blob-input"), settings)
    assert shown["inputs"][0]["url"] == "<read-only SAS URL for lab-tes-inputs/hello.json, generated at submission>"


def test_samples_are_the_seed_tasks_plus_blob_input() -> None:
    assert sample_names() == ["blob-input", "env", "hello", "stdout"]
    with pytest.raises(InputError) as caught:
        load_sample("../hello")
    assert caught.value.details[0]["field"] == "sample" and "hello" in caught.value.message
