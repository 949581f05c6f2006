"""The Makefile's targets: every one it declares exists, and `make unit` runs the unit tests."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def rules() -> dict[str, list[str]]:
    """Each explicit target with its recipe lines (tab-indented lines that follow it)."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in (ROOT / "Makefile").read_text(encoding="utf-8").splitlines():
        if line.startswith("\t") and current is not None:
            current.append(line.strip())
        elif match := re.match(r"^([A-Za-z][\w.-]*):(?!=)", line):
            current = found.setdefault(match.group(1), [])
        elif not line.startswith("\t"):
            current = None
    return found


def phony() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return {name for line in re.findall(r"^\.PHONY:(.*)$", text, re.M) for name in line.split()}


def test_every_declared_target_has_a_rule():
    assert {"test", "unit", "lint", "bench"} <= phony()
    assert phony() <= set(rules()) - {".PHONY"}, sorted(phony() - set(rules()))


def test_make_unit_runs_the_unit_tests():
    assert rules()["unit"] == ["$(PY) -m pytest -q tests/unit"]


def test_every_make_target_the_docs_name_exists():
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    named = {name for path in docs for name in re.findall(r"`make ([a-z][\w-]*)", path.read_text(encoding="utf-8"))}
    assert "unit" in named
    assert named <= set(rules()), sorted(named - set(rules()))
