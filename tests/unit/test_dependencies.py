"""What is deployed is what runs: croniter, the benchmark's peer evaluator, is a development dependency only."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def requirement_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(line.split(";")[0].split("[")[0].split("=")[0].split("<")[0].split(">")[0].strip().lower())
    return names


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def test_croniter_is_a_development_dependency_only():
    assert "croniter" not in requirement_names(ROOT / "requirements.txt")
    assert "croniter" in requirement_names(ROOT / "requirements-dev.txt")
    assert "croniter" in imported_modules(ROOT / "bench" / "bench_ncrontab.py")


def test_batchk8s_imports_no_croniter():
    sources = [ROOT / "function_app.py", *sorted((ROOT / "batchk8s").rglob("*.py"))]
    assert len(sources) > 50
    importers = [str(path.relative_to(ROOT)) for path in sources if "croniter" in imported_modules(path)]
    assert importers == []
    # The scan itself sees imports, including ones inside functions (batchk8s imports its SDKs lazily).
    assert "azure" in imported_modules(ROOT / "batchk8s" / "vmss.py")
