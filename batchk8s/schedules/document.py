"""The schedule document: parsed into typed rules and validated as a whole.

The document is either a JSON list of rules or an object `{"rules": [...], "holds": [...]}`. Every
problem is collected with the JSON path of the value at fault (`$.rules[2].timeZone`), so one run of
`schedules validate` shows everything to fix, and the reconcile timer never acts on half a document.
Unknown keys are problems too: a misspelt `timezone` would otherwise silently mean UTC.

This module is pure (no I/O): parsing a document twice gives the same rules, which lets the
reconcile tick reuse a parse for as long as the document text does not change.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import combinations
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from batchk8s import caches
from batchk8s.errors import InputError
from batchk8s.ncrontab import Schedule, ScheduleError, parse
from batchk8s.problems import Problems, pattern_problem, whole_number_rule
from batchk8s.settings import BATCH_ID, GUID, RESOURCE_GROUP, VMSS_NAME

ACTIONS = ("start", "deallocate", "resize")
MAX_NODES = 1000
MAX_TAG_NAME = 512
MAX_TAG_VALUE = 256
TAG_NAME_FORBIDDEN = set("<>%&\\?/")
# Rules in different zones are compared by listing their firings over this horizon (at most
# CONFLICT_SCAN_LIMIT each); rules in the same zone are compared exactly, on their field values.
CONFLICT_HORIZON = timedelta(days=366)
CONFLICT_SCAN_LIMIT = 5000

RULE_KEYS = {"name", "schedule", "timeZone", "action", "dedicated", "spot", "targets"}
HOLD_KEYS = {"until", "reason"}
SCALE_SET_KEYS = {"resourceGroup", "name", "subscription"}
SELECTOR_KEYS = {"tag", "value", "resourceGroup", "subscription"}
POOL_KEYS = {"pool"}


class DocumentError(InputError):
    """The schedule document is invalid; `details` lists every problem with its JSON path."""

    code = "InvalidScheduleDocument"


# --- targets ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScaleSetTarget:
    """One scale set, in AZURE_SUBSCRIPTION_ID or (`subscription`) another. Azure names are
    case-insensitive, so the key is lowercased; a subscription named explicitly is part of it."""

    resource_group: str
    name: str
    subscription: str | None = None
    kind = "vmss"

    @property
    def key(self) -> str:
        where = f"{self.subscription.lower()}/" if self.subscription else ""
        return f"vmss/{where}{self.resource_group.lower()}/{self.name.lower()}"

    @property
    def label(self) -> str:
        where = f" (subscription {self.subscription})" if self.subscription else ""
        return f"scale set {self.resource_group}/{self.name}{where}"

    def to_dict(self) -> dict[str, str]:
        body = {"kind": self.kind, "resourceGroup": self.resource_group, "name": self.name}
        if self.subscription:
            body["subscription"] = self.subscription
        return body


@dataclass(frozen=True)
class PoolTarget:
    """One Batch pool (ids are case-insensitive)."""

    pool_id: str
    kind = "pool"

    @property
    def key(self) -> str:
        return f"pool/{self.pool_id.lower()}"

    @property
    def label(self) -> str:
        return f"pool {self.pool_id}"

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "pool": self.pool_id}


@dataclass(frozen=True)
class TagSelector:
    """Every scale set carrying tag `tag` with value `value`, in `resource_group` or the whole
    subscription: AZURE_SUBSCRIPTION_ID, or each of `subscriptions` when the selector lists some.

    Azure compares tag names case-insensitively and values exactly; so does `matches`.
    """

    tag: str
    value: str
    resource_group: str | None = None
    subscriptions: tuple[str, ...] = ()
    kind = "tag"

    @property
    def key(self) -> str:
        scope = (self.resource_group or "*").lower()
        where = ",".join(self.subscriptions) + "/" if self.subscriptions else ""
        return f"tag/{where}{scope}/{self.tag.lower()}={self.value}"

    @property
    def label(self) -> str:
        scope = f" in {self.resource_group}" if self.resource_group else ""
        if self.subscriptions:
            scope += f" of subscription{'s' if len(self.subscriptions) > 1 else ''} {', '.join(self.subscriptions)}"
        return f"scale sets tagged {self.tag}={self.value}{scope}"

    def matches(self, resource_group: str, tags: dict[str, str], subscription: str | None = None) -> bool:
        """Whether a scale set in `resource_group` of `subscription` (None: the default) is selected."""
        if (subscription.lower() if subscription else None) not in (self.subscriptions or (None,)):
            return False
        if self.resource_group and self.resource_group.lower() != resource_group.lower():
            return False
        wanted = self.tag.lower()
        return any(name.lower() == wanted and value == self.value for name, value in tags.items())

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": self.kind, "tag": self.tag, "value": self.value}
        if self.resource_group:
            body["resourceGroup"] = self.resource_group
        if self.subscriptions:
            body["subscription"] = list(self.subscriptions)
        return body


Target = ScaleSetTarget | PoolTarget
TargetSpec = ScaleSetTarget | PoolTarget | TagSelector


# --- rules and holds -------------------------------------------------------------------------


@dataclass(frozen=True)
class Effect:
    """What a firing does to a target; two rules conflict when they fire together with different effects."""

    action: str
    dedicated: int | None = None
    spot: int | None = None

    def describe(self) -> str:
        if self.action == "resize":
            return f"resize to {self.dedicated} dedicated + {self.spot} spot"
        return self.action

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"action": self.action}
        if self.action == "resize":
            body.update(dedicated=self.dedicated, spot=self.spot)
        return body


@dataclass(frozen=True, eq=False)
class Rule:
    index: int
    path: str
    name: str
    schedule: Schedule
    zone: ZoneInfo
    effect: Effect
    targets: tuple[TargetSpec, ...]

    @property
    def time_zone(self) -> str:
        return self.zone.key


@dataclass(frozen=True)
class Hold:
    """Leave `target` alone until `until` (UTC); firings meanwhile are skipped, not postponed."""

    path: str
    target: TargetSpec
    until: datetime
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target.to_dict(), "label": self.target.label, "until": self.until.isoformat(),
                "reason": self.reason}


@dataclass(frozen=True)
class Document:
    rules: tuple[Rule, ...]
    holds: tuple[Hold, ...] = ()
    source: str = "document"
    by_key: dict[str, tuple[Rule, ...]] = field(default_factory=dict, compare=False, repr=False)

    @property
    def explicit_targets(self) -> list[Target]:
        """Scale sets and pools named directly, each once, in document order."""
        seen: dict[str, Target] = {}
        for rule in self.rules:
            for spec in rule.targets:
                if not isinstance(spec, TagSelector):
                    seen.setdefault(spec.key, spec)
        return list(seen.values())

    @property
    def selectors(self) -> list[TagSelector]:
        seen: dict[str, TagSelector] = {}
        for rule in self.rules:
            for spec in rule.targets:
                if isinstance(spec, TagSelector):
                    seen.setdefault(spec.key, spec)
        return list(seen.values())

    def summary(self) -> dict[str, Any]:
        return {"source": self.source, "rules": len(self.rules), "explicitTargets": len(self.explicit_targets),
                "tagSelectors": len(self.selectors), "holds": len(self.holds)}


# --- parsing ---------------------------------------------------------------------------------


def parse_text(text: str, *, now: datetime, default_resource_group: str | None = None,
               source: str = "document") -> Document:
    """Parse and validate a JSON document, raising DocumentError with every problem."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise DocumentError.from_problems(
            [{"field": "$", "message": f"not valid JSON ({getattr(exc, 'msg', exc)} at line "
                                       f"{getattr(exc, 'lineno', '?')} column {getattr(exc, 'colno', '?')})"}],
            f"invalid schedule document ({source})") from None
    return parse_document(data, now=now, default_resource_group=default_resource_group, source=source)


