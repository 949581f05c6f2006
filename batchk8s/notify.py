"""Tell people what the timers did: one webhook post per run, in the format their tool reads.

What is sent (BATCHK8S_WEBHOOK_EVENTS): by default the things someone should look at — a run that could
not run at all (vmss_schedule with an incomplete configuration), a failed action (ARM's code and
message), a target held, an operation still running when the timer's budget ended — and
with `all` every action too. One run (a vmss_schedule firing, a reconcile tick) makes at most one post,
listing up to MAX_EVENTS events and counting the rest, so a fleet-wide failure is one message, not a
flood.

The formats (BATCHK8S_WEBHOOK_FORMAT):

* `json` — `{"source": "batchk8s", "run", "at", "summary", "counts", "events": [...], "omitted"}`, each event
  `{"kind", "key", "target", "label", "action", "result", "reason", "detail", "firing", "rule"}`: for Logic Apps
  (an HTTP request trigger), Azure Monitor / Event Grid style receivers, or a script;
* `teams` — a message with one Adaptive Card (what Teams' Workflows "post to a channel when a webhook
  request is received" reads);
* `slack` — `{"text": ...}` with Slack's mrkdwn (incoming webhooks).

Why it cannot hurt the run: it is sent after the run has done and recorded its work, it is bounded
(ATTEMPTS tries, each with TIMEOUT seconds, retrying only 429 / 5xx / connection failures, Retry-After
capped, everything within DEADLINE seconds), and every failure is returned as a warning for the log and
the history, never raised. What it carries is what the history holds — names, outcomes, ARM's error
codes and messages — never a setting's value; the URL (a secret: it authorises posting) is never
logged, only its host.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from batchk8s import clock
from batchk8s.errors import BatchK8sError
from batchk8s.settings import Settings

log = logging.getLogger("batchk8s.notify")

MAX_EVENTS = 50
ATTEMPTS = 3
TIMEOUT = 5.0  # per attempt (connect and read)
DEADLINE = 15.0  # for all attempts together, inside the timers' margin (timer_budget.MARGIN)
MAX_RETRY_AFTER = 5.0
PROBLEMS = ("failed", "held", "still-running")
TITLE = {"failed": "failed", "held": "held", "still-running": "still running", "applied": "applied",
         "skipped": "skipped", "completed": "completed"}


@dataclass(frozen=True)
class Event:
    """One target's outcome in a run, as the history records it."""

    key: str
    target: dict[str, Any]
    label: str
    action: str | None
    result: str
    reason: str | None = None
    detail: str | None = None
    firing: str | None = None
    rule: str | None = None

    @property
    def kind(self) -> str:
        """failed, held, still-running (the problems), else the result (applied, skipped...)."""
        if self.result == "failed":
            return "failed"
        if self.reason == "hold":
            return "held"
        if self.reason == "still-running":
            return "still-running"
        return self.result

    def line(self) -> str:
        text = f"{self.label}: {TITLE.get(self.kind, self.kind)}"
        if self.action:
            text += f" ({self.action}"
            text += f", rule '{self.rule}')" if self.rule else ")"
        return text + (f": {self.detail}" if self.detail else "")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "key": self.key, "target": dict(self.target), "label": self.label,
                "action": self.action, "result": self.result, "reason": self.reason, "detail": self.detail,
                "firing": self.firing, "rule": self.rule}


def worth_sending(settings: Settings, events: Iterable[Event]) -> list[Event]:
    """The events BATCHK8S_WEBHOOK_EVENTS asks for: the problems, or every action (`all`). Dry runs and
    targets with nothing due are never sent."""
    wanted = [e for e in events if e.result in ("applied", "skipped", "failed")]
    return wanted if settings.webhook_events == "all" else [e for e in wanted if e.kind in PROBLEMS]


# --- the payloads (pure) ----------------------------------------------------------------------


def payload(style: str, run: str, at: datetime, events: Sequence[Event]) -> dict[str, Any]:
    """The body for `style` (json, teams, slack) describing `events` of one run."""
    shown, omitted = list(events[:MAX_EVENTS]), max(0, len(events) - MAX_EVENTS)
    counts = Counter(event.kind for event in events)
    summary = f"batchk8s {run}: " + ", ".join(f"{n} {TITLE.get(k, k)}" for k, n in sorted(counts.items()))
    lines = [event.line() for event in shown] + ([f"... and {omitted} more"] if omitted else [])
    if style == "slack":
        return {"text": "\n".join([f"*{summary}*", *(f"• {line}" for line in lines)])}
    if style == "teams":
        body: list[dict[str, Any]] = [{"type": "TextBlock", "text": summary, "weight": "Bolder", "wrap": True,
                                       "size": "Medium"},
                                      {"type": "TextBlock", "text": at.isoformat(), "isSubtle": True, "spacing": "None",
                                       "wrap": True}]
        kinds = [event.kind for event in shown] + ([""] if omitted else [])
        body += [{"type": "TextBlock", "text": f"- {line}", "wrap": True,
                  **({"color": "Attention"} if kind == "failed" else {})}
                 for kind, line in zip(kinds, lines, strict=True)]
        return {"type": "message", "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
            "content": {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
                        "version": "1.4", "body": body}}]}
    return {"source": "batchk8s", "run": run, "at": at.isoformat(), "summary": summary, "counts": dict(counts),
            "events": [event.to_dict() for event in shown], "omitted": omitted}


# --- sending ------------------------------------------------------------------------------------


def run_failed(settings: Settings, run: str, error: BatchK8sError, action: str | None = None) -> str | None:
    """Post that a whole run did not happen (its configuration is incomplete, say), naming what to fix."""
    fields = "; ".join(f"{d.get('field')}: {d.get('message')}" for d in error.details if d.get("field"))
    event = Event(f"run/{run}", {"kind": "run", "name": run}, run, action, "failed", error.code,
                  f"{error.message}{' (' + fields + ')' if fields else ''}")
    return notify(settings, run, None, [event])


def notify(settings: Settings, run: str, at: datetime | None, events: Iterable[Event]) -> str | None:
    """Post the events worth sending, if a webhook is configured. Returns a warning when the post failed
    (the caller logs it and records it in the history), None when it was delivered or not needed."""
    if not settings.webhook_url:
        return None
    chosen = worth_sending(settings, events)
    if not chosen:
        return None
    body = json.dumps(payload(settings.webhook_format, run, at or clock.now(), chosen)).encode()
    return _post(settings.webhook_url.reveal(), body)


def _post(url: str, body: bytes) -> str | None:
    import requests

    host = urlsplit(url).hostname or "?"
    deadline = time.monotonic() + DEADLINE
    problem = ""
    for attempt in range(1, ATTEMPTS + 1):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            response = requests.post(url, data=body, headers={"Content-Type": "application/json"},
                                     timeout=min(TIMEOUT, remaining), allow_redirects=False)
        except requests.RequestException as exc:
            problem, wait = f"could not reach it ({type(exc).__name__})", float(attempt)
        else:
            if response.status_code < 300:
                return None
            problem = f"it answered {response.status_code}"
            if response.status_code != 429 and response.status_code < 500:
                break  # refused: sending the same again will not help
            wait = _retry_after(response.headers.get("Retry-After"), float(attempt))
        if attempt < ATTEMPTS:
            time.sleep(max(0.0, min(wait, deadline - time.monotonic())))
    warning = f"the webhook at {host} was not notified: {problem}"
    log.warning("%s", warning)
    return warning


def _retry_after(value: str | None, default: float) -> float:
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER) if value else default
    except ValueError:
        return default
