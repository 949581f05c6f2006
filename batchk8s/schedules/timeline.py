"""The layout of a week (or up to a month) of the schedule document on one time axis. Pure: no I/O.

Time maps linearly to x: an hour is the same width everywhere, so a day in the viewer's zone that
has 23 or 25 hours (daylight saving time) is narrower or wider than its neighbours, and a firing's
mark sits exactly where the instant is. The window is `days` calendar days in the viewer's zone from
its start (167 or 169 hours across a DST change). Rows are targets as the document names them
(scale sets, pools, tag selectors), grouped by the rules that apply to them; targets that only the
history knows (scale sets a tag selector matched) get rows of their own under the rules that fired
on them. Holds are spans from the window's start to their `until`, clipped to the window. Nights
(19:00-07:00) and weekends are shaded in the viewer's zone; each DST change of the viewer's zone or
a rule's zone is marked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from batchk8s.schedules.document import Document, PoolTarget, ScaleSetTarget, TagSelector, parse_instant
from batchk8s.schedules.planner import window

MAX_DAYS = 31
PLOT_WIDTH = 1120.0
NIGHT_STARTS, NIGHT_ENDS = 19, 7  # local hours: shaded from 19:00 to 07:00 in the viewer's zone
OUTCOMES = ("applied", "skipped", "failed")
# A rule firing every minute would put 10,080 marks a week on each of its rows: draw its first ones only.
MAX_FIRINGS_PER_RULE = 1000


def utc_text(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat()


@dataclass(frozen=True)
class Axis:
    """Maps instants in [start, end] to x in [0, width]."""

    start: datetime
    end: datetime
    width: float = PLOT_WIDTH

    def x(self, instant: datetime) -> float:
        span = (self.end - self.start).total_seconds()
        return round((instant - self.start).total_seconds() / span * self.width, 2)

    def clip(self, start: datetime, end: datetime) -> tuple[datetime, datetime] | None:
        start, end = max(start, self.start), min(end, self.end)
        return (start, end) if start < end else None


def window_end(start: datetime, days: int, zone: ZoneInfo) -> datetime:
    """`days` calendar days after `start` on the viewer's wall clock (so 167 or 169 hours across DST)."""
    wall = start.astimezone(zone).replace(tzinfo=None) + timedelta(days=days)
    return wall.replace(tzinfo=zone).astimezone(UTC)


def local_instant(day: date, hour: int, zone: ZoneInfo) -> datetime:
    """The UTC instant of `hour`:00 on `day` in `zone` (a wall time skipped by DST maps just past the jump)."""
    return datetime(day.year, day.month, day.day, hour, tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True)
class Day:
    """One calendar day of the viewer's zone, clipped to the window."""

    day: date
    start: datetime
    end: datetime
    x0: float
    x1: float

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600

    def to_dict(self) -> dict[str, Any]:
        return {"date": self.day.isoformat(), "start": utc_text(self.start), "end": utc_text(self.end),
                "hours": self.hours, "x0": self.x0, "x1": self.x1}


@dataclass(frozen=True)
class Shade:
    kind: str  # night or weekend
    start: datetime
    end: datetime
    x0: float
    x1: float

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "start": utc_text(self.start), "end": utc_text(self.end), "x0": self.x0,
                "x1": self.x1}


