"""What a script test does when a tool it needs is missing."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """CI sets CI=true; any value but empty, 0 or false counts."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false")


def missing_tool(message: str) -> NoReturn:
    """Skip on a developer machine, fail in CI: a CI run must never go green without running the tool."""
    if in_ci():
        pytest.fail(f"{message} (CI must run it)")
    pytest.skip(message)
