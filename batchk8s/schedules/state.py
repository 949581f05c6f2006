"""One small JSON blob per target in BATCHK8S_STATE_CONTAINER, written only if its ETag is unchanged.

The blob records the newest firing the target has dealt with and whether it is claimed, done or
failed; what happened is appended to the target's history blob instead (history.py), so the state
holds only what a decision needs. Acting on a firing starts with a conditional write of a claim:
when two app instances run the same tick, the storage service accepts exactly one of the two writes
(the other gets 412 -> ConflictError) and only the winner acts.

Each write also stores the decision fields as blob metadata, in the same atomic write. So one listing
of the prefix with metadata (one request per 5,000 targets) tells every instance, cold or warm, each
target's state and the ETag that state belongs to, and that is all a tick reads: the next write is
built from the decision alone and conditioned on the listed ETag, so a target written by someone
else since the listing is a lost race.

Blobs written by earlier versions still work. Schema 1 kept the last 50 history entries inside the
state blob: its summary is read as usual, and the first write to it (when a firing is next due) reads
it once and moves those entries into the history blob. A blob without our summary is read in full.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar

from batchk8s import storage
from batchk8s.deadline import Deadline
from batchk8s.schedules.document import parse_instant
from batchk8s.schedules.history import HistoryLog
from batchk8s.schedules.planner import TargetState
from batchk8s.settings import Settings

log = logging.getLogger("batchk8s.schedules.state")

PREFIX = "schedules/targets/"
SCHEMA = 2
LEGACY_SCHEMAS = ("1",)  # history inside the state blob
READ_WORKERS = 8  # below the storage client's connection pool (10 per host)
T = TypeVar("T")
R = TypeVar("R")

# Blob metadata names of the summary (lowercase: metadata names are case-insensitive).
META_SCHEMA, META_FIRING, META_STATUS, META_ATTEMPTS = "batchk8sstate", "firing", "status", "attempts"
META_RETRY_AT, META_CLAIMED_AT, META_CLAIMED_UNTIL = "retryat", "claimedat", "claimeduntil"


@dataclass(frozen=True)
class Stored:
    """A target's state as stored, with the ETag a conditional write must match (None: no blob yet).

    `legacy` marks a blob an earlier version wrote with history inside; `history` is that history when
    it has been read already. The next write moves it into the history blob.
    """

    key: str
    state: TargetState
    target: dict[str, Any]
    etag: str | None = None
    legacy: bool = False
    history: tuple[dict[str, Any], ...] | None = None


@dataclass(frozen=True)
class Listed:
    etag: str
    metadata: Mapping[str, str]


def blob_name(key: str) -> str:
    return f"{PREFIX}{key}.json"


def key_of(name: str) -> str:
    return name[len(PREFIX):].removesuffix(".json")


def encode(key: str, target: dict[str, Any], state: TargetState, now: datetime) -> str:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return json.dumps({
        "schema": SCHEMA, "key": key, "target": target, "firing": iso(state.firing), "status": state.status,
        "rule": state.rule, "action": state.action, "attempts": state.attempts, "retryAt": iso(state.retry_at),
        "claimedBy": state.claimed_by, "claimedAt": iso(state.claimed_at), "claimedUntil": iso(state.claimed_until),
        "updatedAt": now.isoformat(),
    }, separators=(",", ":"))


def summary(state: TargetState) -> dict[str, str]:
    """The metadata written with each state blob: what `decide` reads (ASCII only, as headers must be)."""
    values = {META_SCHEMA: str(SCHEMA), META_FIRING: state.firing, META_STATUS: state.status,
              META_ATTEMPTS: str(state.attempts), META_RETRY_AT: state.retry_at, META_CLAIMED_AT: state.claimed_at,
              META_CLAIMED_UNTIL: state.claimed_until}
    return {name: value.isoformat() if isinstance(value, datetime) else value
            for name, value in values.items() if value is not None}


def _schema(metadata: Mapping[str, str]) -> str | None:
    return {name.lower(): value for name, value in metadata.items()}.get(META_SCHEMA)


def is_legacy(metadata: Mapping[str, str]) -> bool:
    """Whether a listed state blob may still carry history inside (an earlier schema, or no summary)."""
    return _schema(metadata) != str(SCHEMA)


def from_summary(key: str, target: dict[str, Any], metadata: Mapping[str, str], etag: str) -> Stored | None:
    """The state a listing's metadata describes, or None when the blob has no summary of ours."""
    meta = {name.lower(): value for name, value in metadata.items()}
    schema = meta.get(META_SCHEMA)
    if schema not in (str(SCHEMA), *LEGACY_SCHEMAS) or META_STATUS not in meta:
        return None
    try:
        attempts = int(meta.get(META_ATTEMPTS) or 0)
    except ValueError:
        return None
    state = TargetState(firing=parse_instant(meta.get(META_FIRING)), status=meta[META_STATUS], attempts=attempts,
                        retry_at=parse_instant(meta.get(META_RETRY_AT)),
                        claimed_at=parse_instant(meta.get(META_CLAIMED_AT)),
                        claimed_until=parse_instant(meta.get(META_CLAIMED_UNTIL)))
    return Stored(key, state, target, etag, legacy=schema in LEGACY_SCHEMAS)


