"""NCRONTAB schedules, parsed and evaluated the way the Azure Functions host does.

The Functions timer trigger (WebJobs timer extension) hands its schedule to the NCrontab library and then
corrects the result for daylight saving time itself.  croniter is close but not the same language: it
accepts seven fields, rejects full month names such as ``February`` and treats day-of-month and
day-of-week as alternatives.  A schedule that validates here but not on Azure (or the other way round)
is a timer that silently never fires, so the grammar and the evaluation are implemented here, on the
sets of allowed values, following NCrontab's rules:

* 5 fields ``{minute} {hour} {day} {month} {day-of-week}`` or 6 fields with ``{second}`` first; fields
  are separated by one or more spaces; any other field count is rejected.
* A field is a comma list of parts; a part is ``*``, ``N``, ``A-B`` or one of those followed by
  ``/STEP``.  ``N/STEP`` means N up to the field maximum by STEP.  A reversed range ``B-A`` is read
  as ``A-B`` (NCrontab swaps the ends; it does not wrap around).
* Months and weekdays may be given by name, in any case, as the full name or any prefix of it
  (``Jan``, ``FEB``, ``sunday``, ``Mon``); a prefix matching several names means the first in
  calendar order (``J`` is January, ``S`` is Sunday), which is what NCrontab does.
* Day of week is 0-6 with 0 = Sunday; 7 is rejected, as NCrontab rejects it.
* Day of month and day of week must *both* match (not classic cron's "either").

Deliberately stricter than NCrontab, because the host's reading of these is surely not what was meant:
a step of 0 or a step written with a sign (NCrontab silently treats ``*/0`` as ``*``) and numbers too
large for a 32-bit integer (which make the host throw) are rejected.

Time zones and daylight saving time (the text is meant for docs/scale-sets.md)::

    Schedules are evaluated on the wall clock of the time zone of the datetime passed in (a naive
    datetime means UTC), as the Functions host evaluates them in WEBSITE_TIME_ZONE.
    Spring forward: a wall time that does not exist (02:30 on the day the clocks jump from 02:00 to
    03:00) is read with the offset in force before the jump, so it fires at 03:30 new time, the very
    instant 02:30 old time would have been; evaluation then continues from 03:30, so other
    nonexistent times of that hour do not fire separately.
    Fall back: a point-in-time schedule (no '*', range or step in the seconds, minutes or hours
    field, e.g. '0 30 1 * * *') fires once, at the first occurrence (summer time) of a repeated wall
    time; the second occurrence is skipped. An interval schedule (e.g. '0 */30 * * * *') keeps its
    real-time rhythm and fires in both passes of the repeated hour (01:00 EDT, 01:30 EDT, 01:00 EST,
    01:30 EST, 02:00 EST). As in the host, a schedule is an interval when, after expansion, its
    seconds, minutes or hours field holds '*' or a run of consecutive values ('0-5', also '0,1,2');
    a step that leaves gaps ('0 0 */2 * * *') alone does not make an interval.

Impossible schedules (``30 February``, ``31 April``) are valid NCRONTAB - the host accepts them and
never fires - so :func:`parse` accepts them too and :attr:`Schedule.never_fires` says so; evaluation
then returns ``None`` at once instead of searching.  Possible schedules always find their next firing:
the longest gap any date/weekday combination can have (29 February on a given weekday) is about 40
years, well inside the 400-year search bound.
"""

from __future__ import annotations

import calendar
import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from itertools import pairwise

__all__ = ["Schedule", "ScheduleError", "parse"]

_UTC = UTC
_ONE_SECOND = timedelta(seconds=1)
_SEARCH_YEARS = 400  # one full Gregorian cycle: every possible date/weekday combination recurs within it
_MAX_INT32 = 2**31 - 1

_MONTH_NAMES = ("january", "february", "march", "april", "may", "june", "july", "august", "september",
                "october", "november", "december")
_DAY_NAMES = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
# Longest each month can be (index = month; February of a leap year).
_DAYS_IN_MONTH_MAX = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

_DIGITS = re.compile(r"[0-9]+")
_LETTERS = re.compile(r"[A-Za-z]+")


@dataclass(frozen=True)
class _FieldSpec:
    name: str
    low: int
    high: int
    names: tuple[str, ...] | None = None


