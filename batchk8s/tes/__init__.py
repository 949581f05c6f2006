"""GA4GH TES on the cluster's TESK: validated submissions, status, listing, cancelling and waiting.

`client_for(settings)` picks the transport (`direct` HTTP to TESK_API_URL, or `relay` through a
Batch task on the pool when the cluster is reachable only from its nodes) and keeps one client per
configuration, so its connection pool and discovered API root are reused across calls.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from batchk8s import caches
from batchk8s.deadline import Deadline
from batchk8s.settings import Settings
from batchk8s.tes.client import CancelResult, TaskAlreadyEnded, TaskWaitTimeout, TesClient, is_terminal
from batchk8s.tes.samples import load_sample, mark_placeholders, resolve_blob_inputs, sample_names
from batchk8s.tes.validation import STATES, TERMINAL_STATES, VIEWS, task_problems, validate_task

__all__ = [
    "STATES",
    "TERMINAL_STATES",
    "VIEWS",
    "CancelResult",
    "TaskAlreadyEnded",
    "TaskWaitTimeout",
    "TesClient",
    "clear_cache",
    "client_for",
    "is_terminal",
    "load_sample",
    "mark_placeholders",
    "prepare_task",
    "sample_names",
    "submit",
    "task_problems",
    "validate_task",
]

_clients: dict[tuple[Any, ...], TesClient] = {}
_lock = threading.Lock()


def _key(settings: Settings) -> tuple[Any, ...]:
    if settings.effective_tes_transport == "direct":
        return ("direct", settings.tes_url, settings.tes_token, settings.tes_user, settings.tes_password)
    return ("relay", settings.batch_account_url, settings.pool_id, settings.tesk_node_port, settings.client_id)


def client_for(settings: Settings) -> TesClient:
    """The TES client for these settings (transport per TES_TRANSPORT, or direct when TESK_API_URL is set)."""
    settings.require("tes")
    key = _key(settings)
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = TesClient(_transport(settings))
    return client


def _transport(settings: Settings) -> Any:
    if settings.effective_tes_transport == "direct":
        from batchk8s.tes.transports import DirectTransport

        assert settings.tes_url is not None  # require("tes") and the settings' own checks ensure it
        basic = ((settings.tes_user, settings.tes_password.reveal())
                 if settings.tes_user and settings.tes_password else None)
        return DirectTransport(settings.tes_url, token=settings.tes_token.reveal() if settings.tes_token else None,
                               basic=basic)
    from batchk8s.tes.relay import RelayTransport

    settings.require("batch")
    return RelayTransport(settings)


@caches.register
def clear_cache() -> None:
    """Close and forget cached TES clients (settings changed, e.g. between tests)."""
    with _lock:
        for client in _clients.values():
            close = getattr(client.transport, "close", None)
            if close:
                close()
        _clients.clear()


def prepare_task(task: Any, settings: Settings, deadline: Deadline | None = None) -> dict[str, Any]:
    """Validate a submission, then turn its `azureblob://` inputs into read-only SAS URLs (signing may ask
    storage for a user delegation key: within `deadline`)."""
    validate_task(task)
    return resolve_blob_inputs(task, settings, deadline=deadline)


def submit(settings: Settings, task: Mapping[str, Any], deadline: Deadline | None = None) -> str:
    """Validate, resolve blob inputs and create the task; returns its TES id."""
    return client_for(settings).within(deadline).create(prepare_task(task, settings, deadline))
