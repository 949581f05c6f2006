"""What schemathesis found the app accepting although the OpenAPI document (and common sense) says invalid.

Each case was accepted as "use the default" or slipped past a pattern; each is now a 400 naming its field.
"""

from __future__ import annotations

import azure.functions as func
import pytest

from batchk8s.batch.pool_spec import pool_request
from batchk8s.errors import InputError
from batchk8s.functions.http import read_json
from batchk8s.functions.vmss import parse_action_body
from batchk8s.settings import load_settings
from batchk8s.workflows.runs import run_target


def fields(error: pytest.ExceptionInfo[InputError]) -> list[str]:
    return [detail["field"] for detail in error.value.details]


@pytest.mark.parametrize("body", [b"\t\n", b" "])
def test_a_whitespace_body_is_malformed_json_not_an_empty_one(body: bytes) -> None:
    request = func.HttpRequest("POST", "https://app.example.net/api/pools", body=body, headers={})
    with pytest.raises(InputError) as error:
        read_json(request)
    assert fields(error) == ["body"]
    assert read_json(func.HttpRequest("POST", "https://app.example.net/api/pools", body=b"", headers={})) == {}


@pytest.mark.parametrize(("overrides", "field"), [
    ({"id": "k8s-pool\n"}, "id"),  # `$` also matches before a final newline
    ({"vmSize": "STANDARD_D2_V3\n"}, "vmSize"),
    ({"vmSize": "\u017ftandard_d2_v3"}, "vmSize"),  # IGNORECASE alone folds U+017F to 's'
    ({"metadata": ""}, "metadata"), ({"metadata": 0}, "metadata"), ({"metadata": []}, "metadata"),
    ({"metadata": False}, "metadata"),
])
def test_pool_requests_refuse_what_batch_would(overrides: dict, field: str) -> None:
    with pytest.raises(InputError) as error:
        pool_request(load_settings({}), overrides)
    assert fields(error) == [field]


def test_a_null_image_means_the_marketplace_image_but_null_metadata_is_refused() -> None:
    """imageId null is a documented choice (no gallery image); metadata null is a wrong type, never a default."""
    settings = load_settings({"AZURE_BATCH_VM_IMAGE_ID": ""})
    assert pool_request(settings, {"imageId": None}).image_id is None
    with pytest.raises(InputError) as error:
        pool_request(settings, {"metadata": None})
    assert fields(error) == ["metadata"]


@pytest.mark.parametrize(("body", "field"), [({"jobId": ""}, "jobId"), ({"poolId": ""}, "poolId"),
                                             ({"jobId": None}, "jobId"), ({"poolId": 0}, "poolId")])
def test_a_workflow_run_refuses_empty_ids_instead_of_defaulting(body: dict, field: str) -> None:
    with pytest.raises(InputError) as error:
        run_target(load_settings({}), "k8s-info", body)
    assert fields(error) == [field]


def test_a_null_names_list_is_refused_not_read_as_all_scale_sets() -> None:
    with pytest.raises(InputError) as error:
        parse_action_body({"names": None})
    assert fields(error) == ["names"]
    assert parse_action_body({}) == (None, False, 0)
