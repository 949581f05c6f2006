"""The workflow registry: named workflows that become the tasks of one Batch job.

A workflow is a function `(settings, context) -> list[TaskSpec]`, registered under a name:

    from batchk8s.batch.tasks import TaskSpec, bash_command
    from batchk8s.workflows import register

    @register("disk-usage", "Disk usage of every node's shared directory")
    def disk_usage(settings, context):
        return [TaskSpec("df", bash_command('df -h "$AZ_BATCH_NODE_SHARED_DIR"'))]

Two ways to add one: drop a module into this package (every module here whose name does not
start with '_' is imported when the registry is first read, so its `@register` runs), or call
`register(...)` from your own code before the app reads the registry. Names are lower-case
letters, digits and '-'; registering a taken name is an error, so a typo cannot silently replace
a built-in.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from batchk8s import caches
from batchk8s.batch.tasks import TaskSpec
from batchk8s.errors import NotFoundError
from batchk8s.settings import Settings

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


@dataclass(frozen=True)
class WorkflowContext:
    """Where the workflow runs: the pool (its Kubernetes cluster) and the job its tasks join."""

    pool_id: str
    job_id: str


WorkflowFunction = Callable[[Settings, WorkflowContext], list[TaskSpec]]


@dataclass(frozen=True)
class Workflow:
    name: str
    description: str
    build: WorkflowFunction

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description}


_registry: dict[str, Workflow] = {}
_builtin: dict[str, Workflow] = {}  # the ones this package's modules define: what `_reset` restores
_lock = threading.RLock()
_discovered = False


def register(name: str, description: str) -> Callable[[WorkflowFunction], WorkflowFunction]:
    """Decorator: add `function` to the registry as `name`."""
    if not NAME.fullmatch(name):
        raise ValueError(f"workflow name {name!r} must be lower-case letters, digits and '-' (at most 63)")

    def add(function: WorkflowFunction) -> WorkflowFunction:
        with _lock:
            current = _registry.get(name)
            if current is not None and current.build is not function:
                raise ValueError(f"workflow {name!r} is already registered by {current.build.__module__}")
            _registry[name] = Workflow(name, description, function)
            if function.__module__.startswith(f"{__name__}."):
                _builtin[name] = _registry[name]
        return function

    return add


def unregister(name: str) -> None:
    """Remove a workflow (tests, or a deployment that wants to hide a built-in)."""
    with _lock:
        _registry.pop(name, None)


@caches.register
def _reset() -> None:
    """Back to the built-in workflows: drop the ones registered from elsewhere, restore unregistered built-ins.
    (Their modules stay imported, so discovery could not register them again.)"""
    global _discovered
    with _lock:
        _registry.clear()
        _registry.update(_builtin)
        _discovered = False


def discover() -> None:
    """Import every public module of this package once, so module-defined workflows register."""
    global _discovered
    with _lock:
        if _discovered:
            return
        for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
            if not module.name.startswith("_"):
                importlib.import_module(f"{__name__}.{module.name}")
        _discovered = True


def workflows() -> list[Workflow]:
    discover()
    with _lock:
        return sorted(_registry.values(), key=lambda w: w.name)


def get_workflow(name: str) -> Workflow:
    """The named workflow, or 404 listing the known ones."""
    known = workflows()
    for workflow in known:
        if workflow.name == name:
            return workflow
    names = [w.name for w in known]
    raise NotFoundError(f"unknown workflow {name!r}; known workflows: {', '.join(names)}", code="WorkflowNotFound",
                        details=[{"field": "name", "message": f"must be one of {', '.join(names)}"}])
