"""An oracle for weekday wall-clock schedules, independent of batchk8s's NCRONTAB evaluator.

Tests whose answers depend on "now" compare with this instead of a hard-coded instant: it walks calendar
days in the rule's zone with zoneinfo, so it is right on any date, in summer and winter time alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from itertools import islice
from zoneinfo import ZoneInfo

WEEKDAYS = range(5)  # Monday to Friday, as datetime.weekday() numbers them


def _candidates(zone: str, at: time, after: datetime) -> Iterator[datetime]:
    tz = ZoneInfo(zone)
    day = after.astimezone(tz).date() - timedelta(days=1)
    while True:
        if day.weekday() in WEEKDAYS:
            instant = datetime.combine(day, at, tzinfo=tz).astimezone(UTC)
            if instant > after:
                yield instant
        day += timedelta(days=1)


def weekday_times(zone: str, hour: int, minute: int = 0, *, after: datetime, count: int | None = None,
                  until: datetime | None = None) -> list[datetime]:
    """UTC instants of `hour:minute` local time on Monday to Friday in `zone`, strictly after `after`:
    the first `count`, or all up to and including `until`."""
    found = _candidates(zone, time(hour, minute), after)
    if count is not None:
        return list(islice(found, count))
    assert until is not None, "give count or until"
    result = []
    for instant in found:
        if instant > until:
            return result
        result.append(instant)
    return result
