"""What is due, per target, at a given instant; and which firings fall in a window. Pure: no I/O.

Each rule is evaluated on the wall clock of its own time zone with `Schedule.previous_at_or_before`,
so daylight saving time follows schedule.py exactly (a 02:30 rule fires at 03:30 on the spring-forward
day and once, in the first pass, on the fall-back day). A target's *latest firing* is the newest of
its rules' latest firings; it is due when the stored state has not dealt with that instant yet.
Everything between the stored firing and the latest one was missed (the app was down) and is only
recorded, never applied: the newest firing wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from batchk8s.schedules.document import (
    Document,
    Effect,
    Hold,
    Rule,
    ScaleSetTarget,
    TagSelector,
    Target,
    parse_instant,
)

STATUS_CLAIMED, STATUS_DONE, STATUS_FAILED = "claimed", "done", "failed"
# An instance that claimed a firing and then vanished (host recycled mid-tick) is presumed dead after this.
CLAIM_LEASE = timedelta(minutes=5)
# A failed firing is retried with exponential backoff (1, 2, 4, 8 minutes), then left for the next firing.
MAX_ATTEMPTS = 5
RETRY_BASE = timedelta(minutes=1)
# Missed firings listed in history per catch-up (the total is always counted, up to MISSED_SCAN_LIMIT per rule).
MISSED_LISTED = 20
MISSED_SCAN_LIMIT = 20000
HOLD_TAG = "batchk8s-hold-until"


@dataclass(frozen=True)
class TargetState:
    """What the state store remembers about one target: the newest firing it dealt with and how."""

    firing: datetime | None = None
    status: str = STATUS_DONE
    rule: str | None = None
    action: str | None = None
    attempts: int = 0
    retry_at: datetime | None = None
    claimed_by: str | None = None
    claimed_at: datetime | None = None
    claimed_until: datetime | None = None  # when the claim expires; claims written before it was kept: at + lease

    @property
    def claim_expires(self) -> datetime | None:
        if self.claimed_until is not None:
            return self.claimed_until
        return self.claimed_at + CLAIM_LEASE if self.claimed_at is not None else None


@dataclass(frozen=True)
class Firing:
    at: datetime  # aware, on the rule's wall clock
    rule: Rule

    @property
    def utc(self) -> datetime:
        return self.at.astimezone(UTC)

    def to_dict(self) -> dict[str, Any]:
        return {"utc": self.utc.isoformat(), "local": self.at.isoformat(), "timeZone": self.rule.time_zone,
                "rule": self.rule.name, **self.rule.effect.to_dict()}


@dataclass(frozen=True)
class Decision:
    """The verdict for one target. `kind`: idle (no rule has fired yet), up-to-date, due, in-progress
    (another instance holds a live claim) or waiting-retry (a failed attempt backs off)."""

    target: Target
    kind: str
    firings: tuple[Firing, ...] = ()  # every rule firing at the latest instant
    missed: tuple[Firing, ...] = ()  # the newest MISSED_LISTED of the firings skipped by catch-up
    missed_total: int = 0
    retry: bool = False
    state: TargetState = field(default_factory=TargetState)

    @property
    def firing(self) -> Firing | None:
        return self.firings[0] if self.firings else None

    @property
    def effects(self) -> set[Effect]:
        return {firing.rule.effect for firing in self.firings}

    @property
    def conflict(self) -> bool:
        return len(self.effects) > 1


def latest_by_rule(rules: Iterable[Rule], now: datetime) -> dict[int, datetime | None]:
    """Each rule's latest firing at or before `now`, evaluated once per tick (rules share targets)."""
    latest: dict[int, datetime | None] = {}
    zoned: dict[str, datetime] = {}
    for rule in rules:
        local = zoned.get(rule.time_zone)
        if local is None:
            local = zoned[rule.time_zone] = now.astimezone(rule.zone)
        latest[rule.index] = rule.schedule.previous_at_or_before(local)
    return latest


def decide(target: Target, rules: Iterable[Rule], latest: Mapping[int, datetime | None], state: TargetState | None,
           now: datetime) -> Decision:
    """Whether `target` has a firing to act on now, given the rules that apply to it and its state."""
    state = state or TargetState()
    fired = [Firing(at, rule) for rule in rules if (at := latest.get(rule.index)) is not None]
    if not fired:
        return Decision(target, "idle", state=state)
    newest = max(firing.utc for firing in fired)
    firings = tuple(sorted((f for f in fired if f.utc == newest), key=lambda f: f.rule.index))
    if state.firing is not None and state.firing >= newest:
        return Decision(target, _kind_for_same_firing(state, now) if state.firing == newest else "up-to-date",
                        firings, retry=True, state=state)
    missed: tuple[Firing, ...] = ()
    total = 0
    if state.firing is not None:
        missed, total = firings_between((f.rule for f in fired), state.firing, newest)
    return Decision(target, "due", firings, missed, total, state=state)


