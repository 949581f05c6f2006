"""What the reconciler did, per target: append blobs of JSON lines, written without reading.

History is kept apart from the state blobs so that a tick never has to read a target's state in full:
an event is appended (one request, no read, never a conflict) and the state blob holds only what a
decision needs. Each target has one append blob per month, `schedules/history/<target key>/<YYYY-MM>.jsonl`
in BATCHK8S_STATE_CONTAINER, one line per event (applied, skipped for a hold / already in state /
missed, failed), each carrying its target. An append blob holds at most 50,000 blocks; a tick appends
at most one block per target and the timer ticks once a minute, so a month (at most 44,640 ticks)
always fits, at roughly 200-300 bytes per event (about 12 MB for a rule firing every minute).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from batchk8s import storage
from batchk8s.deadline import Deadline
from batchk8s.errors import BatchK8sError
from batchk8s.settings import Settings

log = logging.getLogger("batchk8s.schedules.history")

PREFIX = "schedules/history/"
SUFFIX = ".jsonl"


def blob_name(key: str, now: datetime) -> str:
    """The target's history blob for the month of `now` (UTC)."""
    return f"{PREFIX}{key}/{now:%Y-%m}{SUFFIX}"


def key_of(name: str) -> str | None:
    """The target key a history blob belongs to, or None for a blob that is not one."""
    if not (name.startswith(PREFIX) and name.endswith(SUFFIX)):
        return None
    key, _, _month = name[len(PREFIX):].rpartition("/")
    return key or None


def parse_lines(text: str) -> list[dict[str, Any]]:
    """The entries of a history blob; a damaged line (a torn or foreign write) is skipped, not fatal."""
    entries = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


class HistoryLog:
    """Appends a target's events to its history blob; `count("append")` is called once per request."""

    def __init__(self, settings: Settings, count: Callable[[str], None], deadline: Deadline | None = None):
        self.settings = settings
        self.count = count
        self.deadline = deadline

    def append(self, key: str, target: dict[str, Any], entries: Iterable[dict[str, Any]], now: datetime) -> bool:
        """Append `entries` as one block (one request). A storage failure is logged, not raised: the
        action the entries describe has happened, and the state blob already records it."""
        lines = [json.dumps({"key": key, "target": target, **entry}, separators=(",", ":")) for entry in entries]
        if not lines:
            return True
        self.count("append")
        try:
            storage.append_blob_line(self.settings, self.settings.state_container, blob_name(key, now),
                                     "\n".join(lines), deadline=self.deadline)
            return True
        except BatchK8sError as error:
            log.warning("%s: %d history entr%s could not be recorded: %s", key, len(lines),
                        "y" if len(lines) == 1 else "ies", error.message)
            return False
