"""The problems toolkit: each rule's edges and its one wording, and the collector that raises them together."""

from __future__ import annotations

import re
from typing import Any

import pytest

from batchk8s.errors import ConfigError, InputError
from batchk8s.problems import (
    Problems,
    child,
    closest,
    kind,
    parse_whole_number,
    path_of,
    pattern_problem,
    unknown_field_problem,
    whole_number_problem,
)
from batchk8s.schedules.document import DocumentError
from batchk8s.settings import BATCH_ID, BATCH_ID_RULE

RULE = "must be a whole number from 0 to 1000"


@pytest.mark.parametrize("value", [0, 1, 999, 1000])
def test_whole_number_bounds_are_inclusive(value: int) -> None:
    assert whole_number_problem(value, 0, 1000) is None


@pytest.mark.parametrize(("value", "message"), [
    (-1, f"{RULE}, not -1"),
    (1001, f"{RULE}, not 1001"),
    (True, f"{RULE}, not a boolean"),  # JSON's true is not 1
    (False, f"{RULE}, not a boolean"),
    (2.5, f"{RULE}, not 2.5"),
    (2.0, f"{RULE}, not 2.0"),  # the schemas say integer: a whole float is still a float
    (float("inf"), f"{RULE}, not inf"),
    ("5", f"{RULE}, not a string"),  # a JSON body's number is a number, not text
    (None, f"{RULE}, not null"),
    ([1], f"{RULE}, not a list"),
    ({"n": 1}, f"{RULE}, not an object"),
])
def test_whole_number_refusals_name_what_was_given(value: Any, message: str) -> None:
    assert whole_number_problem(value, 0, 1000) == message


def test_a_huge_number_is_refused_without_being_printed() -> None:
    assert whole_number_problem(10**5000, 0, 1000) == f"{RULE}, not a number too long to show"


@pytest.mark.parametrize(("text", "number"), [("0", 0), ("1000", 1000), ("17", 17)])
def test_text_whole_numbers_in_range(text: str, number: int) -> None:
    assert parse_whole_number(text, 0, 1000) == number


@pytest.mark.parametrize("text", ["-1", "1001", "lots", "2.5", "", "1e3", "true"])
def test_text_that_is_not_a_whole_number_in_range_raises_the_rule(text: str) -> None:
    with pytest.raises(ValueError, match=f"^{RULE}$"):
        parse_whole_number(text, 0, 1000)


def test_patterns_match_the_whole_string() -> None:
    unanchored = re.compile(r"[a-z]{1,3}")
    assert pattern_problem("abc", unanchored, "must be 1-3 letters") is None
    assert pattern_problem("abcd", unanchored, "must be 1-3 letters") == "must be 1-3 letters, not 'abcd'"
    assert pattern_problem("abc\n", unanchored, "must be 1-3 letters") == "must be 1-3 letters, not 'abc\\n'"
    assert pattern_problem("", unanchored, "must be 1-3 letters") == "must be 1-3 letters, not ''"


@pytest.mark.parametrize(("value", "shown"), [(None, "null"), (7, "a number"), (True, "a boolean"), (["a"], "a list")])
def test_a_pattern_refuses_other_types_by_their_json_kind(value: Any, shown: str) -> None:
    assert pattern_problem(value, BATCH_ID, BATCH_ID_RULE) == f"{BATCH_ID_RULE}, not {shown}"


def test_a_long_value_is_shown_as_an_excerpt() -> None:
    message = pattern_problem("x" * 100_000, BATCH_ID, BATCH_ID_RULE)
    assert message is not None and len(message) < 200 and message.endswith("(100002 characters)")


@pytest.mark.parametrize(("key", "message"), [
    ("timezone", "unknown field 'timezone' (did you mean 'timeZone'?)"),  # the same letters in another case
    ("nmae", "unknown field 'nmae' (did you mean 'name'?)"),  # a close spelling
    ("names", "unknown field 'names' (did you mean 'name'?)"),
    ("zone", "unknown field 'zone' (did you mean 'timeZone'?)"),
    ("region", "unknown field 'region' (known: name, resourceGroup, timeZone)"),  # nothing close: the list, sorted
    ("", "unknown field '' (known: name, resourceGroup, timeZone)"),
])
def test_unknown_fields_get_a_hint_or_the_known_ones(key: str, message: str) -> None:
    assert unknown_field_problem(key, ("timeZone", "resourceGroup", "name")) == message


