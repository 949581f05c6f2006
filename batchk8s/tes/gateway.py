"""The GA4GH TES 1.1 endpoint batchk8s serves to workflow engines (`/api/ga4gh/tes/v1`).

Engines (Nextflow, Snakemake through py-tes, Cromwell, cwl-tes) speak TES 1.1 and authenticate with
`Authorization: Bearer` or basic credentials, never with function keys. This module holds what the
endpoint adds to the TES client: who may call it (the gateway credentials, compared in constant
time before anything else happens) and what it answers (TES 1.1 shapes, also when the TESK behind
it speaks TES 1.0). The calls themselves are the client's, unchanged: validation with JSON paths,
`azureblob://` inputs turned into read SAS URLs, the list filters TESK ignores, idempotent cancel,
retries and timeouts.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from batchk8s import __version__
from batchk8s.deadline import Deadline
from batchk8s.errors import ConfigError, UnauthorizedError
from batchk8s.settings import Settings
from batchk8s.tes import TaskAlreadyEnded, client_for, submit

REALM = "batchk8s-tes"
TES_VERSION = "1.1.0"
GATEWAY_SETTINGS = ("TES_GATEWAY_TOKENS", "TES_GATEWAY_USERNAME", "TES_GATEWAY_PASSWORD")


@dataclass(frozen=True)
class Credentials:
    """The accepted credentials as SHA-256 digests: comparing digests of equal length keeps the
    comparison's time independent of where, or whether, a guess differs, and of its length."""

    tokens: tuple[bytes, ...]
    basic: tuple[bytes, bytes] | None

    @classmethod
    def from_settings(cls, settings: Settings) -> Credentials:
        problems = [problem.to_dict() for problem in settings.problems if problem.setting in GATEWAY_SETTINGS]
        if problems:
            raise ConfigError("the TES gateway's credentials are misconfigured", details=problems)
        listed = settings.gateway_tokens.reveal().split(",") if settings.gateway_tokens else []
        tokens = tuple(_digest(token.strip()) for token in listed if token.strip())
        basic = ((_digest(settings.gateway_user), _digest(settings.gateway_password.reveal()))
                 if settings.gateway_user and settings.gateway_password else None)
        if not tokens and basic is None:
            raise ConfigError("the TES gateway accepts no credential yet: set TES_GATEWAY_TOKENS, or "
                              "TES_GATEWAY_USERNAME and TES_GATEWAY_PASSWORD",
                              details=[{"field": name, "message": "not set"} for name in GATEWAY_SETTINGS])
        return cls(tokens, basic)

    def challenge(self, presented: str) -> str:
        """The WWW-Authenticate value: one challenge per accepted scheme (RFC 7235, RFC 6750, RFC 7617)."""
        challenges = []
        if self.tokens:
            invalid = ', error="invalid_token"' if presented == "bearer" else ""
            challenges.append(f'Bearer realm="{REALM}"{invalid}')
        if self.basic:
            challenges.append(f'Basic realm="{REALM}", charset="UTF-8"')
        return ", ".join(challenges)

    def accepts(self, authorization: str | None) -> tuple[bool, str]:
        """Whether the Authorization header holds an accepted credential, and the scheme it named."""
        scheme, _, value = (authorization or "").strip().partition(" ")
        scheme, value = scheme.lower(), value.strip()
        if scheme == "bearer" and self.tokens:
            candidate = _digest(value)
            matched = False
            for token in self.tokens:  # every token is compared: the time says nothing about which one matched
                matched |= hmac.compare_digest(candidate, token)
            return matched, scheme
        if scheme == "basic" and self.basic:
            try:
                user, separator, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return False, scheme
            same_user = hmac.compare_digest(_digest(user), self.basic[0])
            same_password = hmac.compare_digest(_digest(password), self.basic[1])
            return bool(separator) and same_user & same_password, scheme
        return False, scheme


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()


