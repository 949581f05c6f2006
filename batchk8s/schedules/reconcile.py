"""One reconcile tick: resolve targets, decide what is due, claim it, act, record the outcome.

Order of a tick, and why:

1. Load and validate the whole document; an invalid one raises before anything is read or changed.
2. Resolve targets: scale sets and pools named directly, plus every scale set a tag selector matches
   (one paged listing per resource group in scope, or one for the subscription).
3. Read every target's state (one listing with each blob's summary metadata: the only state read)
   and decide per target (pure).
4. For each due target: a hold or a conflict is recorded as a skip/failure without acting; anything
   else is *claimed* with a write conditioned on the listed ETag, so of two instances running the
   same tick exactly one proceeds. Then the winners act, grouped per action (scale sets concurrently
   through vmss.apply_action, pools through the Batch engine), each outcome is written back, and
   every event is appended to the target's history blob (no read needed).
5. Scale set operations are followed to their end within the tick's budget (timer_budget.py); those
   still running are recorded and reported by the next tick (followup.py), which picks up whatever an
   earlier tick or the vmss_schedule timer left running before it acts.

One target failing never stops the others: every step is per target, and a failure is recorded on
that target with a retry backoff (planner.MAX_ATTEMPTS) rather than raised.

Claims are fenced by time. A claim records when it expires (`claimedUntil`, the tick's instant plus
the lease); after that another instance may claim the same firing. So the winners act under a
deadline that ends a margin before their claim does (and never after the tick's own deadline): every
Azure call carries it, and a call that would start later is not sent. When too little of the claim is
left to act at all (the listing or the claims were slow), the firing is recorded as failed with
`claim-expiring` and retried, instead of acting on a claim that may already be someone else's.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from batchk8s import clock
from batchk8s.deadline import Deadline
from batchk8s.errors import BatchK8sError, ConflictError, NotFoundError
from batchk8s.schedules.document import Document, PoolTarget, Rule, ScaleSetTarget, Target
from batchk8s.schedules.followup import (
    Followups,
    announce,
    ended_events,
    event_of,
    is_pending,
    pending_name,
    result_of,
)
from batchk8s.schedules.planner import (
    CLAIM_LEASE,
    MAX_ATTEMPTS,
    STATUS_CLAIMED,
    STATUS_DONE,
    STATUS_FAILED,
    Decision,
    Firing,
    TargetState,
    active_hold,
    decide,
    latest_by_rule,
    retry_after,
    rules_for,
)
from batchk8s.schedules.service import load_document
from batchk8s.schedules.state import StateStore, Stored
from batchk8s.settings import Settings
from batchk8s.timer_budget import tick_budget

log = logging.getLogger("batchk8s.schedules")

WRITE_WORKERS = 8  # below the storage client's connection pool (10 per host)
# Acting stops this long before the claim expires (a tenth of the lease when that is shorter), and is not
# started with less than this left.
FENCE_MARGIN = timedelta(seconds=30)
T = TypeVar("T")
R = TypeVar("R")

_instance_id: str | None = None


def instance_id() -> str:
    """Who holds a claim: host, process and a random suffix (two workers on one host differ)."""
    global _instance_id
    if _instance_id is None:
        _instance_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    return _instance_id


def _fan_out(work: Callable[[T], R], items: list[T]) -> list[R]:
    if len(items) <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(WRITE_WORKERS, len(items)), thread_name_prefix="schedules") as pool:
        return list(pool.map(work, items))


# --- target resolution -----------------------------------------------------------------------


@dataclass
class Resolved:
    """Every concrete target with the rules that apply to it; `tags` None when not listed this tick."""

    rules: dict[str, list[Rule]] = field(default_factory=dict)
    targets: dict[str, Target] = field(default_factory=dict)
    tags: dict[str, dict[str, str] | None] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    listings: int = 0


def resolve_targets(settings: Settings, document: Document) -> Resolved:
    """Direct targets, plus the scale sets each tag selector matches: per subscription in scope, one
    listing per resource group, or one for the whole subscription when a selector spans it."""
    resolved = Resolved()
    for target in document.explicit_targets:
        resolved.targets[target.key] = target
        resolved.rules[target.key] = list(document.by_key[target.key])
        resolved.tags[target.key] = None
    selectors = document.selectors
    if not selectors:
        return resolved
    groups: dict[str | None, set[str | None]] = {}
    for selector in selectors:
        for subscription in selector.subscriptions or (None,):
            groups.setdefault(subscription, set()).add(selector.resource_group)
    scopes = [(sub, group) for sub, wanted in groups.items()
              for group in ([None] if None in wanted else sorted(g for g in wanted if g))]
    for (sub, scope), listing in zip(scopes, _fan_out(lambda s: _list(settings, s[1], s[0]), scopes), strict=True):
        resolved.listings += 1
        if isinstance(listing, BatchK8sError):
            where = (scope or "subscription") + (f" of subscription {sub}" if sub else "")
            resolved.errors.append({"scope": where, "code": listing.code, "message": listing.message})
            continue
        for info in listing:
            target = ScaleSetTarget(info.ref.resource_group, info.ref.name, sub)
            rules = rules_for(target, info.tags, document)
            resolved.tags[target.key] = dict(info.tags)
            if rules:
                resolved.targets[target.key] = target
                resolved.rules[target.key] = rules
    return resolved


def _list(settings: Settings, resource_group: str | None, subscription: str | None = None
          ) -> list[Any] | BatchK8sError:
    from batchk8s.vmss import list_scale_sets

    try:
        return list_scale_sets(settings, resource_group, subscription)
    except BatchK8sError as error:
        return error


def _fill_tags(settings: Settings, resolved: Resolved, targets: Iterable[ScaleSetTarget]) -> dict[str, str]:
    """List the resource groups of due scale sets whose tags are unknown (for their hold tag).

    Returns target key -> error message for those whose tags could not be read; a resource group
    that does not exist reads as "no tags" (the action then reports the scale set as not found).
    """
    groups: dict[tuple[str, str], list[ScaleSetTarget]] = {}
    for target in targets:
        if resolved.tags.get(target.key) is None:
            groups.setdefault((target.subscription or "", target.resource_group.lower()), []).append(target)
    failed: dict[str, str] = {}
    names = list(groups)
    for group, listing in zip(names, _fan_out(lambda g: _list(settings, groups[g][0].resource_group,
                                                              groups[g][0].subscription), names), strict=True):
        resolved.listings += 1
        if isinstance(listing, NotFoundError):
            listing = []
        if isinstance(listing, BatchK8sError):
            for target in groups[group]:
                failed[target.key] = f"could not read the tags (for a hold): {listing.message}"
            continue
        found = {ScaleSetTarget(i.ref.resource_group, i.ref.name, group[0] or None).key: dict(i.tags)
                 for i in listing}
        for target in groups[group]:
            resolved.tags[target.key] = found.get(target.key, {})
    return failed


# --- the tick --------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What the tick did for one target, for the report and the log."""

    decision: Decision
    result: str  # applied, skipped, failed, up-to-date, idle, in-progress, waiting-retry, lost-race, dry-run
    reason: str | None = None
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        decision = self.decision
        body: dict[str, Any] = {"key": decision.target.key, "target": decision.target.to_dict(),
                                "result": self.result}
        if decision.firing:
            body["firing"] = decision.firing.to_dict()
        for name, value in (("reason", self.reason), ("detail", self.detail)):
            if value:
                body[name] = value
        if decision.missed_total:
            body["missed"] = decision.missed_total
        return body


