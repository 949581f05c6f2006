"""The infrastructure checkers, from the venv `make test` builds for them (.venv-tools).

checkov pins many packages that conflict with requirements-dev.txt, so it, pycep-parser,
azure-functions-doctor and actionlint live in their own venv and run as subprocesses. A missing tool
fails the test: nothing here is optional.
"""

from __future__ import annotations

import json
import os
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
TOOLS = ROOT / ".venv-tools" / "bin"
INFRA = ROOT / "infra"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))

# Dumps what pycep makes of each .bicep file given, as one JSON object keyed by path.
_PARSE = """
import json, sys
from pathlib import Path
from pycep import BicepParser
parser = BicepParser()
out = {}
for path in sys.argv[1:]:
    try:
        out[path] = {"template": parser.parse(file_path=Path(path))}
    except Exception as exc:
        out[path] = {"error": f"{type(exc).__name__}: {exc}"}
print(json.dumps(out, default=str))
"""


def tool(name: str) -> Path:
    path = TOOLS / name
    if not path.exists():
        pytest.fail(f"{path.relative_to(ROOT)} is missing: run `make test` (it installs requirements-tools.txt)")
    return path


def run(name: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    # No network here: tools that phone home (checkov's guideline download) are told not to.
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_NO_OUTPUT_GUIDELINES": "TRUE",
           "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run([str(tool(name)), *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env=env, check=False)


@cache
def parsed() -> dict[str, dict[str, Any]]:
    """Every .bicep file parsed by pycep-parser: {relative path: {"template": ...} or {"error": ...}}."""
    result = run("python", "-c", _PARSE, *(str(path) for path in BICEP_FILES))
    assert result.returncode == 0, result.stderr[-2000:]
    return {str(Path(path).relative_to(ROOT)): value for path, value in json.loads(result.stdout).items()}


def template(relative: str) -> dict[str, Any]:
    entry = parsed()[relative]
    assert "template" in entry, entry.get("error")
    return entry["template"]
