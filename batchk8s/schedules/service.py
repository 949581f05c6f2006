"""Where the document comes from, and the two read-only views over it: upcoming firings and history.

The document is the BATCHK8S_SCHEDULES app setting or the blob BATCHK8S_SCHEDULES_BLOB names
(CONTAINER/BLOB in the app's storage account). Setting both is refused: which one would win is not
obvious to whoever edits the other.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from batchk8s import clock
from batchk8s.errors import BatchK8sError, ConfigError, InputError, excerpt
from batchk8s.schedules.document import Document, DocumentError, parse_cached, parse_instant
from batchk8s.schedules.planner import window
from batchk8s.settings import Settings

if TYPE_CHECKING:
    from batchk8s.deadline import Deadline
    from batchk8s.schedules.timeline import Timeline

MAX_HOURS = 168
MAX_HISTORY = 1000
MAX_VIEW_DAYS = 31
MAX_VIEW_DISTANCE = timedelta(days=100 * 366)  # `after` within a century of now (year 9999 is where dates end)
# Outcomes a timeline reads at most: 200 targets acting twice a day for a month, with room for retries.
VIEW_HISTORY = 50000
# The page waits this long for the history: the storage SDK's own retries take over a minute to give up
# on an unreachable account, and the plan is worth showing without it.
HISTORY_DEADLINE = 20.0


def document_source(settings: Settings) -> str:
    return f"blob {settings.schedules_blob}" if settings.schedules_blob else "BATCHK8S_SCHEDULES"


def document_text(settings: Settings, deadline: Deadline | None = None) -> str:
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
    return read_blob_text(settings, container, blob, deadline=deadline)


def load_document(settings: Settings, now: datetime, text: str | None = None, source: str | None = None,
                  deadline: Deadline | None = None) -> Document:
    """The validated document (DocumentError listing every problem when it is not valid); `text` replaces
    the configured document (named `source` in messages)."""
    if text is not None:
        return parse_cached(text, now=now, default_resource_group=settings.resource_group, source=source or "document")
    try:
        return parse_cached(document_text(settings, deadline), now=now, default_resource_group=settings.resource_group,
                            source=document_source(settings))
    except DocumentError as error:
        # The app's own document is broken: a configuration problem (503), not the caller's request.
        raise ConfigError(error.message, code=error.code, details=error.details) from None


def upcoming(settings: Settings, hours: int, now: datetime | None = None, text: str | None = None,
             source: str | None = None, deadline: Deadline | None = None) -> dict[str, Any]:
    """Every firing in the next `hours` per target, with its action, local and UTC time."""
    now = (now or clock.now()).astimezone(UTC).replace(microsecond=0)
    document = load_document(settings, now, text, source, deadline)
    end = now + timedelta(hours=hours)
    targets = window(document, now, end)
    return {
        "from": now.isoformat(), "to": end.isoformat(), "hours": hours, "document": document.summary(),
        "targets": targets, "firings": sum(len(entry["firings"]) for entry in targets),
        "holds": [hold.to_dict() for hold in document.holds if hold.until > now],
    }


def history(settings: Settings, limit: int = 100, since: datetime | None = None,
            deadline: Deadline | None = None) -> dict[str, Any]:
    """What the reconciler applied, skipped (hold, already in state, missed) or failed, newest first.

    One listing of `schedules/` finds every target's history blobs and any state blob an earlier
    version wrote with history inside; per target the newest months are read until `limit` entries are
    found (older months cannot hold newer entries), concurrently across targets. `total` counts the
    entries read, so it is at least the number returned. Every storage call is made within `deadline`.
    """
    from batchk8s.schedules import history as log
    from batchk8s.schedules.followup import is_pending
    from batchk8s.schedules.state import PREFIX, StateStore, is_legacy, key_of

    store = StateStore(settings, deadline)
    listing = store.list_blobs(prefix="schedules/")
    months: dict[str, list[str]] = {}
    for name in listing:
        if (key := log.key_of(name)) is not None:
            months.setdefault(key, []).append(name)
    legacy = [key_of(name) for name, listed in listing.items()
              if name.startswith(PREFIX) and not is_pending(name) and is_legacy(listed.metadata)]

    oldest = log.blob_name("", since) if since else ""

    def newest(names: list[str]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for name in sorted(names, reverse=True):  # YYYY-MM sorts by time
            if name.rpartition("/")[2] < oldest.rpartition("/")[2]:
                break
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


def configured(settings: Settings) -> bool:
    return bool(settings.schedules_json or settings.schedules_blob)


def view_zone(value: str | None) -> ZoneInfo:
    """The viewer's IANA zone (default UTC), or a 400 naming `tz`."""
    name = (value or "UTC").strip()
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InputError.for_field("tz", f"{excerpt(value)} is not an IANA time zone name (e.g. Europe/Berlin, "
                                         "America/New_York)") from None


def view_start(value: str | None, now: datetime, name: str = "after") -> datetime:
    """Where the window starts: `value` (ISO 8601, no offset means UTC) or `now`; a 400 naming `name`
    (the query parameter, or the command line's `--after`)."""
    if value is None or value == "":
        return now
    instant = parse_instant(value)
    if instant is None:
        raise InputError.for_field(name, f"{excerpt(value)} is not an ISO 8601 time such as 2026-11-30T00:00:00Z")
    if abs(instant - now) > MAX_VIEW_DISTANCE:
        raise InputError.for_field(name, f"{excerpt(value)} is more than {MAX_VIEW_DISTANCE.days} days from now")
    return instant


def timeline(settings: Settings, days: int, zone: ZoneInfo, start: datetime | None = None,
             now: datetime | None = None, text: str | None = None, source: str | None = None,
             deadline: Deadline | None = None) -> Timeline:
    """The document's firings over `days` days of `zone` from `start` (default now), and for the part of
    the window already past, what the history recorded. A history that cannot be read leaves a note on
    the page instead of failing it: the plan is still worth seeing."""
    from batchk8s.schedules.timeline import build, selector_note

    now = (now or clock.now()).astimezone(UTC).replace(microsecond=0)
    start = start or now
    document = load_document(settings, now, text, source, deadline)
    notes = [note] if (note := selector_note(document)) else []
    entries: list[dict[str, Any]] = []
    if start < now:
        try:
            entries = _history_within(settings, start, HISTORY_DEADLINE, deadline)
        except BatchK8sError as error:
            notes.append(f"the history could not be read, so only the plan is shown: {error.message}")
    return build(document, start=start, days=days, zone=zone, now=now, history=entries, notes=notes)


def _history_within(settings: Settings, since: datetime, seconds: float,
                    deadline: Deadline | None = None) -> list[dict[str, Any]]:
    """The history entries since `since`, or UpstreamTimeoutError when storage takes longer than `seconds`
    (or than what is left of `deadline`, whose storage calls then stop on time as well)."""
    from batchk8s.timer_budget import within

    step = deadline.within(seconds) if deadline is not None else None
    return within(seconds, "the history",
                  lambda: history(settings, VIEW_HISTORY, since=since, deadline=step)["entries"])
