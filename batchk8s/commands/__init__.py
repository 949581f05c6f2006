"""CLI verbs, one module per area, each exposing `register(subparsers, common)`; and what they share:
the `Output` a handler returns and the argparse types that speak the project's error wording.

`batchk8s.cli` imports the verb modules and the verbs import this package, never `cli`: the door's
dependencies point one way like everyone else's.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from batchk8s.errors import InputError
from batchk8s.problems import parse_whole_number


@dataclass
class Output:
    """What a verb produced: `data` for --json, `text` for people, and its exit code."""

    data: Any
    text: str = ""
    exit_code: int = 0


def int_between(low: int, high: int) -> Callable[[str], int]:
    """An argparse type for a whole number from `low` to `high`, both included, in the toolkit's words."""

    def parse(value: str) -> int:
        try:
            return parse_whole_number(value, low, high)
        except ValueError as exc:  # argparse would print its own "invalid value" for a ValueError
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def one_of(option: str, values: Sequence[str]) -> Callable[[str], str]:
    """An argparse type for a fixed set of words (any case): an unknown one is the project's one-line
    InputError naming `option`, not argparse's usage text."""

    def parse(value: str) -> str:
        if value.upper() not in values:
            raise InputError.for_field(option, f"must be one of {', '.join(values)}, not {value!r}")
        return value.upper()

    return parse


def read_json_file(path: str, field: str) -> Any:
    """A JSON document from a file (or '-' for stdin), as InputError naming `field` when it is not."""
    try:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()  # noqa: SIM115
    except OSError as exc:
        raise InputError.for_field(field, f"cannot read {path}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InputError.for_field(field, f"{path} is not valid JSON ({exc})") from None