@dataclass(frozen=True)
class DstChange:
    """The clocks of `zone` move by `shift` at `at` (UTC)."""

    zone: str
    at: datetime
    shift: timedelta
    x: float

    @property
    def label(self) -> str:
        minutes = int(self.shift.total_seconds() // 60)
        amount = f"{abs(minutes) // 60}h" + (f"{abs(minutes) % 60:02d}" if minutes % 60 else "")
        return f"{self.zone} clocks {'+' if minutes > 0 else '-'}{amount}"

    def to_dict(self) -> dict[str, Any]:
        return {"zone": self.zone, "at": utc_text(self.at), "shiftMinutes": int(self.shift.total_seconds() // 60),
                "x": self.x, "label": self.label}


@dataclass(frozen=True)
class Mark:
    """A planned firing on a row."""

    at: datetime
    x: float
    action: str
    rule: str
    local: str  # on the rule's wall clock, ISO
    time_zone: str
    dedicated: int | None = None
    spot: int | None = None
    held: bool = False  # a hold covers it: the reconciler will skip it

    @property
    def effect(self) -> str:
        return f"resize to {self.dedicated}+{self.spot}" if self.action == "resize" else self.action

    def to_dict(self) -> dict[str, Any]:
        body = {"at": utc_text(self.at), "x": self.x, "action": self.action, "rule": self.rule, "local": self.local,
                "timeZone": self.time_zone, "held": self.held}
        if self.action == "resize":
            body.update(dedicated=self.dedicated, spot=self.spot)
        return body


@dataclass(frozen=True)
class Outcome:
    """What the reconciler recorded for a firing in the past part of the window (the newest record wins)."""

    firing: datetime
    x: float
    result: str
    action: str
    rule: str
    recorded: str
    reason: str | None = None
    detail: str | None = None
    records: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {"firing": utc_text(self.firing), "x": self.x, "result": self.result, "action": self.action,
                "rule": self.rule, "recorded": self.recorded, "reason": self.reason, "detail": self.detail,
                "records": self.records}


@dataclass(frozen=True)
class HoldSpan:
    start: datetime
    end: datetime
    until: datetime
    x0: float
    x1: float
    reason: str | None
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"start": utc_text(self.start), "end": utc_text(self.end), "until": utc_text(self.until),
                "x0": self.x0, "x1": self.x1, "reason": self.reason, "source": self.source}


@dataclass
class Row:
    key: str
    label: str
    kind: str  # vmss, pool or tag
    marks: list[Mark] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    holds: list[HoldSpan] = field(default_factory=list)
    from_history: bool = False  # known only from the history (a scale set a tag selector matched)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "kind": self.kind, "fromHistory": self.from_history,
                "marks": [m.to_dict() for m in self.marks], "outcomes": [o.to_dict() for o in self.outcomes],
                "holds": [h.to_dict() for h in self.holds]}


@dataclass
class Group:
    rules: tuple[str, ...]  # rule names, document order; () for targets only a hold names
    descriptions: tuple[str, ...]
    rows: list[Row] = field(default_factory=list)

    @property
    def label(self) -> str:
        return " · ".join(self.rules) if self.rules else "held, no rule names it"

    def to_dict(self) -> dict[str, Any]:
        return {"rules": list(self.rules), "descriptions": list(self.descriptions), "label": self.label,
                "rows": [row.to_dict() for row in self.rows]}


@dataclass
class Timeline:
    axis: Axis
    zone: ZoneInfo
    days: int
    now: datetime
    source: str
    day_list: list[Day]
    shades: list[Shade]
    dst: list[DstChange]
    groups: list[Group]
    notes: list[str] = field(default_factory=list)

    @property
    def rows(self) -> list[Row]:
        return [row for group in self.groups for row in group.rows]

    def counts(self) -> dict[str, int]:
        rows = self.rows
        return {"groups": len(self.groups), "rows": len(rows), "marks": sum(len(r.marks) for r in rows),
                "outcomes": sum(len(r.outcomes) for r in rows), "holds": sum(len(r.holds) for r in rows)}

    def to_dict(self) -> dict[str, Any]:
        return {"from": utc_text(self.axis.start), "to": utc_text(self.axis.end), "days": self.days,
                "timeZone": self.zone.key, "now": utc_text(self.now), "document": self.source,
                "width": self.axis.width, "counts": self.counts(), "notes": self.notes,
                "dayList": [d.to_dict() for d in self.day_list], "shades": [s.to_dict() for s in self.shades],
                "dst": [d.to_dict() for d in self.dst], "groups": [g.to_dict() for g in self.groups]}


# --- the axis --------------------------------------------------------------------------------


def day_list(axis: Axis, zone: ZoneInfo) -> list[Day]:
    days = []
    current = axis.start.astimezone(zone).date()
    while (start := local_instant(current, 0, zone)) < axis.end:
        following = current + timedelta(days=1)
        clipped = axis.clip(start, local_instant(following, 0, zone))
        if clipped:
            days.append(Day(current, *clipped, axis.x(clipped[0]), axis.x(clipped[1])))
        current = following
    return days