def _kind_for_same_firing(state: TargetState, now: datetime) -> str:
    if state.status == STATUS_CLAIMED:
        expires = state.claim_expires
        return "in-progress" if expires is not None and now < expires else "due"
    if state.status == STATUS_FAILED and state.attempts < MAX_ATTEMPTS:
        return "due" if state.retry_at is None or now >= state.retry_at else "waiting-retry"
    return "up-to-date"


def retry_after(attempts: int, now: datetime) -> datetime | None:
    """When a firing that failed `attempts` times is tried again, or None once it is given up."""
    if attempts >= MAX_ATTEMPTS:
        return None
    return now + RETRY_BASE * (2 ** (attempts - 1))


def firings_between(rules: Iterable[Rule], after: datetime, before: datetime) -> tuple[tuple[Firing, ...], int]:
    """Firings strictly between `after` and `before` (UTC instants): the newest MISSED_LISTED, and how many."""
    found: list[Firing] = []
    for rule in rules:
        current = after.astimezone(rule.zone)
        for _ in range(MISSED_SCAN_LIMIT):
            following = rule.schedule.next_after(current)
            if following is None or following.astimezone(UTC) >= before:
                break
            found.append(Firing(following, rule))
            current = following
    found.sort(key=lambda firing: (firing.utc, firing.rule.index))
    return tuple(found[-MISSED_LISTED:]), len(found)


def window(document: Document, start: datetime, end: datetime, limit: int = 10000) -> list[dict[str, Any]]:
    """Every firing in (start, end] per target as written in the document (selectors unresolved),
    in document order; at most `limit` firings per rule."""
    per_target: dict[str, dict[str, Any]] = {}
    for rule in document.rules:
        times = []
        current = start.astimezone(rule.zone)
        for _ in range(limit):
            following = rule.schedule.next_after(current)
            if following is None or following.astimezone(UTC) > end:
                break
            times.append(Firing(following, rule).to_dict())
            current = following
        for spec in rule.targets:
            entry = per_target.setdefault(spec.key, {"key": spec.key, "target": spec.to_dict(), "label": spec.label,
                                                     "firings": []})
            entry["firings"].extend(times)
    for entry in per_target.values():
        entry["firings"].sort(key=lambda firing: firing["utc"])
    return list(per_target.values())


def format_firing(entry: dict[str, Any]) -> str:
    """One line for a firing dict (as `Firing.to_dict` makes it): UTC, local time and zone, effect, rule."""
    effect = (f"resize {entry['dedicated']} dedicated + {entry['spot']} spot" if entry.get("action") == "resize"
              else str(entry.get("action")))
    return f"{entry['utc']}  {entry['local']} ({entry['timeZone']})  {effect}  [{entry['rule']}]"


def format_hold(entry: dict[str, Any]) -> str:
    """One line for a hold dict (as `Hold.to_dict` makes it), worded like the target lines of a plan."""
    reason = f" ({entry['reason']})" if entry.get("reason") else ""
    return f"{entry['label']} held until {entry['until']}{reason}"


def rules_for(target: ScaleSetTarget, tags: Mapping[str, str] | None, document: Document) -> list[Rule]:
    """Rules naming the scale set directly or selecting it by tag (tags None: not listed, direct rules only)."""
    rules = list(document.by_key.get(target.key, ()))
    if tags is not None:
        for selector in document.selectors:
            if selector.matches(target.resource_group, dict(tags), target.subscription):
                rules.extend(rule for rule in document.by_key[selector.key] if rule not in rules)
    return sorted(rules, key=lambda rule: rule.index)


@dataclass(frozen=True)
class ActiveHold:
    until: datetime
    source: str
    reason: str | None = None

    def describe(self) -> str:
        why = f": {self.reason}" if self.reason else ""
        return f"held until {self.until.isoformat()} ({self.source}){why}"


def active_hold(target: Target, tags: Mapping[str, str] | None, holds: Iterable[Hold],
                now: datetime) -> ActiveHold | None:
    """The hold in force on `target` at `now`, if any (the one that lasts longest).

    An unreadable hold tag holds indefinitely: someone meant to protect the target, and acting on it
    anyway is worse than a skip that the history reports until the tag is fixed.
    """
    found: list[ActiveHold] = []
    for hold in holds:
        spec = hold.target
        hit = spec.key == target.key or (isinstance(spec, TagSelector) and isinstance(target, ScaleSetTarget)
                                         and tags is not None
                                         and spec.matches(target.resource_group, dict(tags), target.subscription))
        if hit and hold.until > now:
            found.append(ActiveHold(hold.until, hold.path, hold.reason))
    for name, value in (tags or {}).items():
        if name.lower() != HOLD_TAG:
            continue
        until = parse_instant(value)
        if until is None:
            found.append(ActiveHold(datetime.max.replace(tzinfo=UTC), f"tag {name}",
                                    f"tag value {value!r} is not an ISO time; fix or remove the tag"))
        elif until > now:
            found.append(ActiveHold(until, f"tag {name}"))
    return max(found, key=lambda hold: hold.until) if found else None
