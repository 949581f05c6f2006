"""Where the document comes from, and the two read-only views over it: upcoming firings and history.

The document is the BATCHK8S_SCHEDULES app setting or the blob BATCHK8S_SCHEDULES_BLOB names
(CONTAINER/BLOB in the app's storage account). Setting both is refused: which one would win is not
obvious to whoever edits the other.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from batchk8s import clock
from batchk8s.errors import ConfigError
from batchk8s.schedules.document import Document, DocumentError, parse_cached
from batchk8s.schedules.planner import window
from batchk8s.settings import Settings

MAX_HOURS = 168
MAX_HISTORY = 1000


def document_source(settings: Settings) -> str:
    return f"blob {settings.schedules_blob}" if settings.schedules_blob else "BATCHK8S_SCHEDULES"


def document_text(settings: Settings) -> str:
    """The raw document: the app setting, or the blob (read on every call, so an edit applies next tick)."""
    settings.require("schedules")
    if settings.schedules_json and settings.schedules_blob:
        raise ConfigError("BATCHK8S_SCHEDULES and BATCHK8S_SCHEDULES_BLOB are both set: keep one",
                          details=[{"field": "BATCHK8S_SCHEDULES_BLOB",
                                    "message": "set only one of BATCHK8S_SCHEDULES and BATCHK8S_SCHEDULES_BLOB"}])
    if settings.schedules_json:
        return settings.schedules_json
    from batchk8s.storage import read_blob_text

    container, _, blob = (settings.schedules_blob or "").partition("/")
    return read_blob_text(settings, container, blob)


def load_document(settings: Settings, now: datetime, text: str | None = None, source: str | None = None) -> Document:
    """The validated document (DocumentError listing every problem when it is not valid); `text` replaces
    the configured document (named `source` in messages)."""
    if text is not None:
        return parse_cached(text, now=now, default_resource_group=settings.resource_group, source=source or "document")
    try:
        return parse_cached(document_text(settings), now=now, default_resource_group=settings.resource_group,
                            source=document_source(settings))
    except DocumentError as error:
        # The app's own document is broken: a configuration problem (503), not the caller's request.
        raise ConfigError(error.message, code=error.code, details=error.details) from None


def upcoming(settings: Settings, hours: int, now: datetime | None = None, text: str | None = None,
             source: str | None = None) -> dict[str, Any]:
    """Every firing in the next `hours` per target, with its action, local and UTC time."""
    now = (now or clock.now()).astimezone(UTC).replace(microsecond=0)
    document = load_document(settings, now, text, source)
    end = now + timedelta(hours=hours)
    targets = window(document, now, end)
    return {
        "from": now.isoformat(), "to": end.isoformat(), "hours": hours, "document": document.summary(),
        "targets": targets, "firings": sum(len(entry["firings"]) for entry in targets),
        "holds": [hold.to_dict() for hold in document.holds if hold.until > now],
    }


def history(settings: Settings, limit: int = 100) -> dict[str, Any]:
    """What the reconciler applied, skipped (hold, already in state, missed) or failed, newest first.

    One listing of `schedules/` finds every target's history blobs and any state blob an earlier
    version wrote with history inside; per target the newest months are read until `limit` entries are
    found (older months cannot hold newer entries), concurrently across targets. `total` counts the
    entries read, so it is at least the number returned.
    """
    from batchk8s.schedules import history as log
    from batchk8s.schedules.state import PREFIX, StateStore, is_legacy, key_of

    store = StateStore(settings)
    listing = store.list_blobs(prefix="schedules/")
    months: dict[str, list[str]] = {}
    for name in listing:
        if (key := log.key_of(name)) is not None:
            months.setdefault(key, []).append(name)
    legacy = [key_of(name) for name, listed in listing.items()
              if name.startswith(PREFIX) and is_legacy(listed.metadata)]

    def newest(names: list[str]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for name in sorted(names, reverse=True):  # YYYY-MM sorts by time
            found.extend(log.parse_lines(store.read_text(name) or ""))
            if len(found) >= limit:
                break
        return found

    def embedded(key: str) -> list[dict[str, Any]]:
        stored = store.read(key)
        return [{"key": key, "target": stored.target, **entry} for entry in stored.history or ()] if stored else []

    entries = [entry for found in store.fan_out(newest, list(months.values())) for entry in found]
    entries += [entry for found in store.fan_out(embedded, legacy) for entry in found]
    entries.sort(key=lambda entry: (str(entry.get("at", "")), str(entry.get("firing", ""))), reverse=True)
    return {"entries": entries[:limit], "total": len(entries), "requests": dict(store.requests)}
