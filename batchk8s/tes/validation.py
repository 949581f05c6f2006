"""Checks a TES 1.1 task document before it is sent, reporting every problem with its JSON path.

Hand-written rather than a JSON Schema run at submission: jsonschema is a test-only dependency
(the Functions app would have to ship it and a vendored copy of the OpenAPI schemas), the schema's
own messages do not say which field in caller terms, and the spec states rules in prose that a
schema cannot express (absolute paths, `url` unless `content`, `path_prefix` with wildcards,
non-empty executors and argv). The tests hold this validator to the OpenAPI document: everything
the schema rejects is rejected here under the same path; the extra rules are listed in STRICTER.

Stricter than the schema, on purpose (a TES server silently ignoring a typo such as `executor` or
`comand` costs a genomics user an hour of compute):
- unknown fields are rejected at every level;
- read-only fields (`id`, `state`, `logs`, `creation_time`) are rejected in a submission;
- numbers are checked for sense (cpu_cores >= 1, ram_gb/disk_gb > 0);
- an input's or output's `path` must not be empty (an empty optional `workdir`/`stdin`/`stdout`/
  `stderr` reads as not set).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from batchk8s.errors import InputError, excerpt
from batchk8s.problems import Problems, child, kind, unknown_field_problem

STATES = ("UNKNOWN", "QUEUED", "INITIALIZING", "RUNNING", "PAUSED", "COMPLETE", "EXECUTOR_ERROR",
          "SYSTEM_ERROR", "CANCELED", "PREEMPTED", "CANCELING")
TERMINAL_STATES = frozenset({"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED"})
VIEWS = ("MINIMAL", "BASIC", "FULL")
FILE_TYPES = ("FILE", "DIRECTORY")
READ_ONLY = ("id", "state", "logs", "creation_time")
INT32_MAX = 2**31 - 1
# POSIX pattern-matching characters (IEEE Std 1003.1-2017, 2.13): an output path with any of them
# selects several files and needs `path_prefix`.
WILDCARD = re.compile(r"[*?\[]")


class _Checker(Problems):
    """The TES objects' rules over the shared collector; a problem with the task itself is named `task`."""

    def add(self, path: str, message: str) -> None:
        super().add(path or "task", message)

    # -- type checks: each returns whether the value has the type, so callers can go deeper --

    def string(self, path: str, value: Any, *, required: bool = False, non_empty: bool = False) -> bool:
        if not isinstance(value, str):
            self.add(path, f"must be a string, not {kind(value)}")
            return False
        if (required or non_empty) and not value.strip():
            self.add(path, "must not be empty")
            return False
        return True

    def absolute_path(self, path: str, value: Any, *, required: bool = False) -> None:
        if self.string(path, value, required=required) and value.strip() and not value.startswith("/"):
            self.add(path, f"must be an absolute path inside the container (starting with '/'), not {excerpt(value)}")

    def positive_number(self, path: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.add(path, f"must be a number, not {kind(value)}")
        elif not (math.isfinite(value) and value > 0):
            self.add(path, f"must be a finite number greater than 0, not {value}")

    def enum(self, path: str, value: Any, choices: tuple[str, ...]) -> None:
        if not isinstance(value, str) or value not in choices:
            shown = repr(value) if isinstance(value, str) else kind(value)
            self.add(path, f"must be one of {', '.join(choices)}, not {shown}")

    def string_list(self, path: str, value: Any, each: Callable[[str, Any], None] | None = None) -> bool:
        if not isinstance(value, list):
            self.add(path, f"must be a list of strings, not {kind(value)}")
            return False
        for index, item in enumerate(value):
            (each or self.string)(child(path, index), item)
        return True

    def string_map(self, path: str, value: Any) -> None:
        if not isinstance(value, dict):
            self.add(path, f"must be an object of string values, not {kind(value)}")
            return
        for key, item in value.items():
            if not isinstance(item, str):
                self.add(child(path, key), f"must be a string, not {kind(item)}")

    def object(self, path: str, value: Any, fields: Mapping[str, Callable[[str, Any], None]],
               required: tuple[str, ...] = ()) -> None:
        """Check an object's known fields with their checkers; report unknown and missing ones."""
        if not isinstance(value, dict):
            self.add(path, f"must be an object, not {kind(value)}")
            return
        for name in required:
            if name not in value:
                self.add(child(path, name), "is required")
        for name, item in value.items():
            if name in fields:
                fields[name](child(path, name), item)
            elif path == "" and name in READ_ONLY:
                self.add(name, "is set by the TES server; remove it from a submission")
            else:
                self.add(child(path, name), unknown_field_problem(name, fields))

    def array_of(self, path: str, value: Any, each: Callable[[str, Any], None], *, non_empty: bool = False) -> None:
        if not isinstance(value, list):
            self.add(path, f"must be a list, not {kind(value)}")
            return
        if non_empty and not value:
            self.add(path, "must have at least one entry")
        for index, item in enumerate(value):
            each(child(path, index), item)

    # -- the TES objects -------------------------------------------------------------------

    def task(self, task: Any) -> None:
        self.object("", task, {
            "name": self.string,
            "description": self.string,
            "inputs": lambda p, v: self.array_of(p, v, self.input),
            "outputs": lambda p, v: self.array_of(p, v, self.output),
            "resources": self.resources,
            "executors": lambda p, v: self.array_of(p, v, self.executor, non_empty=True),
            "volumes": lambda p, v: self.string_list(p, v, self.absolute_path),
            "tags": self.string_map,
        }, required=("executors",))

    def executor(self, path: str, value: Any) -> None:
        self.object(path, value, {
            "image": lambda p, v: self.string(p, v, non_empty=True),
            "command": self.command,
            "workdir": self.absolute_path,
            "stdin": self.absolute_path,
            "stdout": self.absolute_path,
            "stderr": self.absolute_path,
            "env": self.string_map,
            "ignore_error": self.boolean,
        }, required=("image", "command"))

    def command(self, path: str, value: Any) -> None:
        if self.string_list(path, value) and not value:
            self.add(path, "must name the program to run: a non-empty list of strings (argv)")
        elif isinstance(value, list) and value and isinstance(value[0], str) and not value[0].strip():
            self.add(child(path, 0), "the program to run must not be empty")

    def input(self, path: str, value: Any) -> None:
        self.object(path, value, {
            "name": self.string,
            "description": self.string,
            "url": self.string,
            "path": lambda p, v: self.absolute_path(p, v, required=True),
            "type": lambda p, v: self.enum(p, v, FILE_TYPES),
            "content": self.string,
            "streamable": self.boolean,
        }, required=("path",))
        if not isinstance(value, dict) or _present(value.get("url")) or _present(value.get("content")):
            return
        mistyped = any(name in value and not isinstance(value[name], str) for name in ("url", "content"))
        if not mistyped:  # a wrongly typed url/content has been reported already
            self.add(child(path, "url"), "is required (and not empty) unless 'content' is set")

    def output(self, path: str, value: Any) -> None:
        self.object(path, value, {
            "name": self.string,
            "description": self.string,
            "url": lambda p, v: self.string(p, v, required=True),
            "path": lambda p, v: self.absolute_path(p, v, required=True),
            "path_prefix": self.string,
            "type": lambda p, v: self.enum(p, v, FILE_TYPES),
        }, required=("path", "url"))
        if (isinstance(value, dict) and isinstance(value.get("path"), str) and WILDCARD.search(value["path"])
                and "path_prefix" not in value):
            self.add(child(path, "path_prefix"), "is required when 'path' contains wildcards")

    def resources(self, path: str, value: Any) -> None:
        self.object(path, value, {
            "cpu_cores": lambda p, v: self.whole_number(p, v, 1, INT32_MAX),
            "preemptible": self.boolean,
            "ram_gb": self.positive_number,
            "disk_gb": self.positive_number,
            "zones": self.string_list,
            "backend_parameters": self.string_map,
            "backend_parameters_strict": self.boolean,
        })


def task_problems(task: Any) -> list[dict[str, str]]:
    """Every problem in `task`, each {"field": JSON path, "message": ...}; empty when valid."""
    checker = _Checker()
    checker.task(task)
    return checker.items


def validate_task(task: Any) -> dict[str, Any]:
    """Return `task` when it is a valid TES 1.1 submission; else raise InputError listing every problem."""
    checker = _Checker()
    checker.task(task)
    checker.raise_if_any(f"invalid TES task ({len(checker)} problem(s))")
    return task


def check_choice(field: str, value: str | None, choices: tuple[str, ...]) -> str | None:
    """An optional enum parameter (`view`, `state`), upper-cased, or InputError naming the field."""
    if value is None or value == "":
        return None
    upper = value.strip().upper()
    if upper not in choices:
        raise InputError.for_field(field, f"must be one of {', '.join(choices)}, not {excerpt(value)}")
    return upper


def _present(value: Any) -> bool:
    return isinstance(value, str) and bool(value)
