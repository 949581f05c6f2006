"""Error types shared by the services, the HTTP functions and the CLI.

Services raise these; the two doors (HTTP and CLI) translate them with `status`/`exit_code` and
`to_dict()`, so the same failure reads the same way everywhere and nobody formats errors by hand.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Self

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
        # `details` is always there (possibly empty): the documented shape, so callers need no guard.
        return {"error": {"code": self.code, "message": self.message, "details": list(self.details)}}

    @classmethod
    def from_problems(cls, problems: list[dict[str, Any]], summary: str = "invalid input") -> Self:
        """One error for several problems (see batchk8s.problems): the summary names every field."""
        fields = ", ".join(p["field"] for p in problems)
        return cls(f"{summary}: {fields}", details=problems)


class InputError(BatchK8sError):
    """The caller sent something invalid; `details` names every offending field."""

    status = 400
    exit_code = EXIT_INPUT
    code = "InvalidInput"

    @classmethod
    def for_field(cls, field: str, message: str) -> InputError:
        return cls(f"{field}: {message}", details=[{"field": field, "message": message}])


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


EXCERPT_CHARS = 80


def excerpt(value: Any, limit: int = EXCERPT_CHARS) -> str:
    """What a caller sent, as an error message may show it: repr'd and cut to `limit` characters, so a
    100 KB field is never echoed back (nor a newline that would split a log line)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


# --- Azure SDK exceptions -> ours: the one translation ------------------------------------------
#
# Every call into an Azure SDK runs under `azure_errors(what, service)` (or hands what it caught to
# `from_azure`), so a status or code means the same error whichever service or module answered it.
# A site that decides on a code itself (reuse a pool that exists, skip a 412) reads it with `azure_code`.


# The services as messages name them ("Azure Batch did not answer in time while ...").
ARM = "Azure Resource Manager"
BATCH = "Azure Batch"
BLOB = "Blob storage"


@contextmanager
def azure_errors(what: str, service: str) -> Iterator[None]:
    """Inside the block, an azure-core exception leaves as ours (`from_azure`); anything else, ours
    included, passes unchanged. The SDK is imported only when something was raised."""
    try:
        yield
    except Exception as exc:
        from azure.core.exceptions import AzureError

        if isinstance(exc, AzureError):
            raise from_azure(exc, what, service) from None
        raise


def azure_code(exc: Exception) -> str | None:
    """The error code an Azure service put in its answer (`PoolExists`, `OperationNotAllowed`), if any.

    ARM and Batch carry it in the body (`exc.error.code`); Blob storage in `x-ms-error-code`, which its
    SDK puts in `exc.error_code` (`ContainerNotFound`, `AuthorizationPermissionMismatch`)."""
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None) or getattr(exc, "error_code", None)
    return str(getattr(code, "value", code)) if code else None


def from_azure(exc: Exception, what: str, service: str | None = None) -> BatchK8sError:
    """Translate an azure-core exception into our error model; one of ours is returned unchanged.

    `what` names the resource ("scale set vmss-1", "pool k8s-pool") so the message says what failed;
    `service` ("Azure Resource Manager", "Azure Batch", "Blob storage") names who did not answer in time.
    The SDK message is not echoed whole: it can be long and carries request ids only support needs.
    Anything else (not Azure's, not ours) becomes a 502 naming its type: callers that must isolate a
    failure (one scale set among many) log such a one with its traceback first.
    """
    if isinstance(exc, BatchK8sError):
        return exc
    from azure.core.exceptions import (
        ClientAuthenticationError,
        DecodeError,
        HttpResponseError,
        ResourceExistsError,
        ResourceNotFoundError,
        ServiceRequestError,
        ServiceRequestTimeoutError,
        ServiceResponseError,
        ServiceResponseTimeoutError,
    )

    status = getattr(exc, "status_code", None)
    upstream_code = azure_code(exc)
    if upstream_code in BEING_DELETED:
        return ConflictError(f"{what} is being deleted: try again once it is gone", code=upstream_code)
    if isinstance(exc, ResourceNotFoundError):
        return NotFoundError(f"{what} not found", code=upstream_code or "NotFound")
    if status == 409 or isinstance(exc, ResourceExistsError):
        return _conflict(exc, what, upstream_code)
    if isinstance(exc, ClientAuthenticationError) and _is_token_failure(exc):
        return token_failure(exc, what)
    if isinstance(exc, (ServiceRequestTimeoutError, ServiceResponseTimeoutError)):
        who = service or "the service"
        return UpstreamTimeoutError(f"{who} did not answer in time while working on {what}",
                                    details=[{"service": who, "operation": what}])
    if isinstance(exc, DecodeError):
        return UpstreamError(f"{what}: the service answered {status} with a body that could not be read",
                             upstream_status=status, code="UpstreamBadAnswer")
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


