"""Operations a timer left running, kept until the next firing or tick reports how they ended.

A start or deallocate that ARM accepted can still fail (quota, allocation failure, an extension error).
A timer follows its operations for its budget (timer_budget.py); each scale set whose operations are
still running then gets a *pending* blob, `schedules/targets/<target key>.pending.json` beside its state
blob in BATCHK8S_STATE_CONTAINER, naming the operations' status URLs and instances. The next firing of
either timer (vmss_schedule, or the schedule document's tick) reads each pending blob, reads each
operation's status once, and

* when all have ended: logs one line, appends the outcome to the target's history (same firing and
  rule, so the timeline shows how that firing ended) and deletes the blob, conditioned on its ETag, so
  of two instances picking it up exactly one reports it;
* when some still run: keeps the blob (rewritten with just those) and says so; after MAX_AGE it gives up
  following (the history says so) rather than carrying the blob forever.

The pending blobs share the state blobs' prefix on purpose: the tick's one listing of that prefix
already tells whether any exist, so a tick with nothing pending costs no extra request.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from batchk8s import clock, storage
from batchk8s.deadline import Deadline
from batchk8s.errors import BatchK8sError, ConflictError
from batchk8s.notify import Event, notify, worth_sending
from batchk8s.schedules.document import ScaleSetTarget, Target, parse_instant
from batchk8s.schedules.state import PREFIX, Listed, StateStore
from batchk8s.settings import Settings
from batchk8s.timer_budget import within
from batchk8s.vmss import Followed, ScaleSetRef, TargetReport, follow_up, summary_line

log = logging.getLogger("batchk8s.schedules.followup")

SUFFIX = ".pending.json"
MAX_AGE = timedelta(hours=24)  # ARM keeps an operation's status for a limited time; stop asking after this
LIST_DEADLINE = 10.0  # a listing answers in well under a second; an unreachable account retries for minutes
ALREADY = {"start": "running or starting", "deallocate": "deallocated or deallocating"}


def pending_name(key: str) -> str:
    return f"{PREFIX}{key}{SUFFIX}"


def is_pending(name: str) -> bool:
    return name.startswith(PREFIX) and name.endswith(SUFFIX)


@dataclass(frozen=True)
class Pending:
    """What a run left running on one scale set, and which firing (and rule, or timer) started it."""

    key: str
    target: dict[str, Any]
    action: str
    firing: datetime
    rule: str
    started: datetime
    operations: tuple[Followed, ...]
    orchestration: str | None = None
    etag: str | None = None

    @property
    def ref(self) -> ScaleSetRef:
        return ScaleSetRef(str(self.target.get("resourceGroup", "")), str(self.target.get("name", "")),
                           self.target.get("subscription") or None)

    def to_json(self) -> str:
        return json.dumps({"key": self.key, "target": self.target, "action": self.action,
                           "firing": self.firing.isoformat(), "rule": self.rule, "started": self.started.isoformat(),
                           "orchestrationMode": self.orchestration,
                           "operations": [{"url": o.url, "instances": list(o.instances)} for o in self.operations]},
                          separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str, etag: str) -> Pending | None:
        """The record, or None when the blob is not one (damaged or foreign: it is then left alone)."""
        try:
            data = json.loads(text)
            operations = tuple(Followed(str(o["url"]), tuple(str(i) for i in o["instances"]))
                               for o in data["operations"])
            firing, started = parse_instant(data["firing"]), parse_instant(data["started"])
            if firing is None or started is None or data["action"] not in ALREADY:
                return None
            orchestration = data.get("orchestrationMode")
            return cls(str(data["key"]), dict(data["target"]), data["action"], firing, str(data["rule"]), started,
                       operations, str(orchestration) if orchestration else None, etag)
        except (ValueError, KeyError, TypeError):
            return None


# --- what a report means, for the log and the history ----------------------------------------


def result_of(report: TargetReport) -> tuple[str, str, str | None]:
    """(result, reason, detail) of an action's report, in the history's words."""
    warnings = "; ".join(report.warnings) or None
    if report.outcome == "completed":
        return "applied", "completed", warnings
    if report.outcome == "accepted":
        return "applied", "still-running", "; ".join(filter(None, [
            "the operation was still running at the end of the timer's budget; the next run reports how it ends",
            warnings]))
    if report.outcome == "nothing-to-do":
        return "skipped", "already-in-state", f"every instance is already {ALREADY.get(report.action or '', '')}"
    if report.outcome == "dry-run":
        return "dry-run", f"would-{report.action}", warnings
    error = report.error or {}
    message = error.get("message") or report.outcome
    code = error.get("code")
    return "failed", report.outcome, f"{code}: {message}" if code and code not in message else message


def entry(now: datetime, firing: datetime, rule: str, action: str, result: str, reason: str,
          detail: str | None, **extra: Any) -> dict[str, Any]:
    """A history entry for an action outside the document's rules (vmss_schedule) or a follow-up."""
    body: dict[str, Any] = {"at": now.isoformat(), "firing": firing.isoformat(), "rule": rule, "action": action,
                            "result": result, "reason": reason, **extra}
    if detail:
        body["detail"] = detail
    return body