def shades(axis: Axis, zone: ZoneInfo, days: Iterable[Day]) -> list[Shade]:
    """Weekends whole, and weekday nights from NIGHT_STARTS to NIGHT_ENDS; adjacent spans of a kind merge."""
    spans: list[tuple[str, datetime, datetime]] = []
    for day in days:
        midnight, following = local_instant(day.day, 0, zone), local_instant(day.day + timedelta(days=1), 0, zone)
        if day.day.weekday() >= 5:
            parts = [("weekend", midnight, following)]
        else:
            parts = [("night", midnight, local_instant(day.day, NIGHT_ENDS, zone)),
                     ("night", local_instant(day.day, NIGHT_STARTS, zone), following)]
        for kind, start, end in parts:
            if spans and spans[-1][0] == kind and spans[-1][2] >= start:
                spans[-1] = (kind, spans[-1][1], end)
            else:
                spans.append((kind, start, end))
    found = []
    for kind, start, end in spans:
        if clipped := axis.clip(start, end):
            found.append(Shade(kind, *clipped, axis.x(clipped[0]), axis.x(clipped[1])))
    return found


def dst_changes(axis: Axis, zones: Iterable[ZoneInfo]) -> list[DstChange]:
    """Every change of UTC offset inside the window, per zone, found to the minute."""
    found = []
    for zone in zones:
        step = timedelta(hours=1)
        current = axis.start
        while current < axis.end:
            following = min(current + step, axis.end)
            before, after = current.astimezone(zone).utcoffset(), following.astimezone(zone).utcoffset()
            if before != after and before is not None and after is not None:
                low, high = current, following
                while high - low > timedelta(minutes=1):
                    middle = low + (high - low) / 2
                    if middle.astimezone(zone).utcoffset() == before:
                        low = middle
                    else:
                        high = middle
                at = high.replace(second=0, microsecond=0)
                found.append(DstChange(zone.key, at, after - before, axis.x(at)))
            current = following
    return sorted(found, key=lambda change: (change.at, change.zone))


# --- the rows --------------------------------------------------------------------------------


def target_of(data: Mapping[str, Any]) -> ScaleSetTarget | PoolTarget | None:
    """The target a history entry names, or None for an entry whose target is not readable."""
    if data.get("kind") == "pool" and isinstance(data.get("pool"), str):
        return PoolTarget(data["pool"])
    if data.get("kind") == "vmss" and isinstance(data.get("name"), str):
        return ScaleSetTarget(str(data.get("resourceGroup", "")), data["name"], data.get("subscription") or None)
    return None