_SECOND = _FieldSpec("second", 0, 59)
_MINUTE = _FieldSpec("minute", 0, 59)
_HOUR = _FieldSpec("hour", 0, 23)
_DAY = _FieldSpec("day-of-month", 1, 31)
_MONTH = _FieldSpec("month", 1, 12, _MONTH_NAMES)
_WEEKDAY = _FieldSpec("day-of-week", 0, 6, _DAY_NAMES)
_SPECS_6 = (_SECOND, _MINUTE, _HOUR, _DAY, _MONTH, _WEEKDAY)
_SPECS_5 = _SPECS_6[1:]

# What a wall-clock time is in a given zone.
_NORMAL, _GAP, _AMBIGUOUS = 0, 1, 2


class ScheduleError(ValueError):
    """An NCRONTAB expression the Functions host would not accept; ``field`` names the culprit.

    ``field`` is one of ``second``, ``minute``, ``hour``, ``day-of-month``, ``month``, ``day-of-week``,
    or ``expression`` when the problem is the expression as a whole (e.g. the number of fields).
    """

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def _field_error(spec: _FieldSpec, text: str, detail: str) -> ScheduleError:
    return ScheduleError(f"{spec.name} field '{text}': {detail}", spec.name)


def _parse_value(spec: _FieldSpec, text: str, token: str) -> int:
    """One number or name; range checks are left to the caller, which knows if it is a range end."""
    if not token:
        raise _field_error(spec, text, "empty value")
    if token[0].isdigit():
        if not _DIGITS.fullmatch(token):
            raise _field_error(spec, text, f"'{token}' is not a number")
        if len(token) > 10 or int(token) > _MAX_INT32:
            raise _field_error(spec, text, f"value {token} out of range {spec.low}-{spec.high}")
        return int(token)
    if spec.names is not None and _LETTERS.fullmatch(token):
        lowered = token.lower()
        for index, name in enumerate(spec.names):
            if name.startswith(lowered):
                return spec.low + index
        choices = ", ".join(name.capitalize() for name in spec.names)
        raise _field_error(spec, text, f"unknown name '{token}' (use a number or one of {choices})")
    if spec.names is not None:
        raise _field_error(spec, text, f"'{token}' is neither a number nor a name")
    raise _field_error(spec, text, f"'{token}' is not a number")


def _check_range(spec: _FieldSpec, text: str, value: int) -> None:
    if not spec.low <= value <= spec.high:
        raise _field_error(spec, text, f"value {value} out of range {spec.low}-{spec.high}")


def _parse_field(spec: _FieldSpec, text: str) -> tuple[int, ...]:
    """The sorted allowed values of one field, or ScheduleError naming the field."""
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise _field_error(spec, text, "empty element in list")
        base, slash, step_text = part.partition("/")
        step: int | None = None
        if slash:
            if not base:
                raise _field_error(spec, text, f"'{part}' has no value before '/'")
            if not _DIGITS.fullmatch(step_text):
                raise _field_error(spec, text, f"step '{step_text}' is not a positive number")
            if len(step_text) > 10 or int(step_text) > _MAX_INT32:
                raise _field_error(spec, text, f"step {step_text} is too large")
            step = int(step_text)
            if step < 1:
                raise _field_error(spec, text, "step must be at least 1")
        if base == "*":
            low, high = spec.low, spec.high
        elif "-" in base[1:]:
            first, _, last = base.partition("-")
            low, high = _parse_value(spec, text, first), _parse_value(spec, text, last)
            if low > high:  # NCrontab swaps reversed ends instead of wrapping around
                low, high = high, low
            _check_range(spec, text, low)
            _check_range(spec, text, high)
        else:
            low = _parse_value(spec, text, base)
            _check_range(spec, text, low)
            high = low if step is None else spec.high
        values.update(range(low, high + 1, step or 1))
    return tuple(sorted(values))


def _has_run(values: tuple[int, ...]) -> bool:
    """True when NCrontab's normal form of the field contains '*' or 'a-b' (two consecutive values)."""
    return any(b - a == 1 for a, b in pairwise(values))


