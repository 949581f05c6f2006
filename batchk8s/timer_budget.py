"""How long a timer may spend following the operations it started: the function timeout minus a margin.

A timer that is still polling when the host's `functionTimeout` (host.json) strikes is killed before it
writes what it learnt, and the next firing would know nothing. So each timer has a budget: it follows
its operations until the budget is spent, then records what is still running for the next firing or
tick to pick up. The margin leaves time for those writes (state, history, notifications).

The schedule document's timer fires every minute; its budget stays well inside the minute, so a tick
never runs into the next one (the host would skip that one as past due).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from batchk8s.deadline import FUNCTION_TIMEOUT_SECONDS, Deadline

T = TypeVar("T")

FUNCTION_TIMEOUT = FUNCTION_TIMEOUT_SECONDS  # host.json functionTimeout, 00:10:00 (tests check the two agree)
MARGIN = 60.0  # state, history and notification writes after the last poll
TICK_BUDGET = 40.0  # the every-minute reconcile timer: 20 s to spare before the next tick


def function_budget() -> Deadline:
    """Until when a timer that may use its whole function timeout (vmss_schedule) follows operations."""
    return Deadline.after(FUNCTION_TIMEOUT - MARGIN)


def tick_budget() -> Deadline:
    """Until when one reconcile tick (schedules_reconcile, every minute) follows operations."""
    return Deadline.after(TICK_BUDGET)


def within(seconds: float, what: str, work: Callable[[], T]) -> T:
    """`work()`'s result, or UpstreamTimeoutError naming `what` when it takes longer than `seconds` (it goes
    on in a daemon thread and its answer is dropped). For calls whose SDK retries far longer than a timer
    or a page can wait: an unreachable storage account takes minutes to give up."""
    from batchk8s.errors import UpstreamTimeoutError

    result: dict[str, object] = {}

    def run() -> None:
        try:
            result["value"] = work()
        except Exception as error:  # handed to the caller's thread, which raises it
            result["error"] = error

    worker = threading.Thread(target=run, name=f"within-{what}", daemon=True)
    worker.start()
    worker.join(seconds)
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    if "value" not in result:
        raise UpstreamTimeoutError(f"{what} did not answer within {seconds:g} s")
    return result["value"]  # type: ignore[return-value]
