"""pytest plugin for `make mutate` (loaded only there, by `-p tests.fast_first` in [tool.mutmut]).

Unit tests first: mutmut hands pytest the tests that reach a mutated function in no particular order
and stops at the first failure (-x). Unit tests fail fastest and need no emulator, so a killed mutant
rarely pays for starting Azurite.

No orphans: mutmut stops a mutant that runs too long with SIGXCPU, which ends the process without
pytest's teardown, so the Azurite it started would be left running. The handler stops this process's
children first, then dies of the same signal (mutmut still reads it as a timeout).
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path
from types import FrameType

import pytest


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: not item.nodeid.startswith("tests/unit/"))


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _stop_children_and_die(signum: int, frame: FrameType | None) -> None:
    for child in _children(os.getpid()):
        with contextlib.suppress(OSError):  # already gone
            os.kill(child, signal.SIGTERM)
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def pytest_configure(config: pytest.Config) -> None:
    if Path("/proc/self/stat").exists():
        signal.signal(signal.SIGXCPU, _stop_children_and_die)