# --- recording and picking up ----------------------------------------------------------------


class Followups:
    """The pending blobs of one state container, read and written through `store` (its request counts)."""

    def __init__(self, store: StateStore, deadline: Deadline | None = None):
        self.store = store
        self.settings = store.settings
        self.deadline = deadline  # bounds each status read (the timer's own deadline)

    def record(self, target: ScaleSetTarget, report: TargetReport, firing: datetime, rule: str,
               now: datetime, listed: Listed | None = None) -> bool:
        """Keep `report.running` for the next run; merged with what an earlier run left there (`listed`:
        that blob as listed). False, with a warning, when it could not be written."""
        operations = tuple(Followed(o["url"], tuple(o["instances"])) for o in report.running)
        if not operations:
            return True
        record = Pending(target.key, target.to_dict(), report.action or "", firing, rule, now, operations,
                         report.orchestration)
        name = pending_name(target.key)
        try:
            etag = None
            if listed is not None:
                earlier = self._read(name)
                if earlier is not None:
                    record = replace(record, operations=earlier.operations + operations)
                    etag = earlier.etag
            self.store.count("write")
            storage.write_blob_if_match(self.settings, self.store.container, name, record.to_json(), etag,
                                        deadline=self.store.deadline)
            return True
        except BatchK8sError as error:
            log.warning("%s: could not record the operations still running, so no later run will report how "
                        "they end: %s", target.label, error.message)
            return False

    def list(self) -> dict[str, Listed]:
        """The pending blobs (one listing of the state prefix, given at most LIST_DEADLINE seconds)."""
        listing = within(LIST_DEADLINE, f"state container {self.store.container}", self.store.list_blobs)
        return {name: listed for name, listed in listing.items() if is_pending(name)}

    def pick_up(self, pending: Mapping[str, Listed], now: datetime) -> list[tuple[Pending, TargetReport]]:
        """Read the status of every pending operation; report and forget those that ended. Returns each
        record this run reported (a lost race reports nothing) with its report."""
        found = [p for p in self.store.fan_out(self._read, list(pending)) if p is not None]
        done = self.store.fan_out(lambda p: self._settle(p, now), found)
        return [item for item in done if item is not None]

    def _read(self, name: str) -> Pending | None:
        from batchk8s.errors import NotFoundError

        self.store.count("read")
        try:
            blob = storage.read_blob(self.settings, self.store.container, name, deadline=self.store.deadline)
        except NotFoundError:
            return None
        record = Pending.from_json(blob.text, blob.etag)
        if record is None:
            log.warning("%s is not a pending-operations record; left alone", name)
        return record

    def _settle(self, record: Pending, now: datetime) -> tuple[Pending, TargetReport] | None:
        name = pending_name(record.key)
        try:
            report = follow_up(self.settings, record.ref, record.action, record.operations, record.orchestration,
                               self.deadline)
        except BatchK8sError as error:
            log.warning("%s: could not follow up on its operations: %s", record.key, error.message)
            return None
        result, reason, detail = result_of(report)
        too_old = report.outcome == "accepted" and now - record.started > MAX_AGE
        try:
            if report.outcome == "accepted" and not too_old:
                still = tuple(Followed(o["url"], tuple(o["instances"])) for o in report.running)
                if still != record.operations:
                    self.store.count("write")
                    storage.write_blob_if_match(self.settings, self.store.container, name,
                                                replace(record, operations=still).to_json(), record.etag)
                log.info("followed up %s (%s at %s, rule '%s'): %s", record.key, record.action,
                         record.firing.isoformat(), record.rule, summary_line(report))
                return record, report
            self.store.count("delete")
            if not storage.delete_blob_if_match(self.settings, self.store.container, name, record.etag or "",
                                                deadline=self.store.deadline):
                return None  # another instance reported it
        except ConflictError:
            return None
        except BatchK8sError as error:
            log.warning("%s: could not update its pending-operations record: %s", record.key, error.message)
            return None
        if too_old:
            reason, detail = "not-followed", (f"still running {MAX_AGE.total_seconds() / 3600:g} h after it "
                                              "started; no longer followed")
        (log.warning if result == "failed" or too_old else log.info)(
            "followed up %s (%s at %s, rule '%s'): %s", record.key, record.action, record.firing.isoformat(),
            record.rule, summary_line(report))
        self.store.history.append(record.key, record.target, [entry(
            now, record.firing, record.rule, record.action, result, reason, detail, followUp=True)], now)
        return record, report


