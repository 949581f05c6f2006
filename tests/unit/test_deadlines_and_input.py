"""The deadline object, Retry-After reading, the CLI's --timeout, and strict input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from batchk8s import cli
from batchk8s.batch import pool_spec, pools
from batchk8s.deadline import CLI_SECONDS, FUNCTION_TIMEOUT_SECONDS, HTTP_SECONDS, TIMER_SECONDS, Deadline
from batchk8s.errors import InputError, UpstreamTimeoutError, excerpt
from batchk8s.functions.vmss import parse_action_body
from batchk8s.retry import retry_after_seconds
from batchk8s.settings import load_settings
from batchk8s.workflows import runs
from tests.fakes.batch import FakeClock

NOW = datetime(2026, 1, 14, 9, 30, tzinfo=UTC)


def test_a_deadline_counts_down_on_its_clock_and_names_what_ran_out():
    clock = FakeClock(speed=0)
    deadline = Deadline.after(10, clock.now)
    clock.advance(4)
    assert deadline.remaining() == 6
    assert deadline.allows(5.9) and not deadline.allows(6)
    step = deadline.within(2)
    assert step.remaining() == 2
    assert deadline.within(60).remaining() == 6  # a step never outlives its operation
    clock.advance(7)
    assert deadline.expired() and deadline.remaining() == 0
    with pytest.raises(UpstreamTimeoutError) as caught:
        deadline.check("Azure Batch", "adding tasks to job j1")
    error = caught.value
    assert (error.status, error.code) == (504, "UpstreamTimeout")
    assert error.message == "Azure Batch did not answer in time while adding tasks to job j1 (deadline 10 s)"
    assert error.details == [{"service": "Azure Batch", "operation": "adding tasks to job j1", "deadlineSeconds": 10}]


def test_the_doors_deadlines_fit_the_host_limits():
    import json
    from pathlib import Path

    host = json.loads((Path(__file__).resolve().parents[2] / "host.json").read_text())
    hours, minutes, seconds = (int(part) for part in host["functionTimeout"].split(":"))
    assert HTTP_SECONDS < 230  # the host cuts an HTTP response at 230 s
    assert hours * 3600 + minutes * 60 + seconds == FUNCTION_TIMEOUT_SECONDS  # follows host.json
    assert TIMER_SECONDS < FUNCTION_TIMEOUT_SECONDS
    assert Deadline.for_http().remaining() <= HTTP_SECONDS


@pytest.mark.parametrize(("header", "seconds"), [
    ("1", 1.0), ("0.5", 0.5), ("3600", 3600.0), ("-5", 0.0), (" 2 ", 2.0),
    ("soon", None), ("", None), (None, None), ("nan", None), ("12abc", None),
    (format_datetime(NOW + timedelta(seconds=30), usegmt=True), 30.0),
    (format_datetime(NOW - timedelta(hours=1), usegmt=True), 0.0),
])
def test_retry_after_is_read_as_seconds_or_an_http_date(header: str | None, seconds: float | None):
    assert retry_after_seconds(header, now=NOW) == seconds


def test_the_cli_timeout_is_one_option_with_per_verb_defaults():
    parser = cli.build_parser()
    assert parser.parse_args(["vmss", "status"]).timeout is None  # main() fills CLI_SECONDS
    assert parser.parse_args(["vmss", "status", "--timeout", "30"]).timeout == 30
    assert parser.parse_args(["--timeout", "30", "vmss", "status"]).timeout == 30
    assert parser.parse_args(["pool", "create", "--wait"]).default_timeout == 1800
    assert parser.parse_args(["tes", "wait", "t1"]).default_timeout == 3600
    assert CLI_SECONDS == 600


def test_the_cli_refuses_a_timeout_that_is_not_a_whole_number(capsys):
    assert cli.main(["vmss", "status", "--timeout", "0"]) == 2
    assert "--timeout" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["", 0, False, [], None, {}, "newpool\n", "a" * 65])
@pytest.mark.parametrize("field", ["poolId", "jobId"])
def test_run_ids_given_empty_or_of_the_wrong_type_are_refused(field: str, value: object):
    with pytest.raises(InputError) as caught:
        runs.run_target(load_settings({}), "k8s-info", {field: value}, now=NOW)
    assert [problem["field"] for problem in caught.value.details] == [field]
    assert caught.value.status == 400


def test_run_ids_absent_take_their_defaults():
    _, context = runs.run_target(load_settings({}), "k8s-info", {}, now=NOW)
    assert (context.pool_id, context.job_id) == ("k8s-pool", "k8s-info-20260114-093000")


def test_a_run_body_is_checked_whole_in_one_wording():
    with pytest.raises(InputError) as caught:
        runs.run_target(load_settings({}), "k8s-info", {"poolID": "p", "jobId": "a b", "pool": 1}, now=NOW)
    assert caught.value.message == "invalid workflow run: poolID, pool, jobId"
    assert caught.value.details == [
        {"field": "poolID", "message": "unknown field 'poolID' (did you mean 'poolId'?)"},
        {"field": "pool", "message": "unknown field 'pool' (did you mean 'poolId'?)"},
        {"field": "jobId", "message": "must be 1-64 letters, digits, '-' or '_', not 'a b'"}]


@pytest.mark.parametrize("metadata", [0, [], "x", None, {"a": 1}, {"": "x"}, {"a": None}])
def test_pool_metadata_must_be_an_object_of_strings(metadata: object):
    with pytest.raises(InputError) as caught:
        pool_spec.pool_request(load_settings({}), {"metadata": metadata})
    assert [problem["field"] for problem in caught.value.details] == ["metadata"]


@pytest.mark.parametrize("field", ["id", "vmSize", "imageId", "nodeAgentSkuId"])
def test_pool_fields_match_their_pattern_whole(field: str):
    good = {"id": "newpool", "vmSize": "STANDARD_D2_V3", "nodeAgentSkuId": "batch.node.ubuntu 24.04",
            "imageId": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/galleries/x/images/y"}
    pool_spec.pool_request(load_settings({}), {field: good[field]})
    with pytest.raises(InputError) as caught:
        pool_spec.pool_request(load_settings({}), {field: good[field] + "\n"})
    assert [problem["field"] for problem in caught.value.details] == [field]


@pytest.mark.parametrize(("body", "field"), [
    ({"names": None}, "names"), ({"names": "vmss-a"}, "names"), ({"names": ["vmss-a\n"]}, "names"),
    ({"dryRun": None}, "dryRun"), ({"waitSeconds": None}, "waitSeconds"), ({"waitSeconds": "5"}, "waitSeconds"),
])
def test_scale_set_action_bodies_refuse_empty_and_wrong_types(body: dict, field: str):
    with pytest.raises(InputError) as caught:
        parse_action_body(body)
    assert [problem["field"] for problem in caught.value.details] == [field]


def test_resize_refuses_null_counts():
    with pytest.raises(InputError) as caught:
        pools.resize_pool(load_settings({}), "k8s-pool", {"dedicatedNodes": None, "spotNodes": 1})
    assert [problem["field"] for problem in caught.value.details] == ["dedicatedNodes"]


def test_an_error_shows_a_short_excerpt_of_what_was_sent():
    huge = "x" * 100_000
    assert len(excerpt(huge)) < 120 and excerpt(huge).endswith("(100002 characters)")
    assert excerpt("ok") == "'ok'"
    with pytest.raises(InputError) as caught:
        runs.run_target(load_settings({}), "k8s-info", {"poolId": huge}, now=NOW)
    assert len(str(caught.value.to_dict())) < 600


def test_a_pool_conflict_shows_excerpts_of_both_sides():
    requested = {"metadata": [{"name": "big", "value": "v" * 100_000}]}
    existing = {"metadata": [{"name": "big", "value": "w" * 100_000}]}
    [difference] = pool_spec.spec_differences(requested, existing)
    assert difference["field"] == "metadata" and len(difference["message"]) < 300


def test_the_managed_identity_chain_builds_with_the_recording_hook():
    """DefaultAzureCredential refuses a retry policy of ours (IMDS brings its own): building it must work."""
    from batchk8s.credentials import _credential

    credential = _credential("https://login.microsoftonline.com", None, None, None, None)
    assert type(credential._inner).__name__ == "DefaultAzureCredential"


def test_no_credential_at_all_says_what_to_configure():
    from azure.core.exceptions import ClientAuthenticationError

    from batchk8s.errors import from_azure

    exc = ClientAuthenticationError(message="DefaultAzureCredential failed to retrieve a token from the included "
                                            "credentials.")
    exc.token_request = True  # as batchk8s.credentials raises it
    exc.no_credential = True
    error = from_azure(exc, "pool p1")
    assert (error.status, error.code) == (502, "AuthenticationFailed")
    assert "give the app a managed identity" in error.message
