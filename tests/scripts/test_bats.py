"""Run the bats tests of scripts/ (tests/scripts/*.bats) as part of pytest."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# npm links bats into node_modules/.bin; some npm versions skip packages that
# declare their executables through `directories.bin`, as bats does.
CANDIDATES = [ROOT / "node_modules" / ".bin" / "bats", ROOT / "node_modules" / "bats" / "bin" / "bats"]


def test_bats_suite() -> None:
    bats = next((path for path in CANDIDATES if path.is_file()), None)
    if bats is None:
        pytest.skip("bats is not installed: run `npm ci` (node_modules/.bin/bats)")
    result = subprocess.run(
        [str(bats), "--jobs", "1", str(ROOT / "tests" / "scripts")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert result.returncode == 0, f"bats failed:\n{result.stdout}\n{result.stderr}"
