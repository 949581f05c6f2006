"""Error types shared by the services, the HTTP functions and the CLI.

Services raise these; the two doors (HTTP and CLI) translate them with `status`/`exit_code` and
`to_dict()`, so the same failure reads the same way everywhere and nobody formats errors by hand.
"""

from __future__ import annotations

import re
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


class UnauthorizedError(BatchK8sError):
    """No valid credential (the TES gateway authenticates its callers itself); `headers` carry the challenge."""

    status = 401
    exit_code = EXIT_INPUT
    code = "Unauthorized"

    def __init__(self, message: str, *, challenge: str):
        super().__init__(message)
        self.headers = {"WWW-Authenticate": challenge}


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
    if isinstance(exc, ResourceExistsError):
        return ConflictError(f"{what} already exists", code=upstream_code or "Conflict")
    if isinstance(exc, ClientAuthenticationError) and status is None:
        # Entra ID's AADSTS number says what was refused (500011: unknown resource, 7000215: bad secret)
        # and carries nothing secret; the rest of the message can.
        aadsts = sorted(set(re.findall(r"AADSTS\d+", str(exc))))
        return UpstreamError(f"could not get a token for {what}{' (' + ', '.join(aadsts) + ')' if aadsts else ''}: "
                             "check the service principal or managed identity settings", code="AuthenticationFailed")
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return UpstreamError(f"{what}: could not reach the service ({type(exc).__name__})",
                             code="ServiceUnreachable")
    if isinstance(exc, HttpResponseError):
        if status == 409:
            return ConflictError(f"{what}: {upstream_code or 'Conflict'}", code=upstream_code or "Conflict")
        detail = _azure_error_message(exc)
        message = f"{what}: the service answered {status} {upstream_code or ''}".rstrip()
        if detail:
            message += f": {detail}"
        return UpstreamError(message, upstream_status=status, code=upstream_code or "UpstreamError")
    return UpstreamError(f"{what}: {type(exc).__name__}", code="UpstreamError")


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