def parse_cached(text: str, *, now: datetime, default_resource_group: str | None = None,
                 source: str = "document") -> Document:
    """`parse_text`, reusing the result while the text is unchanged (re-checked once a UTC day, since the
    cross-zone conflict scan looks a year ahead of `now`). Invalid documents are not cached."""
    return _parse_cached(text, default_resource_group, source, now.astimezone(UTC).date().isoformat())


@caches.register
@lru_cache(maxsize=8)
def _parse_cached(text: str, default_resource_group: str | None, source: str, day: str) -> Document:
    now = datetime.fromisoformat(day).replace(tzinfo=UTC)
    return parse_text(text, now=now, default_resource_group=default_resource_group, source=source)


def parse_document(data: Any, *, now: datetime, default_resource_group: str | None = None,
                   source: str = "document") -> Document:
    """Validate a decoded document into a Document, or raise DocumentError listing every problem."""
    problems = Problems()
    rules_data, holds_data, prefix = _split_top(data, problems)
    rules = [rule for index, item in enumerate(rules_data)
             if (rule := _parse_rule(item, index, f"{prefix}[{index}]", default_resource_group, problems))]
    _check_names(rules_data, prefix, problems)
    holds = [hold for index, item in enumerate(holds_data)
             if (hold := _parse_hold(item, f"$.holds[{index}]", default_resource_group, problems))]
    by_key = _rules_by_key(rules)
    for path, message in find_conflicts(by_key, now):  # among the rules that are valid on their own
        problems.add(path, message)
    problems.raise_if_any(f"invalid schedule document ({source}), {len(problems)} problem(s)", DocumentError)
    return Document(tuple(rules), tuple(holds), source, by_key)