# --- the vmss_schedule timer -----------------------------------------------------------------

TIMER_RULE = "vmss_schedule"  # the "rule" of the timer's history entries: the timer, not a document rule


def scheduled_action(settings: Settings, budget: Deadline, deadline: Deadline | None = None) -> list[TargetReport]:
    """One firing of the vmss_schedule timer: report what the previous firing left running, run
    AZURE_VMSS_ACTION on AZURE_VMSS_NAME following the operations for `budget`, append each scale set's
    outcome to its history and record what is still running for the next firing (or tick). `deadline`
    bounds every call (the timer's functionTimeout less a margin); `budget` ends the following sooner.

    Raises ConfigError / InputError before acting when the settings are not complete. State storage that
    cannot be reached costs the follow-up and the history (a warning), never the action itself."""
    from batchk8s.vmss import apply_action, configured_targets

    settings.require("vmss-timer")
    targets = configured_targets(settings)
    now = clock.now()
    followups = Followups(StateStore(settings, deadline), deadline)
    try:
        pending: dict[str, Listed] | None = followups.list()
    except BatchK8sError as error:
        log.warning("vmss_schedule: state storage cannot be read, so this firing neither reports what earlier "
                    "firings left running nor records its own outcome there: %s", error.message)
        pending = None
    events = ended_events(followups.pick_up(pending, now)) if pending else []
    action = settings.vmss_action or ""
    reports = apply_action(settings, action, targets, deadline=deadline, budget=budget)
    for report in reports:
        target = ScaleSetTarget(report.ref.resource_group, report.ref.name, report.ref.subscription)
        result, reason, detail = result_of(report)
        events.append(event_of(target, result, reason, detail, action, now, TIMER_RULE))
        if pending is None:  # unreachable storage is not tried again once per scale set
            continue
        followups.store.history.append(target.key, target.to_dict(),
                                       [entry(now, now, TIMER_RULE, action, result, reason, detail)], now)
        if report.running:
            followups.record(target, report, now, TIMER_RULE, now, pending.get(pending_name(target.key)))
    announce(followups.store, TIMER_RULE, now, events)
    return reports


# --- notifications -----------------------------------------------------------------------------


def event_of(target: Target, result: str, reason: str | None, detail: str | None, action: str | None,
             firing: datetime | None, rule: str | None) -> Event:
    return Event(target.key, target.to_dict(), target.label, action, result, reason, detail,
                 firing.isoformat() if firing else None, rule)


def ended_events(followed: list[tuple[Pending, TargetReport]]) -> list[Event]:
    """Events for the operations a follow-up found ended; one still running was announced when its run's
    budget ended and is not announced again every tick."""
    return [event_of(ScaleSetTarget(record.ref.resource_group, record.ref.name, record.ref.subscription),
                     *result_of(report), record.action, record.firing, record.rule)
            for record, report in followed if report.outcome != "accepted"]


def announce(store: StateStore, run: str, now: datetime, events: list[Event]) -> None:
    """Post the run's events to the webhook (notify.py). A post that failed is a warning in the log (notify
    logs it) and an entry in the history of each target it was about; never an error of the run."""
    warning = notify(store.settings, run, now, events)
    if warning is None:
        return
    for event in worth_sending(store.settings, events):
        store.history.append(event.key, event.target, [{
            "at": now.isoformat(), "firing": event.firing, "rule": event.rule, "action": event.action,
            "result": "warning", "reason": "webhook-failed", "detail": warning}], now)
