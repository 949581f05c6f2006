"""A missing script-test tool skips on a developer machine but fails CI, so CI cannot go green without bats."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.scripts import test_bats
from tests.scripts.tools import in_ci, missing_tool


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("1", True), ("", False), ("false", False)])
def test_ci_detection(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    monkeypatch.setenv("CI", value)
    assert in_ci() is expected


def test_missing_tool_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="bats is gone"):
        missing_tool("bats is gone")


def test_missing_bats_fails_the_suite_in_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CI", "true")
    monkeypatch.setattr(test_bats, "CANDIDATES", [tmp_path / "bats"])
    with pytest.raises(pytest.fail.Exception, match="bats is not installed"):
        test_bats.test_bats_suite()
