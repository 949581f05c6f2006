"""The TES task validator, held to the TES 1.1 OpenAPI document's tesTask schema.

Everything the schema rejects must be rejected under the same JSON path; where the validator
rejects what the schema allows, the reason must be one of the documented stricter rules.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from batchk8s.errors import InputError
from batchk8s.problems import path_of
from batchk8s.tes import sample_names, task_problems, validate_task
from batchk8s.tes.samples import SAMPLES_DIR
from batchk8s.tes.validation import check_choice
from tests.conftest import DATA

SPEC_FILE = DATA / "tes-openapi-1.1.0.yaml"

# Rules the spec states in prose (or that catch typos) and the schema cannot express.
STRICTER = ("must be an absolute path", "must not be empty", "must be a whole number from 1 to", "greater than 0",
            "unknown field", "must have at least one entry", "must name the program",
            "is required (and not empty) unless 'content'", "is required when 'path' contains wildcards",
            "the program to run must not be empty", "is set by the TES server")

FULL_TASK: dict[str, Any] = {
    "name": "align",
    "description": "every field a submission may carry",
    "inputs": [
        {"name": "reads", "description": "fastq", "url": "https://example.org/r.fq", "path": "/data/r.fq",
         "type": "FILE", "streamable": False},
        {"path": "/data/inline.txt", "content": "literal"},
    ],
    "outputs": [
        {"name": "bam", "description": "aligned", "url": "https://example.org/out/", "path": "/data/out/*.bam",
         "path_prefix": "/data/out/", "type": "DIRECTORY"},
    ],
    "resources": {"cpu_cores": 4, "preemptible": True, "ram_gb": 8, "disk_gb": 40.5, "zones": ["westeurope"],
                  "backend_parameters": {"VmSize": "Standard_D4_v3"}, "backend_parameters_strict": False},
    "executors": [
        {"image": "ubuntu:24.04", "command": ["md5sum", "/data/r.fq"], "workdir": "/data", "stdin": "/data/r.fq",
         "stdout": "/data/stdout", "stderr": "/data/stderr", "env": {"A": "1"}, "ignore_error": True},
    ],
    "volumes": ["/vol/A"],
    "tags": {"project": "alice-lab"},
}

EXECUTOR_FIELDS = "command, env, ignore_error, image, stderr, stdin, stdout, workdir"

WRONG_VALUES: list[Any] = [None, 7, 2.5, "text", True, [], {}, ["a"], [1], {"k": "v"}, {"k": 1}, ""]


@pytest.fixture(scope="module")
def schema() -> Any:
    import yaml
    from jsonschema import Draft4Validator

    document = yaml.safe_load(SPEC_FILE.read_text(encoding="utf-8"))
    # OpenAPI 3.0 schemas are a JSON Schema draft-4/5 dialect; tesTask refers only to local components.
    return Draft4Validator({"components": document["components"], "$ref": "#/components/schemas/tesTask"})


def schema_paths(schema: Any, task: Any) -> list[str]:
    return [path_of(error.absolute_path) for error in schema.iter_errors(task)]


def assert_agree(schema: Any, task: Any) -> list[dict[str, str]]:
    """Schema errors imply ours at the same (or a deeper) path; our extra errors are documented rules."""
    ours = task_problems(task)
    our_paths = [problem["field"] for problem in ours]
    for path in schema_paths(schema, task):
        assert any(_within(ours_path, path) for ours_path in our_paths), (path, ours, task)
    if not schema_paths(schema, task):
        unexplained = [p for p in ours if not any(rule in p["message"] for rule in STRICTER)]
        assert not unexplained, (unexplained, task)
    return ours


def _within(path: str, prefix: str) -> bool:
    return prefix in ("", "task") or path == prefix or path.startswith((prefix + ".", prefix + "["))


def _leaf_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            paths += _leaf_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            paths += _leaf_paths(item, (*prefix, index))
    return paths


def _set(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    mutated = copy.deepcopy(document)
    target = mutated
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return mutated


def test_the_full_task_and_every_sample_are_valid_for_both(schema: Any) -> None:
    assert not schema_paths(schema, FULL_TASK) and task_problems(FULL_TASK) == []
    assert set(sample_names()) >= {"hello", "env", "stdout", "blob-input"}
    for name in sample_names():
        document = json.loads((SAMPLES_DIR / f"{name}.json").read_text())
        assert not schema_paths(schema, document), name
        assert task_problems(document) == [], name


def test_every_wrong_type_anywhere_is_caught_where_the_schema_catches_it(schema: Any) -> None:
    rejected_by_schema = 0
    for path in _leaf_paths(FULL_TASK):
        for value in WRONG_VALUES:
            mutated = _set(FULL_TASK, path, value)
            assert_agree(schema, mutated)
            rejected_by_schema += bool(schema_paths(schema, mutated))
    assert rejected_by_schema > 300  # the table really exercises the schema


def test_every_removed_field_is_judged_like_the_schema(schema: Any) -> None:
    for path in _leaf_paths(FULL_TASK):
        mutated = copy.deepcopy(FULL_TASK)
        target = mutated
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
        assert_agree(schema, mutated)


@pytest.mark.parametrize(("task", "schema_valid", "expected"), [
    ({}, False, {"executors": "is required"}),
    ([], False, {"task": "must be an object"}),
    ({"executors": [{"image": "alpine"}]}, False, {"executors[0].command": "is required"}),
    ({"executors": [{"command": ["true"]}]}, False, {"executors[0].image": "is required"}),
    ({"executors": [{"image": "alpine", "command": "echo hi"}]}, False,
     {"executors[0].command": "must be a list of strings"}),
    ({"executors": [{"image": "alpine", "command": ["echo", 1]}]}, False,
     {"executors[0].command[1]": "must be a string"}),
    ({"executors": [{"image": "a", "command": ["true"]}], "inputs": [{"url": "https://x/y"}]}, False,
     {"inputs[0].path": "is required"}),
    ({"executors": [{"image": "a", "command": ["true"]}], "outputs": [{"path": "/o"}]}, False,
     {"outputs[0].url": "is required"}),
    ({"executors": [{"image": "a", "command": ["true"]}],
      "inputs": [{"path": "/i", "url": "s3://b/i", "type": "LINK"}]}, False,
     {"inputs[0].type": "must be one of FILE, DIRECTORY"}),
    ({"executors": [{"image": "a", "command": ["true"]}], "resources": {"cpu_cores": 1.5}}, False,
     {"resources.cpu_cores": "must be a whole number"}),
    ({"executors": [{"image": "a", "command": ["true"]}], "resources": {"preemptible": "yes"}}, False,
     {"resources.preemptible": "must be true or false"}),
    ({"executors": [{"image": "a", "command": ["true"]}], "tags": {"a": 1}}, False, {"tags.a": "must be a string"}),
    ({"executors": [{"image": "a", "command": ["true"]}], "tags": {"with space": 1}}, False,
     {'tags["with space"]': "must be a string"}),
    # stricter than the schema, each for a reason the spec states in prose
    ({"executors": []}, True, {"executors": "must have at least one entry"}),
    ({"executors": [{"image": "a", "command": []}]}, True, {"executors[0].command": "must name the program"}),
    ({"executors": [{"image": "a", "command": [""]}]}, True,
     {"executors[0].command[0]": "the program to run must not be empty"}),
    ({"executors": [{"image": "a", "command": ["true"]}, {"image": "a", "command": ["  ", "-c", "echo"]}]}, True,
     {"executors[1].command[0]": "the program to run must not be empty"}),
    ({"executors": [{"image": "", "command": ["true"]}]}, True, {"executors[0].image": "must not be empty"}),
    ({"executors": [{"image": "a", "command": ["true"], "stdout": "out.txt"}]}, True,
     {"executors[0].stdout": "must be an absolute path"}),
    ({"executors": [{"image": "a", "command": ["true"]}], "inputs": [{"path": "/i"}]}, True,
     {"inputs[0].url": "is required (and not empty) unless 'content'"}),
    ({"executors": [{"image": "a", "command": ["true"]}], "inputs": [{"path": "data/i", "url": "https://x"}]},
     True, {"inputs[0].path": "must be an absolute path"}),
    ({"executors": [{"image": "a", "command": ["true"]}], "outputs": [{"path": "/o/*.txt", "url": "s3://b/"}]},
     True, {"outputs[0].path_prefix": "is required when 'path' contains wildcards"}),
    ({"executors": [{"image": "a", "command": ["true"]}], "resources": {"cpu_cores": 0, "ram_gb": -1}}, True,
     {"resources.cpu_cores": "must be a whole number from 1 to", "resources.ram_gb": "greater than 0"}),
    ({"executor": [{"image": "a", "command": ["true"]}]}, False,
     {"executors": "is required", "executor": "unknown field 'executor' (did you mean 'executors'?)"}),
    ({"executors": [{"image": "a", "command": ["true"], "cmd": ["x"]}]}, True,
     {"executors[0].cmd": "unknown field 'cmd' (did you mean 'command'?)"}),
    ({"executors": [{"image": "a", "command": ["true"], "entrypoint": ["x"]}]}, True,
     {"executors[0].entrypoint": f"unknown field 'entrypoint' (known: {EXECUTOR_FIELDS})"}),
    ({"executors": [{"image": "a", "command": ["true"]}], "state": "COMPLETE", "id": "x"}, True,
     {"state": "is set by the TES server", "id": "is set by the TES server"}),
])
def test_table_of_tasks(schema: Any, task: Any, schema_valid: bool, expected: dict[str, str]) -> None:
    assert (not schema_paths(schema, task)) is schema_valid
    assert_reports(assert_agree(schema, task), expected)


def assert_reports(ours: list[dict[str, str]], expected: dict[str, str]) -> None:
    """Each expected problem is reported (its path, a message holding the fragment) and nothing else is."""
    for field, fragment in expected.items():
        assert any(p["field"] == field and fragment in p["message"] for p in ours), (field, fragment, ours)
    assert {p["field"] for p in ours} <= set(expected), ours


def test_both_url_and_content_follow_the_spec_content_wins() -> None:
    task = {"executors": [{"image": "a", "command": ["true"]}],
            "inputs": [{"path": "/i", "url": "https://x/y", "content": "inline"}]}
    assert task_problems(task) == []


def test_validate_task_reports_every_problem_at_once() -> None:
    task = {"name": 3, "executors": [{"image": "", "command": []}, {"command": ["x"]}],
            "outputs": [{"path": "rel"}], "volumes": ["rel"]}
    with pytest.raises(InputError) as caught:
        validate_task(task)
    fields = [detail["field"] for detail in caught.value.details]
    # document order; within an object its missing required fields first
    assert fields == ["name", "executors[0].image", "executors[0].command", "executors[1].image",
                      "outputs[0].url", "outputs[0].path", "volumes[0]"]
    assert caught.value.status == 400 and "7 problem(s)" in caught.value.message


def test_enum_parameters_are_checked_and_normalised() -> None:
    assert check_choice("view", "basic", ("MINIMAL", "BASIC", "FULL")) == "BASIC"
    assert check_choice("view", None, ("MINIMAL",)) is None
    with pytest.raises(InputError) as caught:
        check_choice("state", "DONE", ("COMPLETE",))
    assert caught.value.details == [{"field": "state", "message": "must be one of COMPLETE, not 'DONE'"}]



@pytest.mark.parametrize(("task", "problems"), [
    ([], [("task", "must be an object, not a list")]),
    ((), [("task", "must be an object, not tuple")]),  # not JSON: named by its Python type
    ({"executors": [{"command": ["x"]}]}, [("executors[0].image", "is required")]),
    ({"executors": [{"image": "a", "command": ["x"]}], "resources": {"cpu_cores": True, "ram_gb": False}},
     [("resources.cpu_cores", "must be a whole number from 1 to 2147483647, not a boolean"),
      ("resources.ram_gb", "must be a number, not a boolean")]),
    ({"executors": {}}, [("executors", "must be a list, not an object")]),
    ({"executors": [None]}, [("executors[0]", "must be an object, not null")]),
    ({"executors": [{"image": True, "command": "ls"}]},
     [("executors[0].image", "must be a string, not a boolean"),
      ("executors[0].command", "must be a list of strings, not a string")]),
    ({"executors": [{"image": " ", "command": [""], "workdir": "tmp", "ignore_error": "no", "env": []}]},
     [("executors[0].image", "must not be empty"),
      ("executors[0].command[0]", "the program to run must not be empty"),
      ("executors[0].workdir", "must be an absolute path inside the container (starting with '/'), not 'tmp'"),
      ("executors[0].ignore_error", "must be true or false, not a string"),
      ("executors[0].env", "must be an object of string values, not a list")]),
    ({"executors": [{"image": "a", "command": [], "env": {"A": 1.5}, "cmd": "x"}]},
     [("executors[0].command", "must name the program to run: a non-empty list of strings (argv)"),
      ("executors[0].env.A", "must be a string, not a number"),
      ("executors[0].cmd", "unknown field 'cmd' (did you mean 'command'?)")]),
    ({"executors": [], "resources": {"cpu_cores": 0, "ram_gb": "8", "disk_gb": float("inf"), "zones": "eu"},
      "logs": []},
     [("executors", "must have at least one entry"),
      ("resources.cpu_cores", "must be a whole number from 1 to 2147483647, not 0"),
      ("resources.ram_gb", "must be a number, not a string"),
      ("resources.disk_gb", "must be a finite number greater than 0, not inf"),
      ("resources.zones", "must be a list of strings, not a string"),
      ("logs", "is set by the TES server; remove it from a submission")]),
    ({"executors": [{"image": "a", "command": ["x"]}], "resources": {"cpu_cores": 2**31}},
     [("resources.cpu_cores", "must be a whole number from 1 to 2147483647, not 2147483648")]),
    ({"executors": [{"image": "a", "command": ["x"]}], "resources": {"cpu_cores": 2**31 - 1, "ram_gb": 0}},
     [("resources.ram_gb", "must be a finite number greater than 0, not 0")]),
    ({"executors": [{"image": "a", "command": None}, {"image": "a", "command": ""}]},
     [("executors[0].command", "must be a list of strings, not null"),
      ("executors[1].command", "must be a list of strings, not a string")]),
    ({"executors": [{"image": "a", "command": ["x"], "workdir": "", "stdout": " "}],  # empty optional: not set
      "inputs": [{"path": "", "url": "s3://b/i"}, {"path": "/k", "content": 5}],
      "outputs": [{"path": " ", "url": "s3://b/o"}]},
     [("inputs[0].path", "must not be empty"),
      ("inputs[1].content", "must be a string, not a number"),
      ("outputs[0].path", "must not be empty")]),
    ({"executors": [{"image": "a", "command": ["x"]}],
      "inputs": [{"path": "/i", "type": 1}, {"path": "/j", "url": ""}, {"path": "/k", "url": 5}],
      "outputs": [{"path": "/o/*", "url": "s3://b", "type": "LINK"}]},
     [("inputs[0].type", "must be one of FILE, DIRECTORY, not a number"),
      ("inputs[0].url", "is required (and not empty) unless 'content' is set"),
      ("inputs[1].url", "is required (and not empty) unless 'content' is set"),
      ("inputs[2].url", "must be a string, not a number"),
      ("outputs[0].type", "must be one of FILE, DIRECTORY, not 'LINK'"),
      ("outputs[0].path_prefix", "is required when 'path' contains wildcards")]),
    ({"executors": [{"image": "a", "command": ["x"]}], "outputs": [{"path": "/o/?", "url": "", "path_prefix": "/o"}],
      "tags": {"x y": None}},
     [("outputs[0].url", "must not be empty"), ('tags["x y"]', "must be a string, not null")]),
])
def test_every_message_reads_exactly_as_documented(task: Any, problems: list[tuple[str, str]]) -> None:
    """Callers read these messages (400 details, CLI output): each rule's wording and JSON path, in order."""
    assert [(p["field"], p["message"]) for p in task_problems(task)] == problems


def test_the_summary_counts_and_names_the_fields() -> None:
    with pytest.raises(InputError) as caught:
        validate_task({"executors": [{"image": "", "command": ["true"]}], "name": 1})
    assert caught.value.message == "invalid TES task (2 problem(s)): executors[0].image, name"
    task = {"executors": [{"image": "a", "command": ["true"]}]}
    assert validate_task(task) is task


def test_paths_quote_keys_that_are_not_identifiers() -> None:
    assert path_of(["executors", 0, "env", "PATH"]) == "executors[0].env.PATH"
    assert path_of(["tags", "my tag", 2, "_x-1"]) == 'tags["my tag"][2]._x-1'
    assert path_of(["1st"]) == '["1st"]' and path_of([]) == ""


def test_enum_parameters_ignore_case_and_surrounding_space() -> None:
    assert check_choice("view", " Full ", ("MINIMAL", "BASIC", "FULL")) == "FULL"
    assert check_choice("view", "", ("MINIMAL",)) is None
    with pytest.raises(InputError) as caught:
        check_choice("view", "ALL", ("MINIMAL", "BASIC"))
    assert caught.value.message == "view: must be one of MINIMAL, BASIC, not 'ALL'"
