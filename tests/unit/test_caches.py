"""batchk8s.caches knows every process-wide cache of the package, and `reset_all` empties each.

The root fixture (tests/conftest.py) resets through it around every test, so a cache that forgot to
register would leak one test's settings, credentials or clients into the next: the scan below finds
every functools cache and every piece of module state in batchk8s/ and fails on one not registered.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import subprocess
import sys
import types
from datetime import UTC, datetime
from pathlib import Path

import batchk8s
from batchk8s import caches

ROOT = Path(__file__).resolve().parents[2]
CACHE_DECORATORS = {"lru_cache", "cache"}
EMPTY_CONTAINERS = {"dict", "list", "set", "OrderedDict", "defaultdict", "WeakValueDictionary", "WeakKeyDictionary"}
# Module state that is deliberately not reset, and why.
NOT_CACHES = {
    # Who holds a schedule claim: the worker's identity for the life of the process. A new value after a
    # settings reload would make the worker a stranger to the claims it holds.
    "batchk8s.schedules.reconcile._instance_id": "process identity",
}


def all_modules() -> list[types.ModuleType]:
    names = [info.name for info in pkgutil.walk_packages(batchk8s.__path__, "batchk8s.")
             if info.name != "batchk8s.__main__"]  # runs the command line when imported
    return [batchk8s] + [importlib.import_module(name) for name in names]


def _decorator_name(node: ast.expr) -> str:
    target = node.func if isinstance(node, ast.Call) else node
    return target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")


def _is_empty_container(node: ast.expr | None) -> bool:
    if isinstance(node, ast.Dict | ast.List | ast.Set):
        return not (getattr(node, "keys", None) or getattr(node, "elts", None))
    if not (isinstance(node, ast.Call) and _decorator_name(node) in EMPTY_CONTAINERS) or node.keywords:
        return False
    return len(node.args) <= (1 if _decorator_name(node) == "defaultdict" else 0)  # set("ab") is a constant


def module_state(module: types.ModuleType) -> tuple[list[str], set[str]]:
    """(qualified names of functions wearing a functools cache, names of module-level state): state is a
    name bound at module level to an empty container (filled at run time) or rebound through `global`."""
    tree = ast.parse(inspect.getsource(module))
    cached: list[str] = []
    state: set[str] = set()
    for node in tree.body:
        scopes = [(node, "")] if not isinstance(node, ast.ClassDef) else [
            (child, f"{node.name}.") for child in node.body]
        for child, prefix in scopes:
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) and any(
                    _decorator_name(d) in CACHE_DECORATORS for d in child.decorator_list):
                cached.append(prefix + child.name)
        if isinstance(node, ast.Assign) and _is_empty_container(node.value):
            state |= {target.id for target in node.targets if isinstance(target, ast.Name)}
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and _is_empty_container(node.value):
            state.add(node.target.id)
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            state |= set(node.names)
    return cached, state


def _names_used(function: types.FunctionType) -> set[str]:
    names: set[str] = set()
    codes = [function.__code__]
    while codes:
        code = codes.pop()
        names |= set(code.co_names)
        codes += [const for const in code.co_consts if isinstance(const, types.CodeType)]
    return names


def test_every_functools_cache_and_module_state_in_batchk8s_is_registered():
    modules = all_modules()  # importing them all registers every cache they define
    registered = caches.registered()
    owners = list(registered.values())
    unregistered: list[str] = []
    scanned_caches = scanned_state = 0
    for module in modules:
        if module is caches:
            continue
        cached, state = module_state(module)
        for qualname in cached:
            scanned_caches += 1
            owner = module
            for part in qualname.split("."):
                owner = getattr(owner, part)
            if not any(owner is registered_owner for registered_owner in owners):
                unregistered.append(f"{module.__name__}.{qualname} (functools cache)")
        clears = [owner for name, owner in registered.items() if owner.__module__ == module.__name__
                  and not hasattr(owner, "cache_clear")]
        for name in sorted(state):
            scanned_state += 1
            if f"{module.__name__}.{name}" in NOT_CACHES:
                continue
            if not any(name in _names_used(clear) for clear in clears):
                unregistered.append(f"{module.__name__}.{name} (module state no registered clear function touches)")
    assert not unregistered, "register these with batchk8s.caches.register:\n" + "\n".join(unregistered)
    # The scan saw what is known to be there (a scan that found nothing would pass vacuously).
    assert scanned_caches >= 5 and scanned_state >= 7, (scanned_caches, scanned_state)
    assert {"batchk8s.settings.clear_cache", "batchk8s.credentials._credential", "batchk8s.storage.clear_cache",
            "batchk8s.batch.client.clear_cache", "batchk8s.tes.clear_cache", "batchk8s.workflows._reset",
            "batchk8s.schedules.document._zone"} <= set(registered)


def test_the_scan_finds_a_cache_and_state_left_unregistered(tmp_path, monkeypatch):
    """The check above fails for the two kinds of cache it looks for (so its silence means something)."""
    (tmp_path / "leaky.py").write_text(
        "from functools import lru_cache\n\n_seen: dict[str, int] = {}\n_last = None\n\n\n"
        "@lru_cache\ndef lookup(name):\n    return name\n\n\n"
        "def remember(value):\n    global _last\n    _last = value\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import leaky

    assert module_state(leaky) == (["lookup"], {"_seen", "_last"})


def test_reset_all_empties_every_cache_and_closes_clients():
    from batchk8s import credentials, settings, storage, tes
    from batchk8s.batch import client as batch_client
    from batchk8s.schedules import document
    from batchk8s.workflows import register, workflows

    configured = settings.load_settings({
        "AZURE_AD_TENANT_ID": "00000000-0000-0000-0000-000000000001", "AZURE_SP_CLIENT_ID": "app",
        "AZURE_SP_CLIENT_SECRET": "not-a-real-secret", "AZURE_BATCH_ACCOUNT_URL": "https://acct.westeurope.batch.azure.com",
        "AZURE_STORAGE_ACCOUNT_NAME": "artifacts", "AZURE_STORAGE_ACCOUNT_KEY": "a2V5",
        "TESK_API_URL": "https://tes.example.net"})
    current = settings.current_settings()
    credential = credentials.get_credential(configured)
    blob = storage.blob_service(configured)
    batch = batch_client.batch_client(configured)
    engine = tes.client_for(configured)
    parsed = document.parse_cached('{"rules": []}', now=datetime(2026, 1, 14, tzinfo=UTC))
    builtin = [workflow.name for workflow in workflows()]
    register("unit-cache-probe", "registered by a test")(lambda s, c: [])
    assert "unit-cache-probe" in [workflow.name for workflow in workflows()]

    caches.reset_all()

    assert settings.current_settings() is not current
    assert credentials.get_credential(configured) is not credential
    assert storage.blob_service(configured) is not blob
    assert blob._client._client._pipeline._transport.session is None  # closed, not merely forgotten
    assert batch_client.batch_client(configured) is not batch
    assert tes.client_for(configured) is not engine
    assert document.parse_cached('{"rules": []}', now=datetime(2026, 1, 14, tzinfo=UTC)) is not parsed
    assert document._zone.cache_info().currsize == 0 and document._gap_days.cache_info().currsize == 0
    assert [workflow.name for workflow in workflows()] == builtin


def test_a_built_in_workflow_unregistered_by_a_test_comes_back():
    from batchk8s.workflows import unregister, workflows

    before = [workflow.name for workflow in workflows()]
    unregister(before[0])
    caches.reset_all()
    assert [workflow.name for workflow in workflows()] == before


def test_the_registry_costs_a_cold_start_nothing():
    """Importing it loads nothing beyond the standard library, and a bare import of batchk8s.caches
    registers nothing (each cache registers with its own module, when that is imported)."""
    probe = ("import sys; before = set(sys.modules); import batchk8s.caches as c;"
             "print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] in ('azure', 'batchk8s')"
             " and m not in ('batchk8s', 'batchk8s.caches')), len(c.registered()))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "0"], out.stdout