# Entra ID answers these when the request itself is wrong (bad secret, unknown app or tenant): the
# settings need fixing. Anything else (5xx, 429, an unreadable answer) is Entra failing, not us.
_CREDENTIAL_STATUSES = frozenset({400, 401, 403})


def _is_token_failure(exc: Exception) -> bool:
    """A ClientAuthenticationError raised while getting a token (not a service's 401 to a request)."""
    return getattr(exc, "token_request", False) or getattr(exc, "status_code", None) is None


def token_failure(exc: Exception, what: str) -> UpstreamError:
    """Entra ID did not give a token: 502 with its status and AADSTS code; the message points at the
    settings only when Entra said the credentials were wrong, not when it was down or throttling."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    aadsts = _aadsts(exc)
    details: list[dict[str, Any]] = [{"service": "Microsoft Entra ID", "operation": f"token for {what}"}]
    if getattr(exc, "no_credential", False):
        return UpstreamError(f"no Azure credential could get a token for {what}: set the service principal settings "
                             "(AZURE_SP_CLIENT_ID, AZURE_SP_CLIENT_SECRET, AZURE_AD_TENANT_ID) or give the app a "
                             "managed identity (AZURE_CLIENT_ID names a user-assigned one); on a workstation, "
                             "`az login` also works", code="AuthenticationFailed", details=details)
    if aadsts:
        details[0]["aadsts"] = aadsts
    said = (f" (answered {status}{', ' + aadsts if aadsts else ''})" if status is not None
            else f" ({aadsts})" if aadsts else "")
    if status in _CREDENTIAL_STATUSES or (status is None and aadsts):
        # A managed identity's endpoint relays Entra's refusal without its status; the AADSTS code says it.
        message = (f"Microsoft Entra ID refused a token for {what}{said}: check the service principal settings "
                   "(or the managed identity)")
        code = "AuthenticationFailed"
    elif status is None:
        message = f"could not get a token for {what}: Microsoft Entra ID did not answer"
        code = "TokenServiceUnavailable"
    else:
        message = f"Microsoft Entra ID failed to issue a token for {what}{said}: try again later"
        code = "TokenServiceUnavailable"
    return UpstreamError(message, upstream_status=status, code=code, details=details)


def _aadsts(exc: Exception) -> str | None:
    """The AADSTS code Entra ID put in its error body (error_codes or the description's prefix)."""
    response = getattr(exc, "response", None)
    body: Any = None
    try:
        body = response.json() if response is not None else None
    except Exception:  # an unreadable body has no code to read
        body = None
    if isinstance(body, dict):
        codes = body.get("error_codes")
        if isinstance(codes, list) and codes and isinstance(codes[0], int):
            return f"AADSTS{codes[0]}"
    # Entra's own body names it in error_description; a managed-identity endpoint relays it in its
    # message; without a body, azure-identity's exception text still carries it.
    text = " ".join(str(part) for part in (*(body.values() if isinstance(body, dict) else ()),
                                           getattr(exc, "message", "") or ""))
    found = re.search(r"AADSTS\d{4,}", text)
    return found.group(0) if found else None
def _conflict(exc: Exception, what: str, code: str | None) -> ConflictError:
    """A 409 named for what its code says; "already exists" only when the code says so."""
    if means_exists(code):
        return ConflictError(f"{what} already exists", code=code)
    code = code or "Conflict"
    meaning = CONFLICTS.get(code, "the service refused it because of the resource's current state")
    message = f"{what} {meaning}" if meaning.startswith(("is ", "has ")) else f"{what}: {meaning}"
    detail = _azure_error_message(exc)
    return ConflictError(f"{message} ({code}){': ' + detail if detail else ''}", code=code)


def _azure_error_message(exc: Exception) -> str:
    error = getattr(exc, "error", None)
    message = getattr(error, "message", None)
    if not message:
        return ""
    message = str(message).splitlines()[0]
    return message[:300]