def _split_top(data: Any, problems: Problems) -> tuple[list[Any], list[Any], str]:
    if isinstance(data, list):
        return data, [], "$"
    if not isinstance(data, dict):
        problems.add("$", "must be a list of rules or an object with 'rules' (and optionally 'holds')")
        return [], [], "$.rules"
    problems.unknown_fields(data, {"rules", "holds"}, "$")
    rules = data.get("rules")
    if not isinstance(rules, list):
        problems.add("$.rules", "is required: a list of rules")
        rules = []
    holds = data.get("holds", [])
    if not isinstance(holds, list):
        problems.add("$.holds", "must be a list of holds")
        holds = []
    return rules, holds, "$.rules"


def _parse_rule(item: Any, index: int, path: str, default_rg: str | None, problems: Problems) -> Rule | None:
    if not isinstance(item, dict):
        problems.add(path, "must be an object with schedule, action and targets")
        return None
    before = len(problems)
    problems.unknown_fields(item, RULE_KEYS, path)
    name = item.get("name", f"rules[{index}]")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 100:
        problems.add(f"{path}.name", "must be a non-empty string of at most 100 characters")
    schedule = _parse_schedule(item.get("schedule"), f"{path}.schedule", problems)
    zone = parse_zone(item.get("timeZone", "UTC"), f"{path}.timeZone", problems)
    effect = _parse_effect(item, path, problems)
    targets = _parse_targets(item.get("targets"), f"{path}.targets", effect, default_rg, problems)
    if len(problems) > before or schedule is None or zone is None or effect is None:
        return None
    return Rule(index, path, name.strip(), schedule, zone, effect, targets)


def _parse_schedule(value: Any, path: str, problems: Problems) -> Schedule | None:
    if not isinstance(value, str) or not value.strip():
        problems.add(path, "is required: an NCRONTAB expression such as '0 0 8 * * Mon-Fri'")
        return None
    try:
        schedule = parse(value.strip())
    except ScheduleError as exc:
        problems.add(path, f"{exc} (field: {exc.field})")
        return None
    if schedule.never_fires:
        problems.add(path, f"'{value}' never fires (no such date, e.g. 30 February)")
        return None
    return schedule


