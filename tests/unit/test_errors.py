"""The error model: each type's HTTP status and exit code, the JSON shape, and how Azure SDK errors map."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
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
    ServiceResponseTimeoutError,
)

from batchk8s.errors import (
    ARM,
    BATCH,
    BatchK8sError,
    ConfigError,
    ConflictError,
    InputError,
    NotFoundError,
    PayloadTooLargeError,
    UpstreamError,
    UpstreamTimeoutError,
    azure_code,
    azure_errors,
    from_azure,
)

ROOT = Path(__file__).resolve().parents[2]


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


# -- one translation: the block form, our errors passing through, the code a site decides on ----------


def test_a_block_turns_an_azure_exception_into_ours_exactly_as_from_azure_does() -> None:
    raised = azure_error(ResourceExistsError, 409, "JobBeingDeleted", "The specified job is being deleted.")
    with pytest.raises(ConflictError) as caught, azure_errors("job j1", BATCH):
        raise raised
    expected = from_azure(raised, "job j1", BATCH)
    assert (caught.value.code, caught.value.message) == (expected.code, expected.message) == (
        "JobBeingDeleted", "job j1 is being deleted: try again once it is gone")
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # no SDK traceback attached


def test_a_block_names_the_service_that_did_not_answer() -> None:
    with pytest.raises(UpstreamTimeoutError) as caught, azure_errors("scale set rg/vmss-a", ARM):
        raise ServiceResponseTimeoutError("read timed out")
    assert caught.value.message == "Azure Resource Manager did not answer in time while working on scale set rg/vmss-a"
    assert caught.value.details == [{"service": "Azure Resource Manager", "operation": "scale set rg/vmss-a"}]


@pytest.mark.parametrize("raised", [InputError.for_field("poolId", "too long"), KeyError("a bug"),
                                    ValueError("a bug")])
def test_a_block_lets_ours_and_anything_not_azures_pass_unchanged(raised: Exception) -> None:
    """Ours already say what went wrong; a bug keeps its type and traceback (a logged 500, not a 502)."""
    with pytest.raises(type(raised)) as caught, azure_errors("pool p1", BATCH):
        raise raised
    assert caught.value is raised


def test_a_block_that_raises_nothing_returns_its_value() -> None:
    def read() -> int:
        with azure_errors("pool p1", BATCH):
            return 7
    assert read() == 7


def test_from_azure_returns_our_error_unchanged() -> None:
    ours = NotFoundError("pool p1 not found", code="PoolNotFound")
    assert from_azure(ours, "pool p1", BATCH) is ours


def test_a_stray_exception_becomes_a_502_naming_its_type() -> None:
    """For the callers that isolate a failure (one scale set among many) and log its traceback first."""
    error = from_azure(RuntimeError("boom"), "scale set rg/vmss-a", ARM)
    assert (type(error), error.code, error.message) == (UpstreamError, "UpstreamError",
                                                        "scale set rg/vmss-a: RuntimeError")


def test_azure_code_reads_the_code_the_service_answered() -> None:
    assert azure_code(azure_error(ResourceExistsError, 409, "PoolExists", "exists")) == "PoolExists"
    assert azure_code(azure_error(HttpResponseError, 500)) is None
    assert azure_code(ServiceRequestError("refused")) is None


def test_the_error_layer_loads_no_azure_sdk_until_something_is_raised() -> None:
    """A timer that touches no Azure service pays nothing for the translation it might need."""
    probe = ("import sys\nfrom batchk8s.errors import azure_errors\n"
             "with azure_errors('pool p1', 'Azure Batch'):\n    pass\n"
             "print(sorted(m for m in sys.modules if m.startswith('azure')))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_no_module_but_the_error_layer_reads_an_azure_error_body() -> None:
    """The status/code -> error mapping is stated once: other modules call from_azure / azure_errors, and a
    site that decides on a code (reuse a pool that exists) reads it with azure_code or from our error."""
    readers = re.compile(r"\.error\.code\b|getattr\(\w+\.error,|_azure_error_code|\btranslated\(")
    found = [f"{path.relative_to(ROOT)}:{number}" for path in sorted((ROOT / "batchk8s").rglob("*.py"))
             if path.name != "errors.py"
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if readers.search(line)]
    assert found == []
