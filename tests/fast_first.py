"""pytest plugin for `make mutate`: run the unit tests a mutant reaches before the integration ones.

mutmut hands pytest the tests that cover a mutated function in no particular order and stops at the
first failure (-x). Unit tests fail fastest and need no emulator, so a killed mutant rarely pays for
starting Azurite. Loaded only by the mutation run (`-p tests.fast_first` in [tool.mutmut]).
"""

from __future__ import annotations

import pytest


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: not item.nodeid.startswith("tests/unit/"))