def authenticate(settings: Settings, authorization: str | None) -> str:
    """The scheme of a valid credential in `authorization` ("bearer" or "basic"); else UnauthorizedError.

    Runs before the request is read any further: nothing from a caller without a valid credential
    reaches TES. The credential itself appears in no message and no log.
    """
    credentials = Credentials.from_settings(settings)
    accepted, scheme = credentials.accepts(authorization)
    if accepted:
        return scheme
    message = ("a valid credential is required: Authorization: Bearer <token> or basic credentials"
               if not authorization else "the credential in the Authorization header is not valid")
    raise UnauthorizedError(message, challenge=credentials.challenge(scheme))


# -- the TES calls, answered as TES 1.1 says ---------------------------------------------------


def service_info(settings: Settings, url: str, deadline: Deadline | None = None) -> dict[str, Any]:
    """Our own service-info (TES 1.1), naming the TES server behind it in `description` and `storage`."""
    backend = client_for(settings).within(deadline).describe()
    info = backend["serviceInfo"]
    name = str(info.get("name") or "TES")
    storage = [entry for entry in info.get("storage") or [] if isinstance(entry, str)]
    return {
        "id": "org.batchk8s.tes-gateway",
        "name": "batchk8s TES gateway",
        "type": {"group": "org.ga4gh", "artifact": "tes", "version": TES_VERSION},
        "description": (f"GA4GH TES {TES_VERSION} in front of {name} (TES {backend['tesVersion']} at "
                        f"{backend['apiRoot']}, reached {backend['transport']}). batchk8s validates every task "
                        f"before it is sent, turns azureblob:// inputs into read-only SAS URLs and applies the "
                        f"list filters the server does not."),
        "organization": {"name": "batchk8s", "url": url},
        "version": __version__,
        "storage": [*storage, "azureblob://"],
    }


def create(settings: Settings, task: Any, deadline: Deadline | None = None) -> dict[str, str]:
    """Validate (every problem with its JSON path, nothing sent when there is one), resolve blob inputs, submit."""
    return {"id": submit(settings, task, deadline)}


def get(settings: Settings, task_id: str, view: str | None, deadline: Deadline | None = None) -> dict[str, Any]:
    return spec_task(client_for(settings).within(deadline).get(task_id, view))


def list_page(settings: Settings, deadline: Deadline | None = None, **filters: Any) -> dict[str, Any]:
    """One page, filtered as TES 1.1 says whatever the server applies (the client's `list` keywords)."""
    page = client_for(settings).within(deadline).list(**filters)
    return {**page, "tasks": [spec_task(task) for task in page["tasks"]]}


def cancel(settings: Settings, task_id: str, deadline: Deadline | None = None) -> dict[str, Any]:
    """Cancel; `{}` as the spec answers. A task that already ended has nothing left to cancel: an engine
    aborting a workflow races its tasks' ends, so that is a success too (GET still says how it ended)."""
    with contextlib.suppress(TaskAlreadyEnded):
        client_for(settings).within(deadline).cancel(task_id)
    return {}


def spec_task(task: Mapping[str, Any]) -> dict[str, Any]:
    """A task as TES 1.1 requires it, from any server.

    tesk-api (TES 1.0) leaves a task log's `outputs` out and reports executor logs before the
    executor ended, without the `exit_code` 1.1 requires: `outputs` becomes [] and an executor log
    is shown once it has its exit code. A 1.1 server's answer passes unchanged.
    """
    shaped = dict(task)
    logs = task.get("logs")
    if isinstance(logs, list):
        shaped["logs"] = [_task_log(log) for log in logs if isinstance(log, dict)]
    return shaped


def _task_log(log: Mapping[str, Any]) -> dict[str, Any]:
    shaped = dict(log)
    shaped["outputs"] = log.get("outputs") or []
    shaped["logs"] = [entry for entry in log.get("logs") or []
                      if isinstance(entry, dict) and isinstance(entry.get("exit_code"), int)]
    return shaped