def parse_zone(value: Any, path: str, problems: Problems) -> ZoneInfo | None:
    if not isinstance(value, str) or not value.strip():
        problems.add(path, "must be an IANA time zone name such as 'Europe/Berlin'")
        return None
    try:
        return _zone(value.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        problems.add(path, f"'{value}' is not an IANA time zone name (e.g. Europe/Berlin, America/New_York)")
        return None


@caches.register
@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _parse_effect(item: dict[str, Any], path: str, problems: Problems) -> Effect | None:
    action = item.get("action")
    if action not in ACTIONS:
        problems.add(f"{path}.action", f"must be one of {', '.join(ACTIONS)}, not {action!r}")
        return None
    if action != "resize":
        for key in ("dedicated", "spot"):
            if key in item:
                problems.add(f"{path}.{key}", f"only 'resize' rules take node counts, not '{action}'")
        return Effect(action)
    if "dedicated" not in item:
        problems.add(f"{path}.dedicated", f"is required for resize and {whole_number_rule(0, MAX_NODES)}")
    dedicated = problems.whole_number(f"{path}.dedicated", item["dedicated"], 0, MAX_NODES) \
        if "dedicated" in item else None
    spot = problems.whole_number(f"{path}.spot", item.get("spot", 0), 0, MAX_NODES)
    if dedicated is None or spot is None:
        return None
    return Effect("resize", dedicated, spot)


def _parse_targets(value: Any, path: str, effect: Effect | None, default_rg: str | None,
                   problems: Problems) -> tuple[TargetSpec, ...]:
    if not isinstance(value, list) or not value:
        problems.add(path, "must be a non-empty list of targets")
        return ()
    targets: dict[str, TargetSpec] = {}
    for index, item in enumerate(value):
        spec = parse_target(item, f"{path}[{index}]", default_rg, problems)
        if spec is None:
            continue
        if effect is not None:
            _check_compatible(spec, effect, f"{path}[{index}]", problems)
        targets.setdefault(spec.key, spec)
    return tuple(targets.values())


def _check_compatible(spec: TargetSpec, effect: Effect, path: str, problems: Problems) -> None:
    if effect.action == "resize" and not isinstance(spec, PoolTarget):
        problems.add(path, "a 'resize' rule targets Batch pools ({\"pool\": ID}); scale sets are started or "
                           "deallocated")
    elif effect.action != "resize" and isinstance(spec, PoolTarget):
        problems.add(path, f"pools cannot '{effect.action}': use action 'resize' with dedicated/spot node counts")


def parse_target(item: Any, path: str, default_rg: str | None, problems: Problems,
                 extra_keys: Iterable[str] = ()) -> TargetSpec | None:
    """One target object: {resourceGroup?, name} | {tag, value, resourceGroup?} | {pool}."""
    if not isinstance(item, dict):
        problems.add(path, "must be an object: {\"resourceGroup\", \"name\"}, {\"tag\", \"value\"} or {\"pool\"}")
        return None
    before = len(problems)
    if "pool" in item:
        problems.unknown_fields(item, POOL_KEYS | set(extra_keys), path)
        pool = problems.matches(f"{path}.pool", item["pool"], BATCH_ID,
                                "must be a Batch pool id: 1-64 letters, digits, '-' or '_'")
        return PoolTarget(pool) if pool is not None and len(problems) == before else None
    if "tag" in item or "value" in item:
        problems.unknown_fields(item, SELECTOR_KEYS | set(extra_keys), path)
        tag, value = item.get("tag"), item.get("value")
        if not isinstance(tag, str) or not tag or len(tag) > MAX_TAG_NAME or set(tag) & TAG_NAME_FORBIDDEN:
            problems.add(f"{path}.tag", f"must be a tag name of 1-{MAX_TAG_NAME} characters without < > % & \\ ? /")
        if not isinstance(value, str) or len(value) > MAX_TAG_VALUE:
            problems.add(f"{path}.value", f"must be a tag value (a string of at most {MAX_TAG_VALUE} characters)")
        group = _resource_group(item, path, None, problems) if "resourceGroup" in item else None
        subscriptions = _subscriptions(item, path, problems, several=True)
        return TagSelector(tag, value, group, subscriptions) if len(problems) == before else None
    if "name" in item:
        problems.unknown_fields(item, SCALE_SET_KEYS | set(extra_keys), path)
        name = problems.matches(f"{path}.name", item["name"], VMSS_NAME,
                                "must be a scale set name: 1-64 letters, digits, '-', '_' or '.'")
        group = _resource_group(item, path, default_rg, problems)
        subscription = _subscriptions(item, path, problems, several=False)
        return ScaleSetTarget(group, name, subscription[0] if subscription else None) \
            if len(problems) == before and group and name else None
    problems.add(path, "needs 'name' (scale set), 'tag' and 'value' (tag selector) or 'pool' (Batch pool)")
    return None


def _subscriptions(item: dict[str, Any], path: str, problems: Problems, *, several: bool) -> tuple[str, ...]:
    """`subscription`: a GUID (or, for a tag selector, a list of them), lowercased; () when absent."""
    value = item.get("subscription")
    if value is None:
        return ()
    values = value if several and isinstance(value, list) else [value]
    rule = "must be a subscription id (GUID)" + (" or a list of them" if several else "")
    found = [problem for v in values if (problem := pattern_problem(v, GUID, rule))]
    if found or not values:
        problems.add(f"{path}.subscription", found[0] if found else f"{rule}, not an empty list")
        return ()
    return tuple(dict.fromkeys(v.lower() for v in values))


def _resource_group(item: dict[str, Any], path: str, default: str | None, problems: Problems) -> str | None:
    group = item.get("resourceGroup", default)
    if group is None:
        problems.add(f"{path}.resourceGroup", "is required (AZURE_RES_GROUP_NAME is not set to default it)")
        return None
    return problems.matches(f"{path}.resourceGroup", group, RESOURCE_GROUP, "must be a resource group name: "
                            "1-90 letters, digits, '-', '_', '.', '(' or ')', not ending in '.'")


def _check_names(items: list[Any], prefix: str, problems: Problems) -> None:
    """Duplicate names among every rule that has one, valid or not: a rule with other errors still
    takes its name, and the author fixes both at once."""
    first: dict[str, str] = {}
    for index, item in enumerate(items):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name.strip():
            continue
        path = f"{prefix}[{index}]"
        other = first.setdefault(name.strip().lower(), path)
        if other != path:
            problems.add(f"{path}.name", f"'{name.strip()}' is also the name of {other}; names must be unique")


def _parse_hold(item: Any, path: str, default_rg: str | None, problems: Problems) -> Hold | None:
    before = len(problems)
    target = parse_target(item, path, default_rg, problems, extra_keys=HOLD_KEYS)
    if not isinstance(item, dict):
        return None
    raw_until = item.get("until")
    until = parse_instant(raw_until)
    if until is None:
        example = "an ISO 8601 time such as 2025-06-01T18:00:00+02:00 (no offset means UTC)"
        if raw_until is None:
            problems.add(f"{path}.until", f"is required: {example}")
        elif not isinstance(raw_until, str):
            problems.add(f"{path}.until", f"must be a string, {example}, not {type(raw_until).__name__} "
                                          f"{raw_until!r}")
        else:
            problems.add(f"{path}.until", f"{raw_until!r} is not {example}")
    reason = item.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > 500):
        problems.add(f"{path}.reason", "must be a string of at most 500 characters")
    if len(problems) > before or target is None or until is None:
        return None
    return Hold(path, target, until, reason)


