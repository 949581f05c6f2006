"""Retry policies that keep every Azure call inside its deadline (see batchk8s.deadline).

azure-core's RetryPolicy sleeps whatever `Retry-After` says (3600 means an hour), leaves the
transport's read timeout at 300 s, and lets a garbage `Retry-After` escape as a ValueError; the
Blob SDK's ExponentialRetry waits 15 s, 18 s, 24 s between attempts and 60 s per read. Here:

* each call may carry `deadline=` (a `Deadline`); without one, the policy's own budget applies, so
  no call is unbounded even where no door gave a deadline;
* before every attempt the connect timeout becomes min(10 s, time left) and the read timeout the
  time left;
* a pause (Retry-After or backoff) is taken only if time is left after it; otherwise the call ends
  at once with what the service last said (a 429 or 503 becomes a 502 naming it) or with the error
  that ended the attempt (a read that timed out is a 504), instead of sleeping into a deadline it
  cannot meet;
* `Retry-After` is read as seconds, or an HTTP date; a negative or zero value, or garbage, is "no
  hint" (the backoff applies, as azure-core does for 0), and nothing is waited beyond the deadline;
* attempts are bounded by `retry_total` as before: request counts do not change.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from batchk8s.deadline import CONNECT_SECONDS, Deadline

if TYPE_CHECKING:
    from azure.core.pipeline.policies import RetryPolicy

DEFAULT_BUDGET_SECONDS = 120.0  # a call made without a deadline still ends


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """A Retry-After header as seconds to wait: None when absent or unreadable, 0 for the past."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if math.isnan(seconds):
        return None
    return max(seconds, 0.0)


def _header_hint(response: Any) -> float | None:
    if response is None:
        return None
    headers = response.http_response.headers
    hint = retry_after_seconds(headers.get("Retry-After"))
    if hint is None:
        for name in ("retry-after-ms", "x-ms-retry-after-ms"):
            millis = retry_after_seconds(headers.get(name))
            if millis is not None:
                return millis / 1000.0
    return hint


def _deadline_of(options: dict[str, Any], budget: float) -> Deadline:
    deadline = options.pop("deadline", None)
    return deadline if isinstance(deadline, Deadline) else Deadline.after(budget)


def _fit_timeouts(options: dict[str, Any], transport: Any, deadline: Deadline) -> None:
    """Connect and read timeouts for the next attempt: no longer than what is left."""
    left = max(deadline.remaining(), 0.001)
    config = getattr(transport, "connection_config", None)
    connect = options.get("connection_timeout") or getattr(config, "timeout", CONNECT_SECONDS)
    read = options.get("read_timeout") or getattr(config, "read_timeout", left)
    options["connection_timeout"] = min(float(connect), CONNECT_SECONDS, left)
    options["read_timeout"] = min(float(read), left)


def core_policy(*, total: int = 10, backoff: float = 0.8, backoff_max: float = 120.0, retry_post: bool = False,
                budget: float = DEFAULT_BUDGET_SECONDS) -> RetryPolicy:
    """azure-core's RetryPolicy (ARM, Batch, Entra) bounded by the call's deadline.

    `retry_post`: also retry POST (Batch: every POST the app sends is safe to repeat, see batch.client).
    """
    from azure.core.pipeline.policies import RetryPolicy

    class DeadlineRetryPolicy(RetryPolicy):
        def __init__(self, **kwargs: Any):
            super().__init__(**kwargs)
            if retry_post:
                self._method_whitelist = frozenset(self._method_whitelist | {"POST"})

        def configure_retries(self, options: dict[str, Any]) -> dict[str, Any]:
            deadline = _deadline_of(options, budget)
            settings = super().configure_retries(options)
            settings["deadline"] = deadline
            settings["timeout"] = min(settings["timeout"], max(deadline.remaining(), 0.0))
            return settings

        def _configure_timeout(self, request: Any, absolute_timeout: float, is_response_error: bool) -> None:
            super()._configure_timeout(request, absolute_timeout, is_response_error)
            _fit_timeouts(request.context.options, request.context.transport,
                          Deadline.after(absolute_timeout))

        def increment(self, settings: dict[str, Any], response: Any = None, error: Any = None) -> bool:
            if not super().increment(settings, response=response, error=error):
                return False
            # No time for the pause and another attempt: stop here, so the caller gets what the service
            # last said (a 429 or 503 becomes a 502 naming it) or the error that ended the attempt.
            return settings["deadline"].allows(self._pause(settings, response))

        def _pause(self, settings: dict[str, Any], response: Any) -> float:
            hint = _header_hint(response) if hasattr(response, "http_response") else None
            return hint or self.get_backoff_time(settings)  # no hint, or "now": azure-core's backoff

        def sleep(self, settings: dict[str, Any], transport: Any, response: Any = None) -> None:
            pause = self._pause(settings, response)
            if pause > 0:
                transport.sleep(pause)

    return DeadlineRetryPolicy(retry_total=total, retry_backoff_factor=backoff, retry_backoff_max=backoff_max)


def storage_policy(*, total: int = 3, initial: float = 1.0, base: float = 2.0,
                   budget: float = DEFAULT_BUDGET_SECONDS) -> Any:
    """The Blob SDK's ExponentialRetry with short pauses, bounded by the call's deadline.

    Storage's policy reads no Retry-After and has no overall timeout of its own: the deadline gives it one.
    """
    from azure.storage.blob import ExponentialRetry

    class DeadlineStorageRetry(ExponentialRetry):
        def configure_retries(self, request: Any) -> dict[str, Any]:
            deadline = _deadline_of(request.context.options, budget)
            settings = super().configure_retries(request)
            settings["deadline"] = deadline
            settings["request"] = request
            deadline.check("Blob storage", "sending a request")
            _fit_timeouts(request.context.options, request.context.transport, deadline)
            return settings

        def increment(self, settings: dict[str, Any], request: Any, response: Any = None, error: Any = None) -> bool:
            if not super().increment(settings, request, response=response, error=error):
                return False
            settings["pause"] = self.get_backoff_time(settings)  # drawn once: the backoff has jitter
            return settings["deadline"].allows(settings["pause"])

        def sleep(self, settings: dict[str, Any], transport: Any) -> None:
            pause = settings.pop("pause", None)
            pause = self.get_backoff_time(settings) if pause is None else pause
            if pause > 0:
                transport.sleep(pause)
            pipeline_request = settings["request"]
            _fit_timeouts(pipeline_request.context.options, pipeline_request.context.transport, settings["deadline"])

    return DeadlineStorageRetry(initial_backoff=initial, increment_base=base, retry_total=total,
                                random_jitter_range=min(initial, 1.0))