@dataclass
class TickReport:
    now: datetime
    dry_run: bool
    document: dict[str, Any]
    outcomes: list[Outcome]
    errors: list[dict[str, Any]]
    requests: dict[str, int]
    follow_ups: list[dict[str, Any]] = field(default_factory=list)  # what earlier runs left running, now

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for outcome in self.outcomes:
            counts[outcome.result] = counts.get(outcome.result, 0) + 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {"now": self.now.isoformat(), "dryRun": self.dry_run, "document": self.document,
                "counts": self.counts(), "targets": [outcome.to_dict() for outcome in self.outcomes],
                "errors": self.errors, "requests": self.requests,
                **({"followUps": self.follow_ups} if self.follow_ups else {})}


def history_entry(now: datetime, firing: Firing, result: str, reason: str | None = None,
                  detail: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"at": now.isoformat(), "firing": firing.utc.isoformat(), "local": firing.at.isoformat(),
                             "rule": firing.rule.name, **firing.rule.effect.to_dict(), "result": result}
    if reason:
        entry["reason"] = reason
    if detail:
        entry["detail"] = detail
    return entry


def _missed_entries(decision: Decision, now: datetime) -> list[dict[str, Any]]:
    entries = [history_entry(now, firing, "skipped", "missed", "superseded by a newer firing (catch-up)")
               for firing in decision.missed]
    unlisted = decision.missed_total - len(decision.missed)
    if unlisted > 0 and decision.missed:
        entries.insert(0, {**history_entry(now, decision.missed[0], "skipped", "missed"),
                           "detail": f"{unlisted} older missed firing(s) not listed", "count": unlisted})
    return entries


