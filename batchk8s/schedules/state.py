"""One small JSON blob per target in BATCHK8S_STATE_CONTAINER, written only if its ETag is unchanged.

The blob records the newest firing the target has dealt with, whether it is claimed, done or failed,
and the target's recent history. Acting on a firing starts with a conditional write of a claim: when
two app instances run the same tick, the storage service accepts exactly one of the two writes (the
other gets 412 -> ConflictError) and only the winner acts.

Reading is one listing of the prefix (ETags included, paged by the service) plus one GET per blob whose
ETag this process has not seen: a warm instance reads only the blobs another instance changed.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from batchk8s import storage
from batchk8s.errors import from_azure
from batchk8s.schedules.document import parse_instant
from batchk8s.schedules.planner import TargetState
from batchk8s.settings import Settings

log = logging.getLogger("batchk8s.schedules.state")

PREFIX = "schedules/targets/"
SCHEMA = 1
HISTORY_KEPT = 50
READ_WORKERS = 8  # below the storage client's connection pool (10 per host)
_CACHE_LIMIT = 20000

# (container URL, blob name) -> (ETag, stored): what this process last read or wrote.
_cache: dict[tuple[str, str], tuple[str, Stored]] = {}
# Containers this process has loaded once: from then on a listing tells which blobs changed.
_warm: set[str] = set()
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class Stored:
    """A target's state as stored, with the ETag a conditional write must match (None: no blob yet)."""

    key: str
    state: TargetState
    target: dict[str, Any]
    etag: str | None = None
    updated_at: str | None = None


def blob_name(key: str) -> str:
    return f"{PREFIX}{key}.json"


def encode(key: str, target: dict[str, Any], state: TargetState, now: datetime) -> str:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return json.dumps({
        "schema": SCHEMA, "key": key, "target": target, "firing": iso(state.firing), "status": state.status,
        "rule": state.rule, "action": state.action, "attempts": state.attempts, "retryAt": iso(state.retry_at),
        "claimedBy": state.claimed_by, "claimedAt": iso(state.claimed_at), "updatedAt": now.isoformat(),
        "history": list(state.history[-HISTORY_KEPT:]),
    }, separators=(",", ":"))


def decode(key: str, text: str, etag: str | None) -> Stored:
    """The stored state; a blob that is not ours or is damaged reads as empty (the next write replaces it)."""
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not an object")
        history = data.get("history") or []
        state = TargetState(
            firing=parse_instant(data.get("firing")), status=str(data.get("status") or "done"),
            rule=data.get("rule"), action=data.get("action"), attempts=int(data.get("attempts") or 0),
            retry_at=parse_instant(data.get("retryAt")), claimed_by=data.get("claimedBy"),
            claimed_at=parse_instant(data.get("claimedAt")),
            history=tuple(entry for entry in history if isinstance(entry, dict)))
        return Stored(key, state, data.get("target") or {}, etag, data.get("updatedAt"))
    except (ValueError, TypeError) as exc:
        log.warning("state blob for %s is unreadable (%s); treating it as empty", key, exc)
        return Stored(key, TargetState(), {}, etag)


class StateStore:
    """The state blobs of one storage account; `requests` counts list pages, reads and writes."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.container = settings.state_container
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()

    def _count(self, kind: str) -> None:
        with self._lock:
            self.requests[kind] += 1

    def _container_url(self) -> str:
        return storage.blob_service(self.settings).get_container_client(self.container).url

    def list_etags(self) -> dict[str, str]:
        """Blob name -> ETag for every state blob (one request per page of 5000)."""
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        client = storage.blob_service(self.settings).get_container_client(self.container)
        found: dict[str, str] = {}
        try:
            for page in client.list_blobs(name_starts_with=PREFIX).by_page():
                self._count("list")
                found.update((blob.name, blob.etag) for blob in page)
        except ResourceNotFoundError:
            return {}  # no container yet: no state yet; the first write creates it
        except AzureError as exc:
            raise from_azure(exc, f"state container {self.container}") from None
        return found

    def load_all(self) -> dict[str, Stored]:
        """Every target's state (for history), keyed by target key: one listing + reads of changed blobs."""
        return self._load_listed(self.list_etags(), None)

    def load(self, keys: Iterable[str]) -> dict[str, Stored]:
        """The state of `keys` (those without a blob are absent from the result), in at most one request
        per key: a cold process reads each blob directly (a GET also returns its ETag); a warm one lists
        the prefix once and reads only the blobs whose ETag changed since it last saw them."""
        keys = list(keys)
        url = self._container_url()
        with _cache_lock:
            warm = url in _warm
        if not warm:
            loaded = self._read_all([blob_name(key) for key in keys])
            with _cache_lock:
                _warm.add(url)
            return loaded
        return self._load_listed(self.list_etags(), {blob_name(key) for key in keys})

    def _load_listed(self, etags: dict[str, str], wanted: set[str] | None) -> dict[str, Stored]:
        url = self._container_url()
        result: dict[str, Stored] = {}
        stale: list[str] = []
        with _cache_lock:
            for name, etag in etags.items():
                if wanted is not None and name not in wanted:
                    continue
                cached = _cache.get((url, name))
                if cached is not None and _same_etag(cached[0], etag):
                    result[cached[1].key] = cached[1]
                else:
                    stale.append(name)
        result.update(self._read_all(stale))
        return result

    def _read_all(self, names: list[str]) -> dict[str, Stored]:
        if not names:
            return {}
        with ThreadPoolExecutor(max_workers=min(READ_WORKERS, len(names))) as pool:
            return {stored.key: stored for stored in pool.map(self._read, names) if stored is not None}

    def _read(self, name: str) -> Stored | None:
        from batchk8s.errors import NotFoundError

        key = name[len(PREFIX):].removesuffix(".json")
        self._count("read")
        try:
            blob = storage.read_blob(self.settings, self.container, name)
        except NotFoundError:
            return None  # deleted between the listing and the read
        stored = decode(key, blob.text, blob.etag)
        self._remember(name, stored)
        return stored

    def _remember(self, name: str, stored: Stored) -> None:
        if stored.etag is None:
            return
        url = self._container_url()
        with _cache_lock:
            if len(_cache) >= _CACHE_LIMIT:
                _cache.clear()
            _cache[(url, name)] = (stored.etag, stored)

    def write(self, stored: Stored, state: TargetState, now: datetime) -> Stored:
        """Replace the target's state if nobody wrote it since `stored` was read; ConflictError otherwise."""
        self._count("write")
        name = blob_name(stored.key)
        etag = storage.write_blob_if_match(self.settings, self.container, name,
                                           encode(stored.key, stored.target, state, now), stored.etag)
        written = replace(stored, state=state, etag=etag, updated_at=now.isoformat())
        self._remember(name, written)
        return written


def _same_etag(first: str, second: str) -> bool:
    """Listings give ETags bare, downloads and writes quoted: compare without the quotes."""
    return first.strip('"') == second.strip('"')


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()
        _warm.clear()
