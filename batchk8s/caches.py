"""The process-wide caches of batchk8s, and one call that empties them all.

A Functions worker keeps settings, credentials, SDK clients and parsed documents for its whole life
(app settings change = restart). Anything that runs several configurations in one process (tests, a
host that reloads settings) must forget them together: a credential kept for old settings would sign
the next call with the wrong identity. So every cache registers its clear function where it is defined:

    @caches.register
    @lru_cache(maxsize=8)
    def _zone(name): ...

    @caches.register
    def clear_cache():  # forgets the module's own dict of clients
        ...

and `reset_all()` calls each. This module imports nothing beyond the standard library, so registering
costs a cold start nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

# Keyed by the owner's module and name: re-importing a module replaces its entry instead of adding one.
_clears: dict[str, tuple[Callable[..., Any], Callable[[], None]]] = {}


def register(owner: F) -> F:
    """Register `owner` and return it unchanged: a functools cache (its `cache_clear` is what runs) or a
    function of no arguments that forgets a module's own cached state."""
    clear = getattr(owner, "cache_clear", owner)
    _clears[f"{owner.__module__}.{owner.__qualname__}"] = (owner, clear)
    return owner


def registered() -> dict[str, Callable[..., Any]]:
    """The registered owners by qualified name (what `reset_all` empties)."""
    return {name: owner for name, (owner, _clear) in _clears.items()}


def reset_all() -> None:
    """Empty every registered cache (the clear functions of client caches also close the clients)."""
    for _owner, clear in list(_clears.values()):
        clear()