def reconcile(settings: Settings, *, now: datetime | None = None, dry_run: bool = False,
              document_text: str | None = None, deadline: Deadline | None = None,
              claim_lease: timedelta = CLAIM_LEASE, budget: Deadline | None = None) -> TickReport:
    """Run one tick. Raises DocumentError (every problem) when the document is invalid, before acting.

    `deadline` bounds the whole tick (the timer's functionTimeout); `claim_lease` is how long a claim
    written by this tick stays valid; scale set operations are followed until `budget` (default: a
    tick's, from now), and never past the claim."""
    deadline = deadline or Deadline.for_timer()
    started = deadline.clock()
    budget = budget or tick_budget()
    now = (now or clock.now()).astimezone(UTC)
    document = load_document(settings, now, document_text, deadline=deadline)
    store = StateStore(settings, deadline)
    resolved = resolve_targets(settings, document)
    stored = store.load({key: target.to_dict() for key, target in resolved.targets.items()})
    followups = Followups(store, deadline)
    followed = [] if dry_run else followups.pick_up({n: i for n, i in store.listed.items() if is_pending(n)}, now)
    follow_ups = [{"key": record.key, "action": record.action, "firing": record.firing.isoformat(),
                   "rule": record.rule, **report.to_dict()} for record, report in followed]
    latest = latest_by_rule(document.rules, now)
    decisions = [decide(target, resolved.rules[key], latest, stored[key].state, now)
                 for key, target in resolved.targets.items()]
    due = [d for d in decisions if d.kind == "due"]
    tag_errors = _fill_tags(settings, resolved, [d.target for d in due if isinstance(d.target, ScaleSetTarget)])
    tick = _Tick(settings, store, now, dry_run, stored, resolved, tag_errors, document,
                 _ClaimFence(deadline, started, claim_lease), budget, followups)
    outcomes = {d.target.key: Outcome(d, d.kind) for d in decisions if d.kind != "due"}
    outcomes.update(tick.run(due))
    report = TickReport(now, dry_run, document.summary(), [outcomes[d.target.key] for d in decisions],
                        resolved.errors, {**store.requests, "armListings": resolved.listings}, follow_ups)
    _log(report)
    if not dry_run:
        announce(store, "schedules_reconcile", now, ended_events(followed) + [
            event_of(o.decision.target, o.result, o.reason, o.detail, o.decision.firing.rule.effect.action,
                     o.decision.firing.utc, o.decision.firing.rule.name) for o in report.outcomes if o.decision.firing])
    return report


@dataclass(frozen=True)
class _ClaimFence:
    """The time a tick's claims allow: `lease` from the tick's start (`started`, on the deadline's clock)."""

    deadline: Deadline
    started: float
    lease: timedelta

    @property
    def margin(self) -> float:
        return min(FENCE_MARGIN.total_seconds(), self.lease.total_seconds() / 10)

    def for_acting(self) -> Deadline | None:
        """The deadline for acting on this tick's claims, or None when too little of the claim is left."""
        left = self.lease.total_seconds() - (self.deadline.clock() - self.started) - self.margin
        acting = self.deadline.within(max(left, 0.0))
        return acting if acting.remaining() >= self.margin else None