def parse_instant(value: Any) -> datetime | None:
    """An ISO 8601 time as an aware UTC datetime (no offset means UTC), or None when it is not one."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


# --- conflicts -------------------------------------------------------------------------------


def _rules_by_key(rules: list[Rule]) -> dict[str, tuple[Rule, ...]]:
    grouped: dict[str, list[Rule]] = {}
    for rule in rules:
        for spec in rule.targets:
            grouped.setdefault(spec.key, []).append(rule)
    return {key: tuple(group) for key, group in grouped.items()}


def find_conflicts(by_key: dict[str, tuple[Rule, ...]], now: datetime) -> list[tuple[str, str]]:
    """(path, message) for each pair of rules that fire at the same instant on a common target with
    different effects. A pair is reported once, on the later rule, naming every target they share."""
    shared: dict[tuple[int, int], list[str]] = {}
    pairs: dict[tuple[int, int], tuple[Rule, Rule]] = {}
    labels: dict[str, str] = {}
    for key, rules in by_key.items():
        for first, second in combinations(rules, 2):
            if first.effect != second.effect:
                ids = (first.index, second.index)
                pairs[ids] = (first, second)
                shared.setdefault(ids, []).append(key)
        for rule in rules:
            labels.update({spec.key: spec.label for spec in rule.targets})
    found = []
    for ids in sorted(pairs):
        first, second = pairs[ids]
        instant = first_common_firing(first, second, now)
        if instant is None:
            continue
        names = ", ".join(labels[key] for key in shared[ids])
        found.append((second.path, f"fires at the same instant as {first.path} ('{first.name}') on {names} with a "
                                   f"different action ({second.effect.describe()} vs {first.effect.describe()}), "
                                   f"e.g. at {instant.astimezone(UTC).isoformat()}"))
    return found


def first_common_firing(first: Rule, second: Rule, now: datetime) -> datetime | None:
    """An instant at which both rules fire, or None. Rules in the same zone are compared exactly: their
    wall-clock value sets intersect, or a firing in the hour skipped at spring-forward moves onto the
    other rule's (02:30 fires at 03:30, with a 03:30 rule). Rules in different zones are compared over
    the next CONFLICT_HORIZON."""
    if first.time_zone == second.time_zone:
        common = _intersection(first.schedule, second.schedule)
        if common is not None:
            return common.next_after(now.astimezone(first.zone))
        return _common_on_gap_days(first, second, now)
    return _common(first, second, now, now.astimezone(UTC) + CONFLICT_HORIZON)


def _common(first: Rule, second: Rule, start: datetime, end: datetime) -> datetime | None:
    instants = _instants(first, start, end)
    for instant in _instants(second, start, end):
        if instant in instants:
            return instant
    return None


def _common_on_gap_days(first: Rule, second: Rule, now: datetime) -> datetime | None:
    """A shared instant that exists only through the spring-forward shift of either rule's firing."""
    for day_start, skipped_hours in _gap_days(first.time_zone, now.astimezone(UTC).date().isoformat()):
        if skipped_hours & (set(first.schedule.hours) | set(second.schedule.hours)):
            found = _common(first, second, day_start, day_start + timedelta(days=2))
            if found is not None:
                return found
    return None


