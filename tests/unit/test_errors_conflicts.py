"""Every upstream 409 is named by its code: only the "exists" codes say a resource already exists.

The exceptions are built the way the SDKs build them: a 409 response with the service's error body,
raised as azure-core's ResourceExistsError (azure-mgmt-core and azure-batch map every 409 to it) or as
HttpResponseError, parsed with ARM's error format.
"""

from __future__ import annotations

import json

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.core.pipeline.transport import RequestsTransportResponse
from azure.mgmt.core.exceptions import ARMErrorFormat

from batchk8s.errors import ConflictError, from_azure


def _response(code: str, message: str) -> RequestsTransportResponse:
    raw = requests.Response()
    raw.status_code = 409
    raw.reason = "Conflict"
    raw.headers["Content-Type"] = "application/json"
    raw._content = json.dumps({"error": {"code": code, "message": message}}).encode()
    return RequestsTransportResponse(None, raw)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", [ResourceExistsError, HttpResponseError])
@pytest.mark.parametrize(("code", "what", "expected"), [
    # Compute, start / deallocate of a scale set or VM (another operation running, a Flexible set's set-level call)
    ("OperationNotAllowed", "scale set rg/vmss-a",
     "scale set rg/vmss-a: Azure does not allow this operation now (OperationNotAllowed): detail"),
    ("Conflict", "scale set rg/vmss-a",
     "scale set rg/vmss-a: the request conflicts with the resource's current state (Conflict): detail"),
    # Batch: resize, pool creation, task submission
    ("PoolBeingResized", "pool p1", "pool p1 is being resized: try again once the resize has ended "
                                    "(PoolBeingResized): detail"),
    ("PoolBeingCreated", "pool p1", "pool p1 is still being created (PoolBeingCreated): detail"),
    ("JobNotActive", "job j1", "job j1 is not active (disabled, terminating or completed) (JobNotActive): detail"),
    ("JobCompleted", "job j1", "job j1 has completed (JobCompleted): detail"),
    ("SomethingNew", "job j1", "job j1: the service refused it because of the resource's current state "
                               "(SomethingNew): detail"),
])
def test_conflicts_that_are_not_exists(kind: type[HttpResponseError], code: str, what: str, expected: str):
    error = from_azure(kind(response=_response(code, "detail"), error_format=ARMErrorFormat), what)

    assert isinstance(error, ConflictError)
    assert (error.status, error.code, error.message) == (409, code, expected)
    assert "already exists" not in error.message


@pytest.mark.parametrize("code", ["PoolExists", "JobExists", "TaskExists", "ContainerAlreadyExists",
                                  "BlobAlreadyExists", "ResourceAlreadyExists"])
def test_exists_codes_say_exists(code: str):
    error = from_azure(ResourceExistsError(response=_response(code, "x"), error_format=ARMErrorFormat), "pool p1")

    assert (error.status, error.code, error.message) == (409, code, "pool p1 already exists")


@pytest.mark.parametrize("code", ["PoolBeingDeleted", "JobBeingDeleted"])
def test_being_deleted_says_so(code: str):
    error = from_azure(ResourceExistsError(response=_response(code, "x"), error_format=ARMErrorFormat), "pool p1")

    assert (error.status, error.code) == (409, code)
    assert error.message == "pool p1 is being deleted: try again once it is gone"
