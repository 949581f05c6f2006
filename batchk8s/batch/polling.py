"""Waiting on Batch with backoff, and reading the tail of a node or task file.

Batch is the source of truth for progress, so waiting means reading it again. Reads start quick
(a short task is noticed within a second or two) and back off to a ceiling, so a long wait costs
few requests and completion is still noticed within `maximum` seconds. Time and sleep are
parameters so tests and benchmarks can drive waits with a fake clock instead of the wall clock.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from batchk8s.errors import UpstreamTimeoutError

if TYPE_CHECKING:
    from batchk8s.deadline import Deadline

T = TypeVar("T")
TAIL_BYTES = 4096
READ_MARGIN_SECONDS = 5.0  # a wait stops this long before the deadline: the last read and the answer need time


@dataclass(frozen=True)
class Backoff:
    """Delays initial, initial*factor, ... capped at maximum (seconds)."""

    initial: float = 1.0
    factor: float = 2.0
    maximum: float = 10.0

    def delays(self) -> Iterator[float]:
        delay = self.initial
        while True:
            yield delay
            delay = min(self.maximum, delay * self.factor)


@dataclass
class Waiter:
    """How to wait: the clock, the sleep, the backoff. Defaults are the real ones."""

    backoff: Backoff = Backoff()
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def until(self, probe: Callable[[], tuple[bool, T]], timeout: float, what: str,
              deadline: Deadline | None = None) -> T:
        """Call `probe` until it reports done; return its last value, or raise UpstreamTimeoutError.

        The wait ends at `timeout` or when the operation's `deadline` leaves no time for another read,
        whichever comes first (the clock of `deadline` is its own; this waiter's clock times `timeout`)."""
        ends = self.clock() + timeout
        delays = self.backoff.delays()
        while True:
            done, value = probe()
            if done:
                return value
            remaining = ends - self.clock()
            limit = f"within {timeout:g} s"
            if deadline is not None and deadline.remaining() - READ_MARGIN_SECONDS < remaining:
                remaining = deadline.remaining() - READ_MARGIN_SECONDS
                limit = f"before the operation's deadline ({deadline.seconds:g} s)"
            if remaining <= 0:
                raise UpstreamTimeoutError(f"{what} did not finish {limit}; it goes on in Azure Batch: "
                                           "ask again later", code="Timeout")
            self.sleep(min(next(delays), remaining))


def tail(chunks: Iterable[bytes], limit: int = TAIL_BYTES) -> str:
    """The last `limit` bytes of a stream, decoded leniently (the cut may split a character)."""
    kept: deque[bytes] = deque()
    size = 0
    for chunk in chunks:
        kept.append(chunk)
        size += len(chunk)
        while kept and size - len(kept[0]) >= limit:
            size -= len(kept.popleft())
    data = b"".join(kept)[-limit:]
    return data.decode("utf-8", errors="replace")