class _Tick:
    """The effectful part of a tick over the due decisions."""

    def __init__(self, settings: Settings, store: StateStore, now: datetime, dry_run: bool,
                 stored: dict[str, Stored], resolved: Resolved, tag_errors: dict[str, str], document: Document,
                 fence: _ClaimFence, budget: Deadline, followups: Followups):
        self.settings, self.store, self.now, self.dry_run = settings, store, now, dry_run
        self.stored, self.resolved, self.tag_errors, self.document = stored, resolved, tag_errors, document
        self.fence = fence
        self.acting = fence.deadline
        self.budget, self.followups = budget, followups

    def run(self, due: list[Decision]) -> dict[str, Outcome]:
        outcomes: dict[str, Outcome] = {}
        acting: list[Decision] = []
        closing: list[tuple[Decision, Outcome]] = []
        preset: dict[str, Outcome] = {}  # failed before acting: recorded like any failure, with retry
        for decision in due:
            key = decision.target.key
            hold = active_hold(decision.target, self.resolved.tags.get(key), self.document.holds, self.now)
            if key in self.tag_errors:
                preset[key] = Outcome(decision, "failed", "tags-unreadable", self.tag_errors[key])
                acting.append(decision)
            elif hold is not None:
                closing.append((decision, Outcome(decision, "skipped", "hold", hold.describe())))
            elif decision.conflict:
                effects = " vs ".join(sorted(effect.describe() for effect in decision.effects))
                rules = ", ".join(f"'{f.rule.name}'" for f in decision.firings)
                closing.append((decision, Outcome(decision, "failed", "conflict",
                                                  f"rules {rules} fire together with different actions ({effects})")))
            else:
                acting.append(decision)
        if self.dry_run:
            outcomes.update({d.target.key: o for d, o in closing})
            outcomes.update(self._act([d for d in acting if d.target.key not in preset]))
            outcomes.update(preset)
            return outcomes
        outcomes.update(zip([d.target.key for d, _ in closing], _fan_out(self._close, closing), strict=True))
        claimed = [d for d, won in zip(acting, _fan_out(self._claim, acting), strict=True) if won]
        for decision in acting:
            if decision not in claimed:
                outcomes[decision.target.key] = Outcome(decision, "lost-race", "claimed-elsewhere",
                                                        "another instance claimed this firing first")
        acting_deadline = self.fence.for_acting()
        if acting_deadline is None:
            preset.update({d.target.key: Outcome(d, "failed", "claim-expiring",
                                                 "too little of the claim was left to act before it expires")
                           for d in claimed if d.target.key not in preset})
        else:
            self.acting = acting_deadline
        results = self._act([d for d in claimed if d.target.key not in preset])
        results.update({d.target.key: preset[d.target.key] for d in claimed if d.target.key in preset})
        outcomes.update(results)
        _fan_out(lambda d: self._finish(d, results[d.target.key]), claimed)
        return outcomes

    # -- state writes --------------------------------------------------------------------------

    def _write(self, decision: Decision, state: TargetState) -> bool:
        key = decision.target.key
        try:
            self.stored[key] = self.store.write(self.stored[key], state, self.now)
            return True
        except ConflictError:
            return False

    def _record(self, decision: Decision, entry: dict[str, Any]) -> None:
        """Append the event to the target's history, after the firings it superseded (on a new firing)."""
        missed = [] if decision.retry else _missed_entries(decision, self.now)
        self.store.history.append(decision.target.key, decision.target.to_dict(), [*missed, entry], self.now)

    def _base(self, decision: Decision) -> TargetState:
        """The next state for this firing: built from the decision alone, nothing read beyond the listing."""
        firing = decision.firing
        assert firing is not None
        previous = decision.state
        return TargetState(firing=firing.utc, status=STATUS_DONE, rule=firing.rule.name,
                           action=firing.rule.effect.action, attempts=previous.attempts if decision.retry else 0)

    def _close(self, item: tuple[Decision, Outcome]) -> Outcome:
        """Record a firing that is not acted on (hold, conflict); the loser of a race records nothing."""
        decision, outcome = item
        assert decision.firing is not None
        if not self._write(decision, self._base(decision)):
            return Outcome(decision, "lost-race", "claimed-elsewhere", "another instance recorded this firing first")
        self._record(decision, history_entry(self.now, decision.firing, outcome.result, outcome.reason,
                                             outcome.detail))
        return outcome

    def _claim(self, decision: Decision) -> bool:
        base = self._base(decision)
        return self._write(decision, replace(base, status=STATUS_CLAIMED, attempts=base.attempts + 1,
                                             claimed_by=instance_id(), claimed_at=self.now,
                                             claimed_until=self.now + self.fence.lease))

    def _finish(self, decision: Decision, outcome: Outcome) -> None:
        """Write the outcome to the state and append it to the history (the latter even if the state
        changed meanwhile: the action has happened either way)."""
        assert decision.firing is not None
        current = self.stored[decision.target.key].state
        entry = history_entry(self.now, decision.firing, outcome.result, outcome.reason, outcome.detail)
        state = replace(current, status=STATUS_DONE, claimed_by=None, claimed_at=None, claimed_until=None,
                        retry_at=None)
        if outcome.result == "failed":
            retry = retry_after(current.attempts, self.now)
            entry["attempt"] = current.attempts
            if retry is None:
                entry["detail"] = f"{outcome.detail or ''} (attempt {current.attempts} of {MAX_ATTEMPTS}; " \
                                  "left for the next firing)".lstrip()
            state = replace(state, status=STATUS_FAILED, retry_at=retry)
        if not self._write(decision, state):
            log.warning("%s: the outcome of firing %s could not be recorded in its state: the state changed "
                        "meanwhile", decision.target.label, decision.firing.utc.isoformat())
        self._record(decision, entry)

    # -- acting --------------------------------------------------------------------------------

    def _act(self, decisions: list[Decision]) -> dict[str, Outcome]:
        groups: dict[str, list[Decision]] = {}
        for decision in decisions:
            effect = decision.firings[0].rule.effect
            kind = "pool" if isinstance(decision.target, PoolTarget) else effect.action
            groups.setdefault(kind, []).append(decision)
        outcomes: dict[str, Outcome] = {}
        work = [(kind, group) for kind, group in groups.items()]
        for results in _fan_out(lambda item: self._act_group(*item), work):
            outcomes.update(results)
        return outcomes

    def _act_group(self, kind: str, decisions: list[Decision]) -> dict[str, Outcome]:
        if kind == "pool":
            return dict(zip([d.target.key for d in decisions], _fan_out(self._resize, decisions), strict=True))
        return self._scale_sets(kind, decisions)

    def _scale_sets(self, action: str, decisions: list[Decision]) -> dict[str, Outcome]:
        from batchk8s.vmss import ScaleSetRef, apply_action

        refs = [ScaleSetRef(d.target.resource_group, d.target.name, d.target.subscription) for d in decisions
                if isinstance(d.target, ScaleSetTarget)]
        try:
            reports = apply_action(self.settings, action, refs, dry_run=self.dry_run, deadline=self.acting,
                                   budget=self.budget)
        except BatchK8sError as error:
            return {d.target.key: Outcome(d, "failed", error.code, error.message) for d in decisions}
        outcomes = {}
        for decision, report in zip(decisions, reports, strict=True):
            outcomes[decision.target.key] = Outcome(decision, *result_of(report))
            target, firing = decision.target, decision.firing
            if report.running and isinstance(target, ScaleSetTarget) and firing is not None:
                self.followups.record(target, report, firing.utc, firing.rule.name, self.now,
                                      self.store.listed.get(pending_name(target.key)))
        return outcomes

    def _resize(self, decision: Decision) -> Outcome:
        effect = decision.firings[0].rule.effect
        target = decision.target
        assert isinstance(target, PoolTarget)
        if self.dry_run:
            return Outcome(decision, "dry-run", "would-resize", effect.describe())
        try:
            changed = _resize_pool(self.settings, target.pool_id, effect.dedicated or 0, effect.spot or 0,
                                   self.acting)
        except BatchK8sError as error:
            return Outcome(decision, "failed", error.code, error.message)
        if not changed:
            return Outcome(decision, "skipped", "already-in-state",
                           f"pool already targets {effect.dedicated} dedicated + {effect.spot} spot nodes")
        return Outcome(decision, "applied", "resize", effect.describe())


