"""The error model: each type's HTTP status and exit code, the JSON shape, and how Azure SDK errors map."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ODataV4Format,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from batchk8s.errors import (
    BatchK8sError,
    ConfigError,
    ConflictError,
    InputError,
    NotFoundError,
    PayloadTooLargeError,
    UpstreamError,
    UpstreamTimeoutError,
    from_azure,
)


def azure_error(cls: type[HttpResponseError], status: int | None, code: str | None = None,
                message: str | None = None) -> HttpResponseError:
    """An SDK exception as azure-core raises it after reading an error body (status, error.code/message)."""
    exc = cls(message="the SDK's own long message with request ids")
    exc.status_code = status
    if code or message:
        exc.error = ODataV4Format({"code": code, "message": message})
    return exc


@pytest.mark.parametrize(("cls", "status", "exit_code", "code"), [
    (BatchK8sError, 500, 1, "InternalError"),
    (InputError, 400, 2, "InvalidInput"),
    (ConfigError, 503, 2, "InvalidConfiguration"),
    (NotFoundError, 404, 2, "NotFound"),
    (ConflictError, 409, 2, "Conflict"),
    (PayloadTooLargeError, 413, 2, "PayloadTooLarge"),
    (UpstreamError, 502, 3, "UpstreamError"),
    (UpstreamTimeoutError, 504, 3, "UpstreamTimeout"),
])
def test_each_error_type_has_its_status_exit_code_and_code(cls: type[BatchK8sError], status: int, exit_code: int,
                                                           code: str) -> None:
    error = cls("it went wrong")
    assert (error.status, error.exit_code, error.code, error.message, str(error)) == (
        status, exit_code, code, "it went wrong", "it went wrong")
    assert error.to_dict() == {"error": {"code": code, "message": "it went wrong", "details": []}}  # always there


def test_one_json_shape_with_details_and_an_own_code() -> None:
    details = [{"field": "poolId", "message": "too long"}]
    error = ConflictError("pool p exists", code="PoolExists", details=details)
    assert error.to_dict() == {"error": {"code": "PoolExists", "message": "pool p exists", "details": details}}
    details.append({"field": "later", "message": "added by the caller"})
    assert len(error.details) == 1  # the error keeps its own copy
    assert ConflictError("x").code == "Conflict"  # the class default stays


def test_input_error_names_the_field() -> None:
    error = InputError.for_field("waitSeconds", "must be from 0 to 200")
    assert error.message == "waitSeconds: must be from 0 to 200"
    assert error.details == [{"field": "waitSeconds", "message": "must be from 0 to 200"}]
    problems = [{"field": "name", "message": "must be a string"}, {"field": "executors", "message": "is required"}]
    many = InputError.from_problems(problems, "invalid TES task (2 problem(s))")
    assert (many.message, many.details) == ("invalid TES task (2 problem(s)): name, executors", problems)
    assert InputError.from_problems(problems[:1]).message == "invalid input: name"


def test_upstream_status_is_part_of_the_body_only_when_known() -> None:
    assert UpstreamError("TES answered 503", upstream_status=503, code="ServerBusy").to_dict() == {
        "error": {"code": "ServerBusy", "message": "TES answered 503", "details": [], "upstreamStatus": 503}}
    assert "upstreamStatus" not in UpstreamError("no answer").to_dict()["error"]
    assert UpstreamTimeoutError("slow", upstream_status=504).to_dict()["error"]["upstreamStatus"] == 504


def mapped(exc: Exception) -> tuple[type, str, str, Any]:
    error = from_azure(exc, "pool k8s-pool")
    return type(error), error.code, error.message, getattr(error, "upstream_status", None)


@pytest.mark.parametrize(("exc", "expected"), [
    (azure_error(ResourceNotFoundError, 404, "PoolNotFound", "The specified pool does not exist."),
     (NotFoundError, "PoolNotFound", "pool k8s-pool not found", None)),
    (azure_error(ResourceNotFoundError, 404),
     (NotFoundError, "NotFound", "pool k8s-pool not found", None)),
    (azure_error(ResourceExistsError, 409, "PoolExists", "The specified pool already exists."),
     (ConflictError, "PoolExists", "pool k8s-pool already exists", None)),
    (azure_error(ResourceExistsError, 409),  # azure-core's class for any 409: only a code says "exists"
     (ConflictError, "Conflict", "pool k8s-pool: the request conflicts with the resource's current state (Conflict)",
      None)),
    (azure_error(ClientAuthenticationError, None),  # the token request itself failed, with no answer to read
     (UpstreamError, "TokenServiceUnavailable",
      "could not get a token for pool k8s-pool: Microsoft Entra ID did not answer", None)),
    (azure_error(ClientAuthenticationError, 403, "AuthorizationFailed", "The client has no authorization."),
     (UpstreamError, "AuthorizationFailed",
      "pool k8s-pool: the service answered 403 AuthorizationFailed: The client has no authorization.", 403)),
    (ServiceRequestError("connection refused"),
     (UpstreamError, "ServiceUnreachable", "pool k8s-pool: could not reach the service (ServiceRequestError)", None)),
    (ServiceResponseError("connection reset"),
     (UpstreamError, "ServiceUnreachable", "pool k8s-pool: could not reach the service (ServiceResponseError)",
      None)),
    (azure_error(HttpResponseError, 409, "OperationNotAllowed", "Another operation is in progress."),
     (ConflictError, "OperationNotAllowed", "pool k8s-pool: Azure does not allow this operation now "
                                            "(OperationNotAllowed): Another operation is in progress.", None)),
    (azure_error(HttpResponseError, 409),
     (ConflictError, "Conflict", "pool k8s-pool: the request conflicts with the resource's current state (Conflict)",
      None)),
    (azure_error(HttpResponseError, 503, "ServerBusy", "The server is busy.\nRequestId: 1234"),
     (UpstreamError, "ServerBusy", "pool k8s-pool: the service answered 503 ServerBusy: The server is busy.", 503)),
    (azure_error(HttpResponseError, 500),
     (UpstreamError, "UpstreamError", "pool k8s-pool: the service answered 500", 500)),
    (azure_error(HttpResponseError, 502, None, "Bad gateway"),
     (UpstreamError, "UpstreamError", "pool k8s-pool: the service answered 502: Bad gateway", 502)),
    (AzureError("something else"),
     (UpstreamError, "UpstreamError", "pool k8s-pool: AzureError", None)),
])
def test_azure_sdk_errors_map_to_ours(exc: Exception, expected: tuple[type, str, str, Any]) -> None:
    assert mapped(exc) == expected


def test_an_upstream_message_is_cut_to_its_first_line_and_300_characters() -> None:
    long = "x" * 400 + "\nsecond line"
    error = from_azure(azure_error(HttpResponseError, 500, "InternalError", long), "job j")
    assert error.message == "job j: the service answered 500 InternalError: " + "x" * 300
