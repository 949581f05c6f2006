"""The Functions app as the host indexes it, built once per test session.

`FunctionApp.get_functions()` may run only once per app object (a second call fails on duplicate
names), so every test that calls functions through the index shares this one fresh copy.
"""

from __future__ import annotations

import functools
import runpy
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@functools.cache
def indexed_functions() -> dict[str, Any]:
    """Registered functions by name, from a fresh load of function_app.py."""
    app = runpy.run_path(str(ROOT / "function_app.py"))["app"]
    return {function.get_function_name(): function for function in app.get_functions()}