def parse(expression: str) -> Schedule:
    """Parse an NCRONTAB expression exactly as the Functions host would accept it.

    Raises ScheduleError (a ValueError) whose message and ``field`` attribute name the bad field.
    """
    if not isinstance(expression, str):
        raise ScheduleError(f"expression must be a string, not {type(expression).__name__}", "expression")
    tokens = [token for token in expression.split(" ") if token]
    if len(tokens) not in (5, 6):
        raise ScheduleError(
            f"expression '{expression}': expected 5 fields (minute hour day month day-of-week) or 6 "
            f"(second minute hour day month day-of-week), got {len(tokens)}", "expression")
    specs = _SPECS_6 if len(tokens) == 6 else _SPECS_5
    parsed = [_parse_field(spec, token) for spec, token in zip(specs, tokens, strict=True)]
    if len(tokens) == 5:
        parsed.insert(0, (0,))
    return Schedule._create(expression, len(tokens) == 6, *parsed)


def _kind(wall: datetime, tz: tzinfo) -> int:
    """Whether a naive wall time is normal, inside a spring-forward gap, or repeated by a fall-back."""
    first = wall.replace(tzinfo=tz, fold=0).utcoffset()
    second = wall.replace(tzinfo=tz, fold=1).utcoffset()
    if first == second:
        return _NORMAL
    return _AMBIGUOUS if first > second else _GAP  # type: ignore[operator]


def _resolve(wall: datetime, kind: int, tz: tzinfo, fold_if_ambiguous: int) -> datetime:
    """Aware datetime for a wall time; gap times take the pre-jump offset, like .NET's DateTimeOffset."""
    if kind == _AMBIGUOUS:
        return wall.replace(tzinfo=tz, fold=fold_if_ambiguous)
    aware = wall.replace(tzinfo=tz, fold=0)
    if kind == _GAP:
        return aware.astimezone(_UTC).astimezone(tz)  # 02:30 in the gap becomes 03:30 after the jump
    return aware


def _shift(moment: datetime, delta: timedelta, tz: tzinfo) -> datetime:
    """Move by real elapsed time (aware + timedelta in Python is wall-clock arithmetic)."""
    return (moment.astimezone(_UTC) + delta).astimezone(tz)


def _aware(dt: datetime) -> datetime:
    if not isinstance(dt, datetime):
        raise TypeError(f"expected a datetime, got {type(dt).__name__}")
    return dt.replace(tzinfo=_UTC) if dt.tzinfo is None or dt.utcoffset() is None else dt


