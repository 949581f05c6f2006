"""Dependencies point one way: doors -> services -> core, with no module importing its importer.

The scan reads every import in the source, the lazy ones inside functions included, because a cycle
hidden in a function body is still a cycle a reader has to untangle (and a service that imports a
door at call time still knows about HTTP).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "batchk8s"

DOORS = {"functions", "commands", "cli", "__main__"}
CORE = {"__version__", "settings", "credentials", "errors", "problems", "clock", "deadline", "retry", "ncrontab",
        "timer_budget", "caches"}


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def imports_of(path: Path) -> Iterator[str]:
    """The batchk8s modules `path` imports, as dotted names (a `from pkg import name` counts `pkg.name`
    when that is a module, else `pkg`)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name.startswith("batchk8s"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("batchk8s"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                yield candidate if candidate in MODULES else node.module


SOURCES = sorted(PACKAGE.rglob("*.py"))
MODULES = {module_name(path) for path in SOURCES}
GRAPH = {module_name(path): set(imports_of(path)) - {module_name(path)} for path in SOURCES}


def area(module: str) -> str:
    """batchk8s.batch.pools -> batch; batchk8s.settings -> settings."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "batchk8s"


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_scan_sees_the_package_and_its_lazy_imports():
    assert len(SOURCES) > 60 and "batchk8s.workflows.runs" in MODULES
    assert "batchk8s.batch.jobs" in GRAPH["batchk8s.workflows.runs"]
    # imported inside a function body, not at the top of the module
    assert "batchk8s.vmss_timer" in GRAPH["batchk8s.plan.vmss_timer"]


def test_the_cycle_finder_finds_a_cycle_through_three_modules():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_its_importer():
    assert cycles(GRAPH) == []


def test_no_area_imports_its_importer():
    areas: dict[str, set[str]] = {}
    for module, targets in GRAPH.items():
        areas.setdefault(area(module), set()).update(area(t) for t in targets if area(t) != area(module))
    assert cycles(areas) == []
    assert "workflows" not in areas["batch"], "workflows build on batch, never the reverse"


def test_services_know_nothing_of_the_doors_and_the_core_nothing_of_the_services():
    wrong = []
    for module, targets in GRAPH.items():
        mine = area(module)
        for target in targets:
            theirs = area(target)
            if mine not in DOORS and theirs in DOORS:
                wrong.append(f"{module} -> {target} (a service importing a door)")
            if mine in CORE and theirs not in CORE:
                wrong.append(f"{module} -> {target} (the core importing a service)")
    assert wrong == []


def test_only_the_doors_import_azure_functions():
    importers = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        names = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
        names += [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module]
        if any(name == "azure.functions" or name.startswith("azure.functions.") for name in names):
            importers.append(area(module_name(path)))
    assert importers and set(importers) <= {"functions"}
