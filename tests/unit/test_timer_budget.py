"""The timers' budgets: inside the host's functionTimeout, and a tick's inside its minute."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from batchk8s import timer_budget
from batchk8s.errors import UpstreamTimeoutError

ROOT = Path(__file__).resolve().parents[2]


def test_the_function_budget_is_host_json_timeout_minus_the_margin():
    hours, minutes, seconds = (int(part) for part in json.loads((ROOT / "host.json").read_text())[
        "functionTimeout"].split(":"))
    assert hours * 3600 + minutes * 60 + seconds == timer_budget.FUNCTION_TIMEOUT
    assert timer_budget.function_budget().seconds == timer_budget.FUNCTION_TIMEOUT - timer_budget.MARGIN > 0


def test_a_tick_budget_ends_well_before_the_next_tick():
    assert 0 < timer_budget.tick_budget().seconds <= 45


def test_remaining_counts_down_and_stops_at_zero():
    budget = timer_budget.Deadline.after(0.05)
    assert 0 < budget.remaining() <= 0.05
    time.sleep(0.06)
    assert budget.remaining() == 0


def test_within_gives_the_answer_or_gives_up_naming_what():
    assert timer_budget.within(1, "a quick call", lambda: 42) == 42
    with pytest.raises(UpstreamTimeoutError, match=r"a slow call did not answer within 0\.05 s"):
        timer_budget.within(0.05, "a slow call", lambda: time.sleep(1))
    with pytest.raises(ZeroDivisionError):
        timer_budget.within(1, "a failing call", lambda: 1 / 0)
