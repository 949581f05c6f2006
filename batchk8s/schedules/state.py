"""One small JSON blob per target in BATCHK8S_STATE_CONTAINER, written only if its ETag is unchanged.

The blob records the newest firing the target has dealt with, whether it is claimed, done or failed,
and the target's recent history. Acting on a firing starts with a conditional write of a claim: when
two app instances run the same tick, the storage service accepts exactly one of the two writes (the
other gets 412 -> ConflictError) and only the winner acts.

Each write also stores the fields a decision needs (not the history) as blob metadata, in the same
atomic write. So one listing of the prefix with metadata (one request per 5,000 targets) tells every
instance, cold or warm, what each target's state is and which ETag that state belongs to. Only a
target that is due is read in full (one GET, skipped when this process already holds that ETag),
because the next write must carry its history forward. Every write is conditioned on the ETag of the
version the decision was made from, so the summary changes nothing about who wins a claim.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from batchk8s import storage
from batchk8s.errors import ConflictError, from_azure
from batchk8s.schedules.document import parse_instant
from batchk8s.schedules.planner import TargetState
from batchk8s.settings import Settings

log = logging.getLogger("batchk8s.schedules.state")

PREFIX = "schedules/targets/"
SCHEMA = 1
HISTORY_KEPT = 50
READ_WORKERS = 8  # below the storage client's connection pool (10 per host)
_CACHE_LIMIT = 20000

# Blob metadata names of the summary (lowercase: metadata names are case-insensitive).
META_SCHEMA, META_FIRING, META_STATUS, META_ATTEMPTS = "batchk8sstate", "firing", "status", "attempts"
META_RETRY_AT, META_CLAIMED_AT = "retryat", "claimedat"

# (container URL, blob name) -> (ETag, stored): what this process last read or wrote, in full.
_cache: dict[tuple[str, str], tuple[str, Stored]] = {}
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class Stored:
    """A target's state as stored, with the ETag a conditional write must match (None: no blob yet).

    `complete` is False for a state known only from the listing's metadata: right for deciding, but
    without history and target, so it is never written back (`StateStore.complete` reads it first).
    """

    key: str
    state: TargetState
    target: dict[str, Any]
    etag: str | None = None
    updated_at: str | None = None
    complete: bool = True


@dataclass(frozen=True)
class Listed:
    etag: str
    metadata: Mapping[str, str]


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


def summary(state: TargetState) -> dict[str, str]:
    """The metadata written with each state blob: what `decide` reads (ASCII only, as headers must be)."""
    values = {META_SCHEMA: str(SCHEMA), META_FIRING: state.firing, META_STATUS: state.status,
              META_ATTEMPTS: str(state.attempts), META_RETRY_AT: state.retry_at, META_CLAIMED_AT: state.claimed_at}
    return {name: value.isoformat() if isinstance(value, datetime) else value
            for name, value in values.items() if value is not None}


def from_summary(key: str, metadata: Mapping[str, str], etag: str) -> Stored | None:
    """The state a listing's metadata describes, or None when the blob has no summary of ours."""
    meta = {name.lower(): value for name, value in metadata.items()}
    if meta.get(META_SCHEMA) != str(SCHEMA) or META_STATUS not in meta:
        return None
    try:
        attempts = int(meta.get(META_ATTEMPTS) or 0)
    except ValueError:
        return None
    state = TargetState(firing=parse_instant(meta.get(META_FIRING)), status=meta[META_STATUS], attempts=attempts,
                        retry_at=parse_instant(meta.get(META_RETRY_AT)),
                        claimed_at=parse_instant(meta.get(META_CLAIMED_AT)))
    return Stored(key, state, {}, etag, complete=False)


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

    def list_blobs(self) -> dict[str, Listed]:
        """Blob name -> ETag and metadata for every state blob (one request per page of 5000)."""
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        client = storage.blob_service(self.settings).get_container_client(self.container)
        found: dict[str, Listed] = {}
        try:
            for page in client.list_blobs(name_starts_with=PREFIX, include=["metadata"]).by_page():
                self._count("list")
                found.update((blob.name, Listed(blob.etag, blob.metadata or {})) for blob in page)
        except ResourceNotFoundError:
            return {}  # no container yet: no state yet; the first write creates it
        except AzureError as exc:
            raise from_azure(exc, f"state container {self.container}") from None
        return found

    def load_all(self) -> dict[str, Stored]:
        """Every target's full state (for history), keyed by target key: one listing + reads of changed blobs."""
        return self._load_listed(self.list_blobs(), None, summaries=False)

    def load(self, keys: Iterable[str]) -> dict[str, Stored]:
        """The state of `keys` for deciding (those without a blob are absent): one listing, plus a GET only
        for a blob that changed since this process last saw it and carries no summary of ours."""
        return self._load_listed(self.list_blobs(), {blob_name(key) for key in keys}, summaries=True)

    def complete(self, stored: Iterable[Stored]) -> dict[str, Stored]:
        """The full state of each summary-only `stored` (one GET each), by key. A blob that changed since
        it was listed stays summary-only: the decision was made on the listed version, and `write`
        refuses it as a lost race instead of acting on a state nobody decided from."""
        partial = {blob_name(item.key): item for item in stored if not item.complete}
        result = {}
        for name, full in zip(partial, self._read_each(list(partial)), strict=True):
            listed = partial[name]
            same = full is not None and full.etag is not None and _same_etag(full.etag, listed.etag or "")
            result[listed.key] = full if same else listed
        return result

    def _load_listed(self, listing: dict[str, Listed], wanted: set[str] | None, *,
                     summaries: bool) -> dict[str, Stored]:
        url = self._container_url()
        result: dict[str, Stored] = {}
        stale: list[str] = []
        with _cache_lock:
            for name, listed in listing.items():
                if wanted is not None and name not in wanted:
                    continue
                cached = _cache.get((url, name))
                if cached is not None and _same_etag(cached[0], listed.etag):
                    result[cached[1].key] = cached[1]
                elif summaries and (brief := from_summary(_key(name), listed.metadata, listed.etag)) is not None:
                    result[brief.key] = brief
                else:
                    stale.append(name)
        result.update((stored.key, stored) for stored in self._read_each(stale) if stored is not None)
        return result

    def _read_each(self, names: list[str]) -> list[Stored | None]:
        if not names:
            return []
        with ThreadPoolExecutor(max_workers=min(READ_WORKERS, len(names))) as pool:
            return list(pool.map(self._read, names))

    def _read(self, name: str) -> Stored | None:
        from batchk8s.errors import NotFoundError

        self._count("read")
        try:
            blob = storage.read_blob(self.settings, self.container, name)
        except NotFoundError:
            return None  # deleted between the listing and the read
        stored = decode(_key(name), blob.text, blob.etag)
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
        name = blob_name(stored.key)
        if not stored.complete:  # `complete` found the blob changed since the listing: someone else wrote it
            raise ConflictError(f"state of {stored.key} changed since it was listed", code="ConditionNotMet")
        self._count("write")
        etag = storage.write_blob_if_match(self.settings, self.container, name,
                                           encode(stored.key, stored.target, state, now), stored.etag,
                                           metadata=summary(state))
        written = replace(stored, state=state, etag=etag, updated_at=now.isoformat())
        self._remember(name, written)
        return written


def _key(name: str) -> str:
    return name[len(PREFIX):].removesuffix(".json")


def _same_etag(first: str, second: str) -> bool:
    """Listings give ETags bare, downloads and writes quoted: compare without the quotes."""
    return first.strip('"') == second.strip('"')


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()