def decode(key: str, target: dict[str, Any] | None, text: str, etag: str | None) -> Stored:
    """The stored state (and any history an earlier version kept inside); a blob that is not ours or is
    damaged reads as empty (the next write replaces it). `target` None: the one the blob names."""
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not an object")
        history = data.get("history") or []
        state = TargetState(
            firing=parse_instant(data.get("firing")), status=str(data.get("status") or "done"),
            rule=data.get("rule"), action=data.get("action"), attempts=int(data.get("attempts") or 0),
            retry_at=parse_instant(data.get("retryAt")), claimed_by=data.get("claimedBy"),
            claimed_at=parse_instant(data.get("claimedAt")), claimed_until=parse_instant(data.get("claimedUntil")))
        return Stored(key, state, target if target is not None else data.get("target") or {}, etag, legacy=True,
                      history=tuple(entry for entry in history if isinstance(entry, dict)))
    except (ValueError, TypeError) as exc:
        log.warning("state blob for %s is unreadable (%s); treating it as empty", key, exc)
        return Stored(key, TargetState(), target or {}, etag, legacy=True, history=())


class StateStore:
    """The state blobs of one storage account, and the history appends that go with their writes.

    `requests` counts list pages, reads, writes and appends. `deadline` (the operation's: a tick's, a
    timer's, an HTTP request's) bounds every storage call made through the store; without one each call
    has the storage client's own budget.
    """

    def __init__(self, settings: Settings, deadline: Deadline | None = None):
        self.settings = settings
        self.container = settings.state_container
        self.deadline = deadline
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.history = HistoryLog(settings, self._count, deadline)
        self.listed: dict[str, Listed] = {}  # the last listing `load` made (pending-operation blobs included)

    def _count(self, kind: str) -> None:
        with self._lock:
            self.requests[kind] += 1

    def count(self, kind: str) -> None:
        """Count a request made beside the store's own (the pending-operation blobs)."""
        self._count(kind)

    def list_blobs(self, prefix: str = PREFIX) -> dict[str, Listed]:
        """Blob name -> ETag and metadata for every blob under `prefix` (one request per page of 5000)."""
        from azure.core.exceptions import ResourceNotFoundError

        client = storage.blob_service(self.settings).get_container_client(self.container)
        options = storage.call_options(self.deadline)

        def listing() -> dict[str, Listed]:
            found: dict[str, Listed] = {}
            try:
                for page in client.list_blobs(name_starts_with=prefix, include=["metadata"], **options).by_page():
                    self._count("list")
                    found.update((blob.name, Listed(blob.etag, blob.metadata or {})) for blob in page)
            except ResourceNotFoundError:
                self._count("list")  # the request answered 404
                return {}  # no container yet: no state yet; the first write creates it
            return found

        return storage.call(f"state container {self.container}", listing, self.deadline)

    def load(self, targets: Mapping[str, dict[str, Any]]) -> dict[str, Stored]:
        """The state of every target (key -> its description) for deciding, from one listing. A target
        without a blob gets an empty state; only a blob without our summary is read (once, in full)."""
        listing = self.list_blobs()
        self.listed = listing
        result: dict[str, Stored] = {}
        unsummarised: list[str] = []
        for key, target in targets.items():
            listed = listing.get(blob_name(key))
            if listed is None:
                result[key] = Stored(key, TargetState(), target)
            elif (brief := from_summary(key, target, listed.metadata, listed.etag)) is not None:
                result[key] = brief
            else:
                unsummarised.append(key)
        for key, stored in zip(unsummarised, self.fan_out(lambda k: self.read(k, targets[k]), unsummarised),
                               strict=True):
            result[key] = stored or Stored(key, TargetState(), targets[key])
        return result

    @staticmethod
    def fan_out(work: Callable[[T], R], items: list[T]) -> list[R]:
        """`work` over `items`, READ_WORKERS at a time (reads are independent round trips)."""
        if not items:
            return []
        with ThreadPoolExecutor(max_workers=min(READ_WORKERS, len(items))) as pool:
            return list(pool.map(work, items))

    def read_text(self, name: str) -> str | None:
        """One blob's text (None when it is gone since the listing)."""
        from batchk8s.errors import NotFoundError

        self._count("read")
        try:
            return storage.read_blob_text(self.settings, self.container, name, deadline=self.deadline)
        except NotFoundError:
            return None

    def read(self, key: str, target: dict[str, Any] | None = None) -> Stored | None:
        """A target's state blob in full (None when there is none)."""
        from batchk8s.errors import NotFoundError

        self._count("read")
        try:
            blob = storage.read_blob(self.settings, self.container, blob_name(key), deadline=self.deadline)
        except NotFoundError:
            return None
        return decode(key, target, blob.text, blob.etag)

    def write(self, stored: Stored, state: TargetState, now: datetime) -> Stored:
        """Replace the target's state if nobody wrote it since `stored` was listed; ConflictError otherwise.

        A legacy blob's history is read first (once) and, if this write wins, appended to the history blob.
        """
        moved: tuple[dict[str, Any], ...] = ()
        if stored.legacy:
            moved = stored.history if stored.history is not None else self._legacy_history(stored)
        self._count("write")
        etag = storage.write_blob_if_match(self.settings, self.container, blob_name(stored.key),
                                           encode(stored.key, stored.target, state, now), stored.etag,
                                           metadata=summary(state), deadline=self.deadline)
        if moved:
            self.history.append(stored.key, stored.target, moved, now)
        return replace(stored, state=state, etag=etag, legacy=False, history=None)

    def _legacy_history(self, stored: Stored) -> tuple[dict[str, Any], ...]:
        """The history inside the listed version of a legacy blob; () if it changed since (the write
        conditioned on the listed ETag then fails anyway)."""
        full = self.read(stored.key, stored.target)
        if full is None or full.etag is None or not _same_etag(full.etag, stored.etag or ""):
            return ()
        return full.history or ()


def _same_etag(first: str, second: str) -> bool:
    """Listings give ETags bare, downloads and writes quoted: compare without the quotes."""
    return first.strip('"') == second.strip('"')
