"""Error types shared by the services, the HTTP functions and the CLI.

Services raise these; the two doors (HTTP and CLI) translate them with `status`/`exit_code` and
`to_dict()`, so the same failure reads the same way everywhere and nobody formats errors by hand.
"""

from __future__ import annotations

from typing import Any

EXIT_INPUT = 2
EXIT_UPSTREAM = 3


class BatchK8sError(Exception):
    """Base error: an HTTP status, a CLI exit code, a stable code and optional details."""

    status = 500
    exit_code = 1
    code = "InternalError"

    def __init__(self, message: str, *, code: str | None = None, details: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = list(details or [])

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return {"error": body}


class InputError(BatchK8sError):
    """The caller sent something invalid; `details` names every offending field."""

    status = 400
    exit_code = EXIT_INPUT
    code = "InvalidInput"

    @classmethod
    def for_field(cls, field: str, message: str) -> InputError:
        return cls(f"{field}: {message}", details=[{"field": field, "message": message}])

    @classmethod
    def from_problems(cls, problems: list[dict[str, Any]], summary: str = "invalid input") -> InputError:
        fields = ", ".join(p["field"] for p in problems)
        return cls(f"{summary}: {fields}", details=problems)


class ConfigError(BatchK8sError):
    """The app's settings are missing or malformed: not the caller's fault, so not a 400."""

    status = 503
    exit_code = EXIT_INPUT
    code = "InvalidConfiguration"


class NotFoundError(BatchK8sError):
    status = 404
    exit_code = EXIT_INPUT
    code = "NotFound"


class ConflictError(BatchK8sError):
    status = 409
    exit_code = EXIT_INPUT
    code = "Conflict"


class PayloadTooLargeError(BatchK8sError):
    status = 413
    exit_code = EXIT_INPUT
    code = "PayloadTooLarge"


class UpstreamError(BatchK8sError):
    """Azure or TES refused or failed; `upstream_status`/`code` carry what it said."""

    status = 502
    exit_code = EXIT_UPSTREAM
    code = "UpstreamError"

    def __init__(self, message: str, *, upstream_status: int | None = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.upstream_status = upstream_status

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        if self.upstream_status is not None:
            body["error"]["upstreamStatus"] = self.upstream_status
        return body


class UpstreamTimeoutError(UpstreamError):
    status = 504
    code = "UpstreamTimeout"


# Batch's 409 codes for a pool or job whose deletion has not finished (its id cannot be reused yet).
BEING_DELETED = frozenset({"PoolBeingDeleted", "JobBeingDeleted"})
# The 409 codes that mean "it exists": Batch's for pools, jobs and tasks, and every `*AlreadyExists`
# (Storage's ContainerAlreadyExists / BlobAlreadyExists, ARM's). azure-core raises ResourceExistsError for
# every 409, so the class alone says nothing: a 409 is read by its code.
EXISTS_CODES = frozenset({"PoolExists", "JobExists", "TaskExists"})
# What the other 409s of the calls batchk8s makes mean (Compute: start / deallocate of a scale set or VM;
# Batch: pool resize, job and task submission). Any other 409 keeps its code and is a plain conflict.
CONFLICTS = {
    "OperationNotAllowed": "Azure does not allow this operation now",
    "Conflict": "the request conflicts with the resource's current state",
    "PoolBeingResized": "is being resized: try again once the resize has ended",
    "PoolBeingCreated": "is still being created",
    "JobNotActive": "is not active (disabled, terminating or completed)",
    "JobCompleted": "has completed",
}


def means_exists(code: str | None) -> bool:
    """True for the 409 codes that say the resource already exists."""
    return bool(code) and (code in EXISTS_CODES or str(code).endswith("AlreadyExists"))


def from_azure(exc: Exception, what: str) -> BatchK8sError:
    """Translate an azure-core exception into our error model.

    `what` names the resource ("scale set vmss-1", "pool k8s-pool") so the message says what failed.
    The SDK message is not echoed whole: it can be long and carries request ids only support needs.
    """
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceExistsError,
        ResourceNotFoundError,
        ServiceRequestError,
        ServiceResponseError,
    )

    status = getattr(exc, "status_code", None)
    upstream_code = _azure_error_code(exc)
    if upstream_code in BEING_DELETED:
        return ConflictError(f"{what} is being deleted: try again once it is gone", code=upstream_code)
    if isinstance(exc, ResourceNotFoundError):
        return NotFoundError(f"{what} not found", code=upstream_code or "NotFound")
    if status == 409 or isinstance(exc, ResourceExistsError):
        return _conflict(exc, what, upstream_code)
    if isinstance(exc, ClientAuthenticationError) and status is None:
        return UpstreamError(f"could not get a token for {what}: check the service principal settings",
                             code="AuthenticationFailed")
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return UpstreamError(f"{what}: could not reach the service ({type(exc).__name__})",
                             code="ServiceUnreachable")
    if isinstance(exc, HttpResponseError):
        detail = _azure_error_message(exc)
        message = f"{what}: the service answered {status} {upstream_code or ''}".rstrip()
        if detail:
            message += f": {detail}"
        return UpstreamError(message, upstream_status=status, code=upstream_code or "UpstreamError")
    return UpstreamError(f"{what}: {type(exc).__name__}", code="UpstreamError")


def _conflict(exc: Exception, what: str, code: str | None) -> ConflictError:
    """A 409 named for what its code says; "already exists" only when the code says so."""
    if means_exists(code):
        return ConflictError(f"{what} already exists", code=code)
    code = code or "Conflict"
    meaning = CONFLICTS.get(code, "the service refused it because of the resource's current state")
    message = f"{what} {meaning}" if meaning.startswith(("is ", "has ")) else f"{what}: {meaning}"
    detail = _azure_error_message(exc)
    return ConflictError(f"{message} ({code}){': ' + detail if detail else ''}", code=code)


def _azure_error_code(exc: Exception) -> str | None:
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    return str(code) if code else None


def _azure_error_message(exc: Exception) -> str:
    error = getattr(exc, "error", None)
    message = getattr(error, "message", None)
    if not message:
        return ""
    message = str(message).splitlines()[0]
    return message[:300]