def outcomes_by_key(entries: Iterable[Mapping[str, Any]], axis: Axis, now: datetime
                    ) -> dict[str, tuple[Mapping[str, Any], list[Outcome]]]:
    """The history entries of firings inside the past part of the window, one Outcome per firing and rule
    (the newest record; `records` counts retries), per target key with the target as recorded."""
    newest: dict[tuple[str, str, str], tuple[Mapping[str, Any], datetime, int]] = {}
    for entry in entries:
        firing = parse_instant(entry.get("firing"))
        key = entry.get("key")
        if (firing is None or not isinstance(key, str) or entry.get("result") not in OUTCOMES
                or not axis.start <= firing <= min(axis.end, now)):
            continue
        ident = (key, utc_text(firing), str(entry.get("rule")))
        seen = newest.get(ident)
        if seen is None or str(entry.get("at", "")) >= str(seen[0].get("at", "")):
            newest[ident] = (entry, firing, (seen[2] if seen else 0) + 1)
        else:
            newest[ident] = (seen[0], seen[1], seen[2] + 1)
    found: dict[str, tuple[Mapping[str, Any], list[Outcome]]] = {}
    for (key, _, rule), (entry, firing, records) in sorted(newest.items(), key=lambda item: item[1][1]):
        outcome = Outcome(firing, axis.x(firing), str(entry["result"]), str(entry.get("action", "")), rule,
                          str(entry.get("at", "")), _text(entry.get("reason")), _text(entry.get("detail")), records)
        found.setdefault(key, (entry.get("target") or {}, []))[1].append(outcome)
    return found


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def build(document: Document, *, start: datetime, days: int, zone: ZoneInfo, now: datetime,
          history: Iterable[Mapping[str, Any]] = (), notes: Iterable[str] = (),
          width: float = PLOT_WIDTH) -> Timeline:
    """The timeline of `document` over `days` days of `zone` from `start`, with the recorded outcomes."""
    start = start.astimezone(UTC)
    axis = Axis(start, window_end(start, days, zone), width)
    groups: dict[tuple[int, ...], Group] = {}
    rows: dict[str, Row] = {}
    rule_index = {rule.name: rule.index for rule in document.rules}

    def group_for(indices: tuple[int, ...]) -> Group:
        if indices not in groups:
            rules = [document.rules[i] for i in indices]
            groups[indices] = Group(tuple(rule.name for rule in rules), tuple(
                f"{rule.name}: {rule.effect.describe()} at '{rule.schedule.expression}' ({rule.time_zone})"
                for rule in rules))
        return groups[indices]

    for rule in document.rules:
        for spec in rule.targets:
            if spec.key not in rows:
                rows[spec.key] = Row(spec.key, spec.label, spec.kind)
                group_for(tuple(r.index for r in document.by_key[spec.key])).rows.append(rows[spec.key])
    planned = window(document, axis.start - timedelta(seconds=1), axis.end, limit=MAX_FIRINGS_PER_RULE)
    notes = [*notes, *_dense_rules(planned)]
    for entry in planned:
        rows[entry["key"]].marks.extend(
            Mark(at, axis.x(at), firing["action"], firing["rule"], firing["local"], firing["timeZone"],
                 firing.get("dedicated"), firing.get("spot"))
            for firing in entry["firings"] if (at := datetime.fromisoformat(firing["utc"])) >= axis.start)
    for key, (target, outcomes) in outcomes_by_key(history, axis, now).items():
        if key not in rows:
            known = target_of(target)
            rows[key] = Row(key, known.label if known else key, known.kind if known else "vmss", from_history=True)
            fired = sorted({rule_index[o.rule] for o in outcomes if o.rule in rule_index})
            group_for(tuple(fired)).rows.append(rows[key])
        rows[key].outcomes.extend(outcomes)
    for hold in document.holds:
        clipped = axis.clip(axis.start, hold.until)
        if clipped is None:
            continue
        if hold.target.key not in rows:
            rows[hold.target.key] = Row(hold.target.key, hold.target.label, hold.target.kind)
            group_for(()).rows.append(rows[hold.target.key])
        rows[hold.target.key].holds.append(HoldSpan(*clipped, hold.until, axis.x(clipped[0]), axis.x(clipped[1]),
                                                    hold.reason, hold.path))
    for row in rows.values():
        if row.holds:
            row.marks = [_held(mark, row.holds) for mark in row.marks]
    days_in = day_list(axis, zone)
    zones = {zone.key: zone, **{rule.time_zone: rule.zone for rule in document.rules}}
    ordered = sorted(groups.items(), key=lambda item: item[0] or (len(document.rules),))
    return Timeline(axis, zone, days, now, document.source, days_in, shades(axis, zone, days_in),
                    dst_changes(axis, zones.values()), [group for _, group in ordered], list(notes))


def _dense_rules(planned: list[dict[str, Any]]) -> list[str]:
    """A note for each rule that reached MAX_FIRINGS_PER_RULE in the window (and so was cut there)."""
    counts: dict[str, int] = {}
    for entry in planned:
        per_rule: dict[str, int] = {}
        for firing in entry["firings"]:
            per_rule[firing["rule"]] = per_rule.get(firing["rule"], 0) + 1
        for rule, count in per_rule.items():
            counts[rule] = max(counts.get(rule, 0), count)
    return [f"rule {rule} fires {MAX_FIRINGS_PER_RULE} times or more in this window: only its first "
            f"{MAX_FIRINGS_PER_RULE} firings are drawn" for rule, count in counts.items()
            if count >= MAX_FIRINGS_PER_RULE]


def _held(mark: Mark, holds: list[HoldSpan]) -> Mark:
    return replace(mark, held=True) if any(hold.start <= mark.at < hold.until for hold in holds) else mark


def selector_note(document: Document) -> str | None:
    """Tag selectors are shown as one row each: which scale sets they match needs Azure."""
    selectors = [spec for spec in document.selectors if isinstance(spec, TagSelector)]
    if not selectors:
        return None
    return (f"{len(selectors)} tag selector(s) are shown as one row each; the scale sets they matched appear "
            "beside them once the history records them")