def _resize_pool(settings: Settings, pool_id: str, dedicated: int, spot: int, deadline: Deadline) -> bool:
    """Resize through the Batch engine unless the pool already targets these counts and is steady
    (then False: one GET instead of a resize that Batch would refuse while another is running)."""
    from batchk8s.batch.client import batch_client, call
    from batchk8s.batch.pools import resize_pool

    pool = call(f"pool {pool_id}", batch_client(settings, deadline).get_pool, pool_id)
    targets = (pool.target_dedicated_nodes or 0, pool.target_low_priority_nodes or 0)
    if targets == (dedicated, spot) and str(pool.allocation_state).lower().endswith("steady"):
        return False
    resize_pool(settings, pool_id, {"dedicatedNodes": dedicated, "spotNodes": spot}, deadline=deadline)
    return True


def _log(report: TickReport) -> None:
    counts = ", ".join(f"{number} {result}" for result, number in sorted(report.counts().items())) or "no targets"
    log.info("schedules tick at %s%s: %s", report.now.isoformat(), " (dry run)" if report.dry_run else "", counts)
    for outcome in report.outcomes:
        if outcome.result in ("applied", "skipped", "failed", "dry-run"):
            firing = outcome.decision.firing
            when = f" (firing {firing.utc.isoformat()}, rule '{firing.rule.name}')" if firing else ""
            level = logging.WARNING if outcome.result == "failed" else logging.INFO
            log.log(level, "%s: %s %s%s%s", outcome.decision.target.label, outcome.result, outcome.reason or "",
                    when, f": {outcome.detail}" if outcome.detail else "")
    for error in report.errors:
        log.warning("tag selection in %s failed: %s", error["scope"], error["message"])
