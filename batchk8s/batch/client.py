"""The BatchClient for the app's settings, with a retry policy that fits how the app uses Batch.

azure-core never retries a POST answered 429 without Retry-After, nor a POST whose connection
dropped: it cannot know the POST is safe to send again. Every POST this app sends is: tasks are
added under fixed ids (a resent task comes back TaskExists, which `submission` counts as added),
pools and jobs are create-or-reuse (PoolExists/JobExists lead to a comparison, not a duplicate),
and a resize to the same target is the same resize. So the app's client retries POST like GET,
with exponential backoff, and still honours Retry-After when the service sends it -- but only as far
as the operation's deadline allows (batchk8s.retry): `batch_client(settings, deadline)` hands the
deadline to every call, and a call without one still ends within the policy's own budget.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from batchk8s import caches
from batchk8s.errors import BATCH, azure_errors

if TYPE_CHECKING:
    from azure.batch import BatchClient

    from batchk8s.deadline import Deadline
    from batchk8s.settings import Settings


RETRY_TOTAL = 6
BACKOFF_FACTOR = 0.5
BACKOFF_MAX = 20

_clients: dict[tuple[Any, ...], BatchClient] = {}
_lock = threading.Lock()


def _retry_policy() -> Any:
    """azure-core's RetryPolicy, also retrying POST (see the module docstring for why that is safe here)."""
    from batchk8s.retry import core_policy

    return core_policy(total=RETRY_TOTAL, backoff=BACKOFF_FACTOR, backoff_max=BACKOFF_MAX, retry_post=True)


class Bounded:
    """The shared BatchClient seen through one operation's deadline: every method called through it
    carries `deadline=`, which the retry policy reads (attributes that are not methods pass through)."""

    def __init__(self, client: BatchClient, deadline: Deadline):
        self._client = client
        self.deadline = deadline

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute
        options = self.deadline.call_options()

        def bounded(*args: Any, **kwargs: Any) -> Any:
            return attribute(*args, **options, **kwargs)

        return bounded


def batch_client(settings: Settings, deadline: Deadline | None = None) -> Any:
    """One BatchClient per account and identity, so its connection pool and token are reused; with a
    `deadline`, a view of it whose every call carries that deadline."""
    settings.require("batch")
    from batchk8s.credentials import get_credential

    credential = get_credential(settings)
    key = (settings.batch_account_url, id(credential))
    with _lock:
        client = _clients.get(key)
        if client is None:
            from azure.batch import BatchClient

            client = _clients[key] = BatchClient(settings.batch_account_url, credential,
                                                 retry_policy=_retry_policy())
    return Bounded(client, deadline) if deadline is not None else client


@caches.register
def clear_cache() -> None:
    """Forget cached clients (settings changed, e.g. between tests)."""
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()


def call(what: str, operation: Any, *args: Any, **kwargs: Any) -> Any:
    """Run one SDK call, translating azure-core errors into ours (naming `what`)."""
    with azure_errors(what, BATCH):
        return operation(*args, **kwargs)


def text(value: Any) -> str | None:
    """An SDK enum (or the raw string the SDK kept when it did not know the value) as lower-case text."""
    if value is None:
        return None
    return str(getattr(value, "value", value)).lower()


# --- one request, no poller thread -----------------------------------------------------------------
#
# azure-batch 15 offers pool resize, pool delete and job delete only as `begin_*` methods, which send the
# request and then start an LROPoller thread that reads the pool or job every 5 s until Batch finishes:
# minutes of background requests after an HTTP function has answered 202, on an instance the host may
# freeze or recycle under it. They have no `polling=False` (extra keywords go to the request pipeline and to
# LROPoller, which refuses them). The app waits its own way (`Waiter`, with backoff, only when asked), so
# it sends the one request through the methods `begin_*` call themselves. Those are private: requirements
# pin azure-batch below 16, and tests/unit/test_batch_sdk_contract.py fails if their names or signatures
# change.

ONE_REQUEST_METHODS = {"begin_resize_pool": "_resize_pool_internal", "begin_delete_pool": "_delete_pool_internal",
                       "begin_delete_job": "_delete_job_internal"}


def request_pool_resize(client: BatchClient, pool_id: str, options: Any, what: str) -> None:
    """Send the resize; Batch answers 202 and resizes in the background."""
    call(what, client._resize_pool_internal, pool_id, options)


def request_pool_delete(client: BatchClient, pool_id: str, what: str) -> None:
    """Send the delete; Batch answers 202 and removes the nodes, then the pool, in the background."""
    call(what, client._delete_pool_internal, pool_id)


def request_job_delete(client: BatchClient, job_id: str, what: str) -> None:
    """Send the delete; Batch answers 202 and deletes the tasks, then the job, in the background."""
    call(what, client._delete_job_internal, job_id)
