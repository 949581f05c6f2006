"""Sample TES tasks (tesk-tasks/*.json) and `azureblob://` input placeholders.

A task document cannot carry a SAS URL: it would expire, and it is a secret that does not belong in
a repository. Inputs name blobs in the TES container (AZURE_STORAGE_TESK_DIRECTORY) instead, as
`azureblob:///BLOB` (no container: the TES container, whatever it is called) or
`azureblob://CONTAINER/BLOB` with CONTAINER that same container; just before submission each
becomes a read-only SAS URL for that one blob, valid for AZURE_STORAGE_SAS_EXPIRY_HOURS.

Only the TES container is signed: anyone holding the TES function key could otherwise mint read
URLs (returned to them by `GET /api/tes/tasks/{id}?view=FULL`) for every blob in the account,
the Functions host's own containers and the app's state included. Data elsewhere is given to TES
as an ordinary URL it can read.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchk8s.errors import InputError, excerpt
from batchk8s.problems import Problems, child
from batchk8s.settings import Settings
from batchk8s.storage import blob_name_problem

if TYPE_CHECKING:
    from batchk8s.deadline import Deadline

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "tesk-tasks"
SCHEME = "azureblob://"
Signer = Callable[[Settings, str, str], str]


def sample_names() -> list[str]:
    return sorted(path.stem for path in SAMPLES_DIR.glob("*.json"))


def load_sample(name: str) -> dict[str, Any]:
    names = sample_names()
    if name not in names:
        raise InputError.for_field("sample", f"unknown sample {excerpt(name)}; known: {', '.join(names)}")
    return json.loads((SAMPLES_DIR / f"{name}.json").read_text(encoding="utf-8"))


def blob_placeholders(task: Any, container: str) -> list[tuple[int, str]]:
    """(input index, blob name) of each `azureblob://` input, all in the TES `container`.

    InputError naming each bad entry's JSON path: a placeholder in an output (SAS URLs made here
    are read-only), another container, or a blob name Azure would refuse.
    """
    found, problems = [], Problems()
    for field in ("inputs", "outputs"):
        entries = task.get(field) if isinstance(task, dict) else None
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            url = entry.get("url") if isinstance(entry, dict) else None
            if not isinstance(url, str) or not url.startswith(SCHEME):
                continue
            path = child(child(field, index), "url")
            named, _, blob = url[len(SCHEME):].partition("/")
            if field == "outputs":
                problems.add(path, f"{SCHEME} is for inputs (read-only SAS); give an output URL the TES server "
                                   "can write to")
            elif named and named != container:
                problems.add(path, f"only blobs in the TES container {container!r} (AZURE_STORAGE_TESK_DIRECTORY) "
                                   f"are signed: write {SCHEME}/BLOB, or give another input as a URL TES can read")
            elif problem := blob_name_problem(blob):
                problems.add(path, f"must look like {SCHEME}/BLOB, the blob name: {problem}")
            else:
                found.append((index, blob))
    problems.raise_if_any("invalid blob placeholder")
    return found


def _replace_placeholders(task: dict[str, Any], container: str,
                          url_for: Callable[[str], str]) -> dict[str, Any]:
    placeholders = blob_placeholders(task, container)
    if not placeholders:
        return task
    replaced = copy.deepcopy(task)
    for index, blob in placeholders:
        replaced["inputs"][index]["url"] = url_for(blob)
    return replaced


def resolve_blob_inputs(task: dict[str, Any], settings: Settings, sign: Signer | None = None, *,
                        deadline: Deadline | None = None) -> dict[str, Any]:
    """A copy of `task` whose `azureblob://` inputs are read-only SAS URLs (the original is untouched);
    the default signer works within `deadline` (a user delegation key is one storage call)."""
    container = settings.tesk_container
    if sign is None and blob_placeholders(task, container):
        from batchk8s.storage import blob_sas_url

        sign = functools.partial(blob_sas_url, deadline=deadline)
    return _replace_placeholders(task, container, lambda blob: sign(settings, container, blob))


def mark_placeholders(task: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """A copy of `task` for display: each placeholder says what replaces it at submission."""
    container = settings.tesk_container
    return _replace_placeholders(
        task, container, lambda blob: f"<read-only SAS URL for {container}/{blob}, generated at submission>")