def test_the_known_fields_are_listed_alphabetically_whatever_their_case() -> None:
    assert unknown_field_problem("x", ("VmSize", "id", "Metadata")) == "unknown field 'x' (known: id, Metadata, VmSize)"


def test_an_unknown_field_where_none_are_accepted() -> None:
    assert unknown_field_problem("root", ()) == "unknown field 'root' (no fields are accepted)"


def test_closest_prefers_a_case_only_difference_to_a_spelling() -> None:
    assert closest("DRYRUN", ["dryRun", "dryRuns"]) == "dryRun"
    assert closest("completely-different", ["dryRun"]) is None


def test_the_collector_keeps_every_problem_in_the_order_found() -> None:
    problems = Problems()
    assert problems.unknown_fields({"names": [], "nmae": 1, "dryrun": True}, ("names", "dryRun")) == ["nmae", "dryrun"]
    assert problems.whole_number("waitSeconds", 201, 0, 200) is None
    assert problems.matches("poolId", "k8s pool", BATCH_ID, BATCH_ID_RULE) is None
    assert problems.boolean("dryRun", "yes") is None
    problems.extend([{"field": "names", "message": "must list at least one scale set"}])
    problems.add("jobId", "is taken")
    assert len(problems) == 7
    assert list(problems) == [
        {"field": "nmae", "message": "unknown field 'nmae' (did you mean 'names'?)"},
        {"field": "dryrun", "message": "unknown field 'dryrun' (did you mean 'dryRun'?)"},
        {"field": "waitSeconds", "message": "must be a whole number from 0 to 200, not 201"},
        {"field": "poolId", "message": f"{BATCH_ID_RULE}, not 'k8s pool'"},
        {"field": "dryRun", "message": "must be true or false, not a string"},
        {"field": "names", "message": "must list at least one scale set"},
        {"field": "jobId", "message": "is taken"},
    ]
    with pytest.raises(InputError) as caught:
        problems.raise_if_any("invalid request body")
    assert caught.value.status == 400 and caught.value.exit_code == 2
    assert caught.value.message == "invalid request body: nmae, dryrun, waitSeconds, poolId, dryRun, names, jobId"
    assert caught.value.details == problems.items
    assert caught.value.to_dict()["error"]["details"][2] == {"field": "waitSeconds",
                                                             "message": "must be a whole number from 0 to 200, not 201"}


def test_the_checks_return_the_value_when_it_passes() -> None:
    problems = Problems()
    assert problems.whole_number("n", 0, 0, 1000) == 0
    assert problems.whole_number("n", 1000, 0, 1000) == 1000
    assert problems.matches("id", "k8s-pool", BATCH_ID, BATCH_ID_RULE) == "k8s-pool"
    assert problems.boolean("b", False) is False
    assert problems.unknown_fields({"a": 1}, {"a"}) == []
    assert not problems and len(problems) == 0
    problems.raise_if_any("nothing to say")  # no problem, no error


def test_unknown_fields_are_named_inside_their_path() -> None:
    problems = Problems()
    problems.unknown_fields({"name": "a", "zone": "1", "with space": 2}, {"name"}, "$.rules[0]")
    assert [p["field"] for p in problems] == ["$.rules[0].zone", '$.rules[0]["with space"]']


@pytest.mark.parametrize(("error", "status"), [(InputError, 400), (ConfigError, 503), (DocumentError, 400)])
def test_the_error_raised_is_the_callers(error: type[InputError], status: int) -> None:
    problems = Problems()
    problems.add("AZURE_BATCH_VM_NODE_COUNT", RULE)
    with pytest.raises(error) as caught:
        problems.raise_if_any("1 configuration problem(s)", error)
    assert type(caught.value) is error and caught.value.status == status
    assert caught.value.message == "1 configuration problem(s): AZURE_BATCH_VM_NODE_COUNT"
    assert caught.value.details == [{"field": "AZURE_BATCH_VM_NODE_COUNT", "message": RULE}]


def test_field_paths_and_kinds() -> None:
    assert child("", "name") == "name"
    assert child("executors", 0) == "executors[0]"
    assert child("tags", "x y") == 'tags["x y"]'
    assert path_of(["executors", 0, "env", "A-B"]) == "executors[0].env.A-B"
    assert [kind(v) for v in (None, True, 1, 1.5, "s", [], {}, ())] == [
        "null", "a boolean", "a number", "a number", "a string", "a list", "an object", "tuple"]
