"""Every state a Batch compute node can be in, what it means here, and when a pool cannot get better.

The Batch data plane (api-version 2025-06-01, `BatchNodeState`) has sixteen node states. Waiting on
a pool only makes sense while something is still moving, so each state falls in one class:

- ready: the node runs tasks (`idle`, `running`);
- transitional: it becomes ready or fails on its own (booting, start task, reboot, reimage, OS upgrade);
- failed: it stays unusable until someone acts (start task failed, unusable, lost contact, scheduling off);
- gone: its VM was taken away or is leaving (spot preemption, leaving the pool, deallocation).

`judge_pool` turns a pool's state, allocation state, node states and resize errors into a verdict:
whether it is ready, whether it is settled (nothing will change without an action, so a wait ends
now instead of at its timeout) and one sentence saying why. Every wait on a pool or on the tasks of
a pool uses it, and control_plane uses `node_class` to decide whether a node can take tasks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

READY = "ready"
TRANSITIONAL = "transitional"
FAILED = "failed"
GONE = "gone"
CLASSES = (READY, TRANSITIONAL, FAILED, GONE)

# state -> (class, what it means for the cluster on the node)
NODE_STATES: dict[str, tuple[str, str]] = {
    "idle": (READY, "ready for tasks"),
    "running": (READY, "running tasks"),
    "creating": (TRANSITIONAL, "its VM was obtained and is joining the pool"),
    "starting": (TRANSITIONAL, "the Batch agent is starting"),
    "waitingforstarttask": (TRANSITIONAL, "the start task (the Kubernetes bootstrap) is running"),
    "rebooting": (TRANSITIONAL, "rebooting; the start task runs again"),
    "reimaging": (TRANSITIONAL, "reimaging; the start task runs again on a fresh disk"),
    "upgradingos": (TRANSITIONAL, "an OS upgrade is in progress"),
    "starttaskfailed": (FAILED, "the start task failed after its retries"),
    "unusable": (FAILED, "Batch cannot run tasks on it (node errors)"),
    "unknown": (FAILED, "Batch lost contact with it"),
    "offline": (FAILED, "task scheduling is disabled on it"),
    "preempted": (GONE, "its spot VM was reclaimed by Azure"),
    "leavingpool": (GONE, "it is leaving the pool"),
    "deallocating": (GONE, "it is being deallocated"),
    "deallocated": (GONE, "it is deallocated"),
}
# Gone, but still on the way out: the pool changes again when they finish.
LEAVING = frozenset({"leavingpool", "deallocating"})


def node_class(state: str | None) -> str:
    """The class of a node state. A state newer than this table is transitional: waits stay bounded
    by their timeout, and the verdict names the state."""
    return NODE_STATES.get((state or "").lower(), (TRANSITIONAL, ""))[0]


def meaning(state: str | None) -> str:
    known = NODE_STATES.get((state or "").lower())
    return known[1] if known else "a state this version of batchk8s does not know"


def can_run_tasks(state: str | None) -> bool:
    return node_class(state) == READY


@dataclass(frozen=True)
class PoolVerdict:
    """What a pool's state means for whoever waits on it."""

    ready: bool  # allocation steady, at least one node, every node ready
    settled: bool  # nothing changes without an action: waiting longer cannot help
    failed: bool  # something needs an action (failed or gone nodes, resize errors, pool being deleted)
    reason: str
    classes: dict[str, int]

    @property
    def usable_nodes(self) -> int:
        return self.classes.get(READY, 0)

    def to_dict(self) -> dict[str, Any]:
        return {"ready": self.ready, "settled": self.settled, "failed": self.failed, "reason": self.reason,
                "nodeClasses": dict(self.classes)}


def _describe(states: Counter[str]) -> str:
    return ", ".join(f"{n} {state} ({meaning(state)})" for state, n in sorted(states.items()))


def judge_pool(pool_state: str | None, allocation_state: str | None, node_states: Iterable[str | None],
               resize_errors: Iterable[str] = ()) -> PoolVerdict:
    """The verdict for one reading of a pool (all arguments as Batch reports them, lower case)."""
    states = Counter((state or "unknown").lower() for state in node_states)
    classes = {name: 0 for name in CLASSES}
    for state, count in states.items():
        classes[node_class(state)] += count
    errors = sorted(set(resize_errors))
    total = sum(states.values())
    if (pool_state or "").lower() == "deleting":
        return PoolVerdict(False, True, True, "the pool is being deleted", classes)
    moving_nodes = Counter({s: n for s, n in states.items() if node_class(s) == TRANSITIONAL or s in LEAVING})
    broken = Counter({s: n for s, n in states.items() if node_class(s) in (FAILED, GONE) and s not in LEAVING})
    steady = (allocation_state or "").lower() == "steady"
    ready = steady and total > 0 and classes[READY] == total
    failed = bool(broken) or bool(errors)
    settled = steady and not moving_nodes
    parts = []
    if errors:
        parts.append(f"resize errors: {', '.join(errors)}")
    if broken:
        parts.append(_describe(broken))
    if ready:
        reason = "; ".join([f"ready: {total} node(s) ready", *parts])
    elif not settled:
        waiting = [] if steady else [f"allocation {allocation_state}"]
        waiting += [_describe(moving_nodes)] if moving_nodes else []
        reason = "waiting: " + "; ".join(waiting + parts)
    elif total == 0 and not errors:
        reason = "the pool has no nodes (resize it to add some)"
        failed = False
    else:
        reason = (f"cannot get better without an action: {classes[READY]} of {total} node(s) ready; "
                  + "; ".join(parts or ["no node ready"]))
    return PoolVerdict(ready, settled or ready, failed, reason, classes)
