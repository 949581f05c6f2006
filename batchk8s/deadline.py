"""One deadline per operation, created by the door and carried down to every call it makes.

The Functions host cuts an HTTP response at 230 s and a function at `functionTimeout` (host.json);
a person at a terminal gives the CLI `--timeout`. Whatever runs under those limits must fit inside
them: a service that honours `Retry-After: 3600`, or an SDK that waits 300 s for a read, breaks the
promise the door made. So the door creates a `Deadline` and the services hand it to every Azure or
TES call; the retry policies (`batchk8s.retry`) shorten connect and read timeouts to what is left and
give up at once when a server asks for a pause the deadline cannot afford. Running out is
`UpstreamTimeoutError` (504 `UpstreamTimeout`), naming the service and what was being done.

A deadline is a value, not a global: two requests served by one worker have two deadlines.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from batchk8s.errors import UpstreamTimeoutError

# The host answers 504 itself at 230 s; ours must be out before that, with room to write the answer.
HTTP_SECONDS = 220.0
# functionTimeout in host.json (00:10:00); a timer stops acting this long before the host kills it.
FUNCTION_TIMEOUT_SECONDS = 600.0
TIMER_MARGIN_SECONDS = 30.0
TIMER_SECONDS = FUNCTION_TIMEOUT_SECONDS - TIMER_MARGIN_SECONDS
# The CLI's default --timeout, and its bounds.
CLI_SECONDS = 600.0
CLI_MAX_SECONDS = 7 * 24 * 3600.0
# No single connect waits longer than this, however much time the operation has left.
CONNECT_SECONDS = 10.0


@dataclass(frozen=True)
class Deadline:
    """A point on a monotonic clock by which an operation must be done.

    `seconds` is the budget it was given (for messages); `clock` is injectable for tests.
    """

    at: float
    seconds: float
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)

    @classmethod
    def after(cls, seconds: float, clock: Callable[[], float] = time.monotonic) -> Deadline:
        return cls(clock() + seconds, seconds, clock)

    @classmethod
    def for_http(cls) -> Deadline:
        return cls.after(HTTP_SECONDS)

    @classmethod
    def for_timer(cls) -> Deadline:
        return cls.after(TIMER_SECONDS)

    def remaining(self) -> float:
        return max(self.at - self.clock(), 0.0)

    def expired(self) -> bool:
        return self.remaining() <= 0

    def within(self, seconds: float) -> Deadline:
        """A deadline for one step: `seconds` from now, or this one if it comes first."""
        at = min(self.at, self.clock() + seconds)
        return Deadline(at, min(seconds, self.seconds), self.clock)

    def allows(self, pause: float) -> bool:
        """Whether pausing `pause` seconds still leaves time for another attempt."""
        return pause < self.remaining()

    def timeout(self, service: str, doing: str) -> UpstreamTimeoutError:
        """The error for running out: 504 UpstreamTimeout naming the service and what it was doing."""
        return UpstreamTimeoutError(
            f"{service} did not answer in time while {doing} (deadline {self.seconds:g} s)",
            details=[{"service": service, "operation": doing, "deadlineSeconds": round(self.seconds, 3)}])

    def check(self, service: str, doing: str) -> None:
        """Raise the timeout error before starting a step there is no time left for."""
        if self.expired():
            raise self.timeout(service, doing)

    def call_options(self) -> dict[str, Any]:
        """Keyword arguments for one azure-core call: the retry policies read `deadline` and fit the
        connect/read timeouts and every pause to it."""
        return {"deadline": self}
