"""Run the bats tests of scripts/ (tests/scripts/*.bats) as part of pytest."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.scripts.tools import in_ci, missing_tool

ROOT = Path(__file__).resolve().parents[2]
# npm 11 does not link bats into node_modules/.bin (bats declares its executables through
# `directories.bin`), so the package's own entry point comes first.
CANDIDATES = [ROOT / "node_modules" / "bats" / "bin" / "bats", ROOT / "node_modules" / ".bin" / "bats"]


def test_bats_suite() -> None:
    bats = next((path for path in CANDIDATES if path.is_file()), None)
    if bats is None:
        missing_tool("bats is not installed: run `npm ci` (node_modules/bats/bin/bats)")
    result = subprocess.run(
        ["bash", str(bats), "--jobs", "1", str(ROOT / "tests" / "scripts")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,  # 52 tests, about a minute on a quiet machine; the suite shares 2 cores
        check=False,
    )
    assert result.returncode == 0, f"bats failed:\n{result.stdout}\n{result.stderr}"
    # A suite whose tests all skipped (e.g. no Azurite) would still exit 0.
    assert " # skip" not in result.stdout or not in_ci(), result.stdout
