"""The one source of "now" for schedule decisions and previews.

Schedules, plans and reconcile ticks answer "what happens next" relative to the current instant. Reading
it through this module (never `datetime.now` directly) lets the test suite pin it to stated instants — a
summer weekday, a winter weekend, a DST change day — and prove the answers are right at any of them.
Lifetimes that the outside world checks (SAS expiry, lease stamps) keep reading the real clock.
"""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """The current instant, timezone-aware in UTC."""
    return datetime.now(UTC)