@dataclass(frozen=True, eq=False)
class Schedule:
    """A parsed NCRONTAB schedule; immutable, hashable and cheap to evaluate many times per tick.

    The value sets are public so callers (e.g. a plan printout) can show what a field expanded to.
    """

    expression: str
    has_seconds: bool
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: tuple[int, ...]
    months: tuple[int, ...]
    days_of_week: tuple[int, ...]
    is_interval: bool = field(default=False)
    never_fires: bool = field(default=False)
    _weekday_set: frozenset[int] = field(default=frozenset(), repr=False)

    @classmethod
    def _create(cls, expression: str, has_seconds: bool, seconds: tuple[int, ...], minutes: tuple[int, ...],
                hours: tuple[int, ...], days: tuple[int, ...], months: tuple[int, ...],
                days_of_week: tuple[int, ...]) -> Schedule:
        time_fields = (seconds, minutes, hours) if has_seconds else (minutes, hours)
        possible = any(day <= _DAYS_IN_MONTH_MAX[month] for month in months for day in days)
        return cls(expression, has_seconds, seconds, minutes, hours, days, months, days_of_week,
                   is_interval=any(_has_run(values) for values in time_fields),
                   never_fires=not possible, _weekday_set=frozenset(days_of_week))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Schedule):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple[object, ...]:
        return (self.seconds, self.minutes, self.hours, self.days, self.months, self.days_of_week,
                self.has_seconds)

    def __str__(self) -> str:
        return self.expression

    # ----- wall-clock search on the value sets -------------------------------------------------------

    def _time_at_or_after(self, hour: int, minute: int, second: int) -> tuple[int, int, int] | None:
        hours, minutes, seconds = self.hours, self.minutes, self.seconds
        for h in hours[bisect_left(hours, hour):]:
            if h > hour:
                return h, minutes[0], seconds[0]
            for m in minutes[bisect_left(minutes, minute):]:
                if m > minute:
                    return h, m, seconds[0]
                index = bisect_left(seconds, second)
                if index < len(seconds):
                    return h, m, seconds[index]
        return None

    def _time_at_or_before(self, hour: int, minute: int, second: int) -> tuple[int, int, int] | None:
        hours, minutes, seconds = self.hours, self.minutes, self.seconds
        for h in reversed(hours[:bisect_right(hours, hour)]):
            if h < hour:
                return h, minutes[-1], seconds[-1]
            for m in reversed(minutes[:bisect_right(minutes, minute)]):
                if m < minute:
                    return h, m, seconds[-1]
                index = bisect_right(seconds, second)
                if index:
                    return h, m, seconds[index - 1]
        return None

    def _wall_at_or_after(self, start: datetime) -> datetime | None:
        """First naive wall time >= start (second resolution) matching every field."""
        if self.never_fires:
            return None
        weekdays = self._weekday_set
        months, days = self.months, self.days
        for year in range(start.year, min(start.year + _SEARCH_YEARS, 9999) + 1):
            first_month = start.month if year == start.year else 1
            for month in months[bisect_left(months, first_month):]:
                same_month = year == start.year and month == start.month
                first_weekday, length = calendar.monthrange(year, month)
                sunday_based = (first_weekday + 1) % 7
                for day in days[bisect_left(days, start.day if same_month else 1):]:
                    if day > length:
                        break
                    if (sunday_based + day - 1) % 7 not in weekdays:
                        continue
                    if same_month and day == start.day:
                        found = self._time_at_or_after(start.hour, start.minute, start.second)
                        if found is None:
                            continue
                    else:
                        found = (self.hours[0], self.minutes[0], self.seconds[0])
                    return datetime(year, month, day, *found)
        return None

    def _wall_at_or_before(self, start: datetime) -> datetime | None:
        """Last naive wall time <= start (second resolution) matching every field."""
        if self.never_fires:
            return None
        weekdays = self._weekday_set
        months, days = self.months, self.days
        for year in range(start.year, max(start.year - _SEARCH_YEARS, 1) - 1, -1):
            last_month = start.month if year == start.year else 12
            for month in reversed(months[:bisect_right(months, last_month)]):
                same_month = year == start.year and month == start.month
                first_weekday, length = calendar.monthrange(year, month)
                sunday_based = (first_weekday + 1) % 7
                last_day = min(start.day if same_month else 31, length)
                for day in reversed(days[:bisect_right(days, last_day)]):
                    if (sunday_based + day - 1) % 7 not in weekdays:
                        continue
                    if same_month and day == start.day:
                        found = self._time_at_or_before(start.hour, start.minute, start.second)
                        if found is None:
                            continue
                    else:
                        found = (self.hours[-1], self.minutes[-1], self.seconds[-1])
                    return datetime(year, month, day, *found)
        return None

    def _wall_after(self, wall: datetime) -> datetime | None:
        try:
            return self._wall_at_or_after(wall.replace(microsecond=0) + _ONE_SECOND)
        except OverflowError:
            return None

    # ----- public evaluation -------------------------------------------------------------------------

    def next_after(self, dt: datetime) -> datetime | None:
        """The next firing strictly after ``dt``, as the Functions host computes it from ``dt``.

        ``dt`` is evaluated on the wall clock of its own time zone (naive means UTC) and the result is
        an aware datetime in that zone.  Daylight-saving handling follows the host (see the module
        docstring).  Returns None only when the schedule never fires (or not before year 9999).
        """
        now = _aware(dt)
        tz = now.tzinfo
        assert tz is not None
        result = self._host_next(now, tz)
        now_utc = now.astimezone(_UTC)
        # Guard for exotic zones: the host rules never go backwards for ordinary DST, keep it that way.
        while result is not None and result.astimezone(_UTC) <= now_utc:
            result = self._host_next(result, tz)
        return result

    def _host_next(self, now: datetime, tz: tzinfo) -> datetime | None:
        wall = now.replace(tzinfo=None)
        next_wall = self._wall_after(wall)
        if next_wall is None:
            return None
        next_kind = _kind(next_wall, tz)
        # .NET reads an ambiguous local time as standard time, i.e. the second occurrence.
        candidate = _resolve(next_wall, next_kind, tz, fold_if_ambiguous=1)
        now_ambiguous = _kind(wall.replace(microsecond=0), tz) == _AMBIGUOUS
        next_ambiguous = next_kind == _AMBIGUOUS
        if not (now_ambiguous or next_ambiguous):
            return candidate
        now_offset, next_offset = now.utcoffset(), candidate.utcoffset()
        assert now_offset is not None and next_offset is not None
        if self.is_interval:
            if next_offset != now_offset:  # keep the real-time rhythm across the repeated hour
                return _shift(candidate, next_offset - now_offset, tz)
            return candidate
        if not next_ambiguous:
            return candidate
        if next_offset != now_offset:  # point-in-time: first occurrence (summer time) only
            return _shift(candidate, next_offset - now_offset, tz)
        # Already in the second pass: the first occurrence is taken to have fired; skip repeated times.
        while next_wall is not None and next_kind == _AMBIGUOUS:
            next_wall = self._wall_after(next_wall)
            next_kind = _kind(next_wall, tz) if next_wall is not None else _NORMAL
        return None if next_wall is None else _resolve(next_wall, next_kind, tz, fold_if_ambiguous=1)

    def occurrences(self, after: datetime, count: int) -> list[datetime]:
        """The next ``count`` firings strictly after ``after``, each computed from the one before it.

        Shorter than ``count`` only when the schedule runs out (``never_fires``, or year 9999).
        """
        if count < 0:
            raise ValueError("count must not be negative")
        result: list[datetime] = []
        current: datetime | None = _aware(after)
        while len(result) < count:
            assert current is not None
            current = self.next_after(current)
            if current is None:
                break
            result.append(current)
        return result

    def previous_at_or_before(self, dt: datetime) -> datetime | None:
        """The latest firing at or before ``dt`` (same time-zone rules as next_after), or None.

        Meant for catch-up: if this is later than the last recorded run, a run was missed.  It is
        consistent with chains of next_after: ``next_after(previous_at_or_before(t)) > t``.
        """
        now = _aware(dt)
        tz = now.tzinfo
        assert tz is not None
        if self.never_fires:
            return None
        now_utc = now.astimezone(_UTC)
        window_start = now_utc - timedelta(hours=30)
        if window_start.astimezone(tz).utcoffset() == now.utcoffset():
            return self._previous_by_wall(now, tz)
        # An offset change within the last 30 hours: replay the host's chain across it.
        low, high = window_start, now_utc
        while high - low > _ONE_SECOND:
            middle = low + (high - low) / 2
            if middle.astimezone(tz).utcoffset() == now.utcoffset():
                high = middle
            else:
                low = middle
        transition = high
        before, after = low.astimezone(tz).utcoffset(), high.astimezone(tz).utcoffset()
        assert before is not None and after is not None
        # Before the transition minus its size no wall time is ambiguous, so the chain there is plain.
        seed_time = (transition - abs(after - before) - timedelta(minutes=1)).astimezone(tz)
        last = self._previous_by_wall(seed_time, tz)
        current = last if last is not None else seed_time
        while True:
            following = self.next_after(current)
            if following is None or following.astimezone(_UTC) > now_utc:
                return last
            last = current = following
            past_transition = (following.astimezone(_UTC) > transition
                               and following.utcoffset() == now.utcoffset()
                               and _kind(following.replace(tzinfo=None), tz) == _NORMAL)
            if past_transition:  # from here on the host simply follows the wall clock
                by_wall = self._previous_by_wall(now, tz)
                if by_wall is not None and by_wall.astimezone(_UTC) >= following.astimezone(_UTC):
                    return by_wall
                return following

    def _previous_by_wall(self, now: datetime, tz: tzinfo) -> datetime | None:
        """Latest wall-clock match whose instant is <= now, ignoring the host's history-dependent rules."""
        now_utc = now.astimezone(_UTC)
        wall: datetime | None = now.replace(tzinfo=None, microsecond=0)
        while wall is not None:
            wall = self._wall_at_or_before(wall)
            if wall is None:
                return None
            kind = _kind(wall, tz)
            # Interval schedules fire in both passes of a repeated hour, point-in-time ones in the first.
            candidate = _resolve(wall, kind, tz, fold_if_ambiguous=1 if self.is_interval else 0)
            if candidate.astimezone(_UTC) <= now_utc:
                return candidate
            if kind == _AMBIGUOUS and self.is_interval:
                first = _resolve(wall, kind, tz, fold_if_ambiguous=0)
                if first.astimezone(_UTC) <= now_utc:
                    return first
            try:
                wall = wall - _ONE_SECOND
            except OverflowError:
                return None
        return None
