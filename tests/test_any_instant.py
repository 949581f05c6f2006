"""The suite passes at any date and time: every test that depends on "now" is rerun at pinned instants.

tests/conftest.py pins batchk8s.clock to one instant and fails any test that reads it without the `clock`
marker, so the marked tests are exactly the time-dependent ones. Here they run again, in a fresh pytest
process each, at instants where calendars disagree: summer and winter time, a weekend, a Friday night
that is already Saturday in Europe, and the days the clocks change on either side of the Atlantic.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

INSTANTS = {
    "summer weekday": "2026-07-15T12:00:00+00:00",
    "winter weekend night": "2026-01-17T23:30:00+00:00",
    "Friday 23:30 UTC, Saturday in Berlin": "2026-06-26T23:30:00+00:00",
    "Europe springs forward within the hour": "2026-03-29T00:30:00+00:00",
    "New York falls back within the hour": "2026-11-01T05:30:00+00:00",
}


PYTEST = [sys.executable, "-m", "pytest", "-q", "-m", "clock", "-p", "no:cacheprovider", str(ROOT / "tests")]


@pytest.fixture(scope="module")
def runs() -> dict[str, tuple[int, str]]:
    """The clock-marked tests at every instant, two pytest processes at a time: instant -> (exit, output)."""
    started: dict[str, subprocess.Popen[str]] = {}
    finished: dict[str, tuple[int, str]] = {}
    for instant in INSTANTS.values():
        if len(started) - len(finished) >= 2:
            _wait_one(started, finished)
        started[instant] = subprocess.Popen(PYTEST, cwd=ROOT, env={**os.environ, "BATCHK8S_TEST_NOW": instant},
                                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    while len(finished) < len(started):
        _wait_one(started, finished)
    return finished


def _wait_one(started: dict[str, subprocess.Popen[str]], finished: dict[str, tuple[int, str]]) -> None:
    instant = next(i for i in started if i not in finished)
    output, _ = started[instant].communicate(timeout=300)
    finished[instant] = (started[instant].returncode, output)


@pytest.fixture(scope="module")
def marked() -> int:
    """How many tests carry the clock marker, as pytest collects them."""
    listing = subprocess.run([*PYTEST, "--collect-only"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    return sum(1 for line in listing.stdout.splitlines() if "::" in line)


@pytest.mark.parametrize("instant", INSTANTS.values(), ids=INSTANTS.keys())
def test_time_dependent_tests_pass_at(instant: str, runs: dict[str, tuple[int, str]], marked: int):
    code, output = runs[instant]
    summary = output.strip().splitlines()[-1]
    assert code == 0, f"at {instant}:\n{output[-6000:]}"
    assert marked >= 10 and summary.startswith(f"{marked} passed, "), summary
    assert not re.search(r"\d+ (failed|skipped|error)", summary), summary
