"""Sample TES tasks (tesk-tasks/*.json) and `azureblob://` input placeholders.

A task document cannot carry a SAS URL: it would expire, and it is a secret that does not belong in
a repository. Inputs name blobs as `azureblob://CONTAINER/BLOB` instead; just before submission
each becomes a read-only SAS URL for that one blob, valid for AZURE_STORAGE_SAS_EXPIRY_HOURS.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from batchk8s.errors import InputError
from batchk8s.settings import CONTAINER_NAME, Settings
from batchk8s.tes.validation import child

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "tesk-tasks"
SCHEME = "azureblob://"
Signer = Callable[[Settings, str, str], str]


def sample_names() -> list[str]:
    return sorted(path.stem for path in SAMPLES_DIR.glob("*.json"))


def load_sample(name: str) -> dict[str, Any]:
    names = sample_names()
    if name not in names:
        raise InputError.for_field("sample", f"unknown sample {name!r}; known: {', '.join(names)}")
    return json.loads((SAMPLES_DIR / f"{name}.json").read_text(encoding="utf-8"))


def blob_placeholders(task: Any) -> list[tuple[int, str, str]]:
    """(input index, container, blob) of each `azureblob://` input; InputError for malformed ones."""
    found, problems = [], []
    for field in ("inputs", "outputs"):
        entries = task.get(field) if isinstance(task, dict) else None
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            url = entry.get("url") if isinstance(entry, dict) else None
            if not isinstance(url, str) or not url.startswith(SCHEME):
                continue
            path = child(child(field, index), "url")
            container, _, blob = url[len(SCHEME):].partition("/")
            if field == "outputs":
                problems.append({"field": path, "message": "azureblob:// is for inputs (read-only SAS); give an "
                                 "output URL the TES server can write to"})
            elif not CONTAINER_NAME.match(container) or not blob:
                problems.append({"field": path, "message": f"must look like {SCHEME}CONTAINER/BLOB"})
            else:
                found.append((index, container, blob))
    if problems:
        raise InputError.from_problems(problems, "invalid blob placeholder")
    return found


def _replace_placeholders(task: dict[str, Any], url_for: Callable[[str, str], str]) -> dict[str, Any]:
    placeholders = blob_placeholders(task)
    if not placeholders:
        return task
    replaced = copy.deepcopy(task)
    for index, container, blob in placeholders:
        replaced["inputs"][index]["url"] = url_for(container, blob)
    return replaced


def resolve_blob_inputs(task: dict[str, Any], settings: Settings, sign: Signer | None = None) -> dict[str, Any]:
    """A copy of `task` whose `azureblob://` inputs are read-only SAS URLs (the original is untouched)."""
    if sign is None and blob_placeholders(task):
        from batchk8s.storage import blob_sas_url as sign
    return _replace_placeholders(task, lambda container, blob: sign(settings, container, blob))


def mark_placeholders(task: dict[str, Any]) -> dict[str, Any]:
    """A copy of `task` for display: each placeholder says what replaces it at submission."""
    return _replace_placeholders(
        task, lambda container, blob: f"<read-only SAS URL for {container}/{blob}, generated at submission>")
