"""The parse rules every input shares, their one wording, and the collector that reports them together.

An HTTP body, a CLI option, an app setting, a schedule document and a TES task are all checked the
same way: every problem is collected with the field it concerns, then raised as ONE error whose
`details` list them all ({"field", "message"}), so a caller fixes everything in one go instead of
one 400 at a time. The rules and their sentences live here, once:

- a whole number in a range: "must be a whole number from 0 to 1000, not 2.5" (a JSON value must be a
  number: true, 2.5 and "5" are refused; text from the environment or a command line is read with
  `parse_whole_number`);
- a string matching a pattern as a whole (`re.fullmatch`, so an unanchored pattern cannot pass a
  value with a trailing newline or extra text): "<rule>, not 'a b'";
- an unknown field: "unknown field 'nmae' (did you mean 'name'?)", or the known fields when nothing is
  close;
- true or false: "must be true or false, not a string".

A wrong type is named by its JSON kind ("not a boolean", "not null"); a value of the right type is
shown as an excerpt ("not 0", "not 'tmp'"), never whole.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from batchk8s.errors import BatchK8sError, InputError, excerpt

Problem = dict[str, str]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


# --- how fields and values are named ---------------------------------------------------------------


def child(path: str, key: str | int) -> str:
    """The field name of `key` inside `path`: `executors[0].command`; a key that is not an identifier is
    quoted (`tags["with space"]`), so every field name reads back unambiguously."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _IDENTIFIER.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key)}]"


def path_of(parts: Iterable[str | int]) -> str:
    """The same notation for a sequence of keys (e.g. a jsonschema error's `absolute_path`)."""
    path = ""
    for part in parts:
        path = child(path, part)
    return path


def kind(value: Any) -> str:
    """A value's JSON kind, as a message names a wrong type ("not a boolean"); a value that is not JSON
    is named by its Python type."""
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
            dict: "an object"}.get(type(value), type(value).__name__)


def _shown(value: Any) -> str:
    try:
        return excerpt(value)
    except ValueError:  # an int past Python's digit limit for str()
        return "a number too long to show"


# --- the rules: each returns None when the value passes, else the one message for it ---------------


def whole_number_rule(low: int, high: int) -> str:
    """The rule's own words, for doors that show what was given themselves (settings, argparse)."""
    return f"must be a whole number from {low} to {high}"


def whole_number_problem(value: Any, low: int, high: int) -> str | None:
    """A JSON number from `low` to `high`, both included. Booleans are not numbers (JSON's true is not 1),
    and a float is refused even when whole (2.0): the schemas say integer."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{whole_number_rule(low, high)}, not {kind(value)}"
    if isinstance(value, float) or not low <= value <= high:
        return f"{whole_number_rule(low, high)}, not {_shown(value)}"
    return None


def parse_whole_number(text: str, low: int, high: int) -> int:
    """A whole number written as text (an app setting, a query parameter, a CLI option), from `low` to
    `high`; ValueError with the rule's words otherwise ("2.5" and "lots" are not whole numbers)."""
    try:
        number = int(text)
    except (TypeError, ValueError):
        raise ValueError(whole_number_rule(low, high)) from None
    if not low <= number <= high:
        raise ValueError(whole_number_rule(low, high))
    return number


def pattern_problem(value: Any, pattern: re.Pattern[str], rule: str) -> str | None:
    """A string that `pattern` matches as a whole. `rule` says in words what the pattern wants ("must be
    1-64 letters, digits, '-' or '_'"); wrong types and empty strings are problems too, never a reason to
    fall back to a default."""
    if not isinstance(value, str):
        return f"{rule}, not {kind(value)}"
    if not pattern.fullmatch(value):
        return f"{rule}, not {_shown(value)}"
    return None


def unknown_field_problem(key: Any, known: Iterable[str]) -> str:
    """The message for a field nobody reads: a typo would otherwise be ignored silently. Names the known
    field the key most likely meant (same letters in another case, or a close spelling), else lists them."""
    known = sorted(set(known), key=str.casefold)
    if not known:
        return f"unknown field {_shown(key)} (no fields are accepted)"
    meant = closest(str(key), known)
    if meant is not None:
        return f"unknown field {_shown(key)} (did you mean {meant!r}?)"
    return f"unknown field {_shown(key)} (known: {', '.join(known)})"


def closest(key: str, known: Iterable[str]) -> str | None:
    """The known name `key` most likely meant: one that differs only in case, else the closest spelling
    difflib finds (ratio 0.6 or more), else None."""
    import difflib  # only when a key is unknown: not on every cold start

    by_fold = {name.casefold(): name for name in known}
    if key.casefold() in by_fold:
        return by_fold[key.casefold()]
    close = difflib.get_close_matches(key.casefold(), list(by_fold), n=1)
    return by_fold[close[0]] if close else None


def boolean_problem(value: Any) -> str | None:
    if not isinstance(value, bool):
        return f"must be true or false, not {kind(value)}"
    return None


# --- the collector ---------------------------------------------------------------------------------


class Problems:
    """Every problem found in one input, in the order found; `raise_if_any` raises them as one error.

    The checks add a problem and return None when a value fails, and return the value when it passes,
    so a caller builds its result from what they return and raises once at the end.
    """

    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(self, field: str, message: str) -> None:
        self.items.append({"field": field, "message": message})

    def extend(self, problems: Iterable[Mapping[str, Any]]) -> None:
        """Problems found elsewhere (another error's `details`), kept in their order."""
        for problem in problems:
            self.add(str(problem["field"]), str(problem["message"]))

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Problem]:
        return iter(self.items)

    def unknown_fields(self, value: Mapping[str, Any], known: Iterable[str], path: str = "") -> list[str]:
        """Report each key of `value` that is not in `known`, in the order given; return those keys."""
        known = set(known)
        unknown = [key for key in value if key not in known]
        for key in unknown:
            self.add(child(path, str(key)), unknown_field_problem(key, known))
        return unknown

    def whole_number(self, field: str, value: Any, low: int, high: int) -> int | None:
        """`value` when it is a whole number from `low` to `high` (see `whole_number_problem`), else None."""
        return self._check(field, value, whole_number_problem(value, low, high))

    def matches(self, field: str, value: Any, pattern: re.Pattern[str], rule: str) -> str | None:
        """`value` when it is a string `pattern` matches as a whole, else None."""
        return self._check(field, value, pattern_problem(value, pattern, rule))

    def boolean(self, field: str, value: Any) -> bool | None:
        """`value` when it is true or false, else None."""
        return self._check(field, value, boolean_problem(value))

    def _check(self, field: str, value: Any, problem: str | None) -> Any:
        if problem is not None:
            self.add(field, problem)
            return None
        return value

    def raise_if_any(self, summary: str, error: type[BatchK8sError] = InputError) -> None:
        """Raise one `error` ("<summary>: field, field") carrying every problem in `details`. The error type
        is the caller's: InputError (400) for what a caller sent, ConfigError for the app's settings."""
        if self.items:
            raise error.from_problems(list(self.items), summary)