@caches.register
@lru_cache(maxsize=64)
def _gap_days(zone_name: str, day: str) -> tuple[tuple[datetime, frozenset[int]], ...]:
    """For each day in the CONFLICT_HORIZON after `day` on which the zone's clocks jump forward: the UTC
    instant of the local midnight before it (a window of two days holds the jump) and the local hours
    with a skipped minute (a wall time that does not survive a round trip through UTC)."""
    zone = _zone(zone_name)
    first_day = datetime.fromisoformat(day)
    found = []
    for offset in range(CONFLICT_HORIZON.days + 1):
        midnight = (first_day + timedelta(days=offset)).replace(tzinfo=zone)
        following = midnight + timedelta(days=1)
        if (following.replace(hour=12).utcoffset() or timedelta()) <= (midnight.replace(hour=12).utcoffset()
                                                                       or timedelta()):
            continue
        skipped = {wall.hour for minutes in range(2 * 24 * 60)
                   if (wall := midnight + timedelta(minutes=minutes)).astimezone(UTC).astimezone(zone)
                   .replace(tzinfo=None) != wall.replace(tzinfo=None)}
        found.append((midnight.astimezone(UTC) - timedelta(seconds=1), frozenset(skipped)))
    return tuple(found)


def _instants(rule: Rule, now: datetime, end: datetime) -> dict[datetime, None]:
    found: dict[datetime, None] = {}
    current = now.astimezone(rule.zone)
    for _ in range(CONFLICT_SCAN_LIMIT):
        following = rule.schedule.next_after(current)
        if following is None or following.astimezone(UTC) > end:
            break
        found[following.astimezone(UTC)] = None
        current = following
    return found


def _intersection(first: Schedule, second: Schedule) -> Schedule | None:
    values = []
    for attribute in ("seconds", "minutes", "hours", "days", "months", "days_of_week"):
        common = sorted(set(getattr(first, attribute)) & set(getattr(second, attribute)))
        if not common:
            return None
        values.append(",".join(map(str, common)))
    schedule = parse(" ".join(values))
    return None if schedule.never_fires else schedule
