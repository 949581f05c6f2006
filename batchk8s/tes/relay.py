"""The `relay` transport: TES requests executed by a Batch task on the pool, answers read from its stdout.

When the cluster is reachable only from its nodes (the seed's situation: TESK's NodePort is not
exposed), each request becomes one Batch task in the job `batchk8s-tes-relay` on the pool. The task
runs curl against http://localhost:TESK_NODEPORT (kube-proxy serves a NodePort on every node that
has joined the cluster; on a multi-node `auto` pool the task is sent to the control-plane node, which
always has) and prints the response followed by a marker line that
carries the HTTP status and curl's exit code; the transport waits for the task, reads stdout.txt,
and deletes the task (its environment holds the request, SAS URLs included). A task that has not
finished after 180 s (under the 230 s HTTP cap) is a 504 `TesRelayTimeout`, not retried: a pool that
could not run one short task in time will not run the next one sooner.

TESK answers only with its bearer token (k8sresources/tesk/35-auth-proxy.yaml). The relay task reads
it from the cluster's Secret with the admin kubeconfig (so it runs as the pool's admin auto-user)
and gives it to curl on a file descriptor (`tes.auth`): the token never leaves the cluster and is
never in the task's environment or command line.

The script is a constant: the method, path, body and marker travel in the task's environment, so
nothing a caller sends is ever pasted into a command line, and a task body (which may hold SAS URLs
for its inputs) is not visible in the node's process list. The body is base64-encoded in the
environment; Batch caps a task's definition at about 1 MB, so bodies are limited to 512 KiB here.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import uuid
from typing import Any
from urllib.parse import urlencode

from batchk8s.batch.polling import READ_MARGIN_SECONDS, Backoff, Waiter
from batchk8s.batch.tasks import TaskSpec, bash_command, to_task_options
from batchk8s.deadline import Deadline
from batchk8s.errors import ConfigError, NotFoundError, PayloadTooLargeError, UpstreamError, UpstreamTimeoutError
from batchk8s.settings import Settings
from batchk8s.tes.auth import TES_CURL
from batchk8s.tes.transports import HttpResult, Params, TimedOut, Unreachable

log = logging.getLogger("batchk8s.tes.relay")

RELAY_JOB = "batchk8s-tes-relay"
MAX_BODY = 512 * 1024
# curl exit codes: no connection at all (nothing sent), and a timeout.
CURL_NOT_CONNECTED = {6, 7}
CURL_TIMEOUT = 28
SCRIPT = r"""set -uo pipefail
export KUBECONFIG="${KUBECONFIG:-$AZ_BATCH_NODE_SHARED_DIR/k8s/admin.conf}"
""" + TES_CURL + r"""url="http://localhost:${TESK_NODEPORT}${TES_RELAY_PATH}"
args=(-sS -X "$TES_RELAY_METHOD" --max-time "$TES_RELAY_TIMEOUT" -H 'Accept: application/json'
      -w "\n${TES_RELAY_MARKER} %{http_code}\n")
if [ -n "${TES_RELAY_BODY:-}" ]; then
  printf '%s' "$TES_RELAY_BODY" | base64 -d | tes_curl "${args[@]}" -H 'Content-Type: application/json' \
    --data-binary @- "$url"
else
  tes_curl "${args[@]}" "$url"
fi
echo "${TES_RELAY_MARKER}-exit $?"
"""


class RelayTransport:
    name = "relay"
    prefix = ""

    def __init__(self, settings: Settings, *, waiter: Waiter | None = None, task_timeout: float = 180.0):
        self.settings = settings
        self.where = f"pool {settings.pool_id} (NodePort {settings.tesk_node_port})"
        self.waiter = waiter or Waiter(Backoff(0.5, 2.0, 5.0))
        self.task_timeout = task_timeout
        self._ready = False
        self._affinity: Any = None
        self._lock = threading.Lock()

    def _prepare(self, deadline: Deadline | None) -> Any:
        """Find where relay tasks go and create their job, once; returns the task affinity (or None).

        On a multi-node (`auto`) pool the relay task is sent to the control-plane node: a worker that
        has not joined the cluster yet has no kube-proxy serving the NodePort. A `single` pool needs
        none (every node is a whole cluster). An `auto` pool without a usable control plane is a 409
        before any task is added; a missing pool is a 503 naming AZURE_BATCH_POOL_ID.
        """
        from batchk8s.batch.control_plane import control_plane_affinity
        from batchk8s.batch.jobs import create_job

        with self._lock:
            if not self._ready:
                pool_id = self.settings.pool_id
                try:
                    self._affinity = control_plane_affinity(self.settings, pool_id, deadline=deadline)
                except NotFoundError:
                    raise ConfigError(f"the TES relay runs on pool {pool_id} (AZURE_BATCH_POOL_ID), which does not "
                                      "exist; create the pool or set TESK_API_URL", code="TesRelayPoolNotFound",
                                      details=[{"field": "AZURE_BATCH_POOL_ID", "message": "no such pool"}]) from None
                create_job(self.settings, RELAY_JOB, pool_id, "TES requests relayed to TESK", deadline=deadline)
                self._ready = True
            return self._affinity

    def _forget_placement(self) -> None:
        """After nothing answered on the NodePort: look the control plane up again on the next request
        (the pool may have been recreated under the same id with another control-plane node)."""
        with self._lock:
            self._ready = False

    def task_spec(self, method: str, path: str, params: Params, body: Any | None, timeout: float,
                  marker: str) -> TaskSpec:
        """The Batch task for one request (pure: `plan` and tests read it)."""
        target = path + ("?" + urlencode(list(params)) if params else "")
        environment = {"TESK_NODEPORT": str(self.settings.tesk_node_port), "TES_RELAY_METHOD": method,
                       "TES_RELAY_PATH": target, "TES_RELAY_TIMEOUT": str(max(1, int(timeout))),
                       "TES_RELAY_MARKER": marker}
        if body is not None:
            encoded = json.dumps(body, separators=(",", ":")).encode()
            if len(encoded) > MAX_BODY:
                raise PayloadTooLargeError(f"the relay carries TES bodies up to {MAX_BODY} bytes; this one is "
                                           f"{len(encoded)} (set TESK_API_URL to send it directly)")
            environment["TES_RELAY_BODY"] = base64.b64encode(encoded).decode()
        return TaskSpec(id="tes-" + uuid.uuid4().hex, command_line=bash_command(SCRIPT), environment=environment,
                        max_wall_clock_seconds=int(timeout) + 60, admin=True,
                        display_name=f"TES {method} {path}"[:1024])

    def send(self, method: str, path: str, params: Params, body: Any | None, timeout: float,
             deadline: Deadline | None = None) -> HttpResult:
        """Relay one request as a Batch task; every Batch call and the wait for the task carry `deadline`."""
        from batchk8s.batch.client import batch_client
        from batchk8s.batch.jobs import add_tasks

        marker = "BATCHK8S-TES-RELAY-" + uuid.uuid4().hex
        spec = self.task_spec(method, path, params, body, timeout, marker)
        affinity = self._prepare(deadline)
        add_tasks(self.settings, RELAY_JOB, [to_task_options(spec, _no_containers, affinity)], deadline=deadline)
        client = batch_client(self.settings, deadline)
        try:
            task = self._wait(client, spec.id, deadline)
            stdout = self._file(client, spec.id, "stdout.txt")
            if task.get("exitCode") != 0 or marker not in stdout:
                stderr = self._file(client, spec.id, "stderr.txt")
                raise UpstreamError(f"the relay task {RELAY_JOB}/{spec.id} on {self.where} failed "
                                    f"(exit code {task.get('exitCode')}): {stderr.strip()[-300:] or 'no stderr'}",
                                    code="TesRelayFailed")
            try:
                return parse_output(stdout, marker)
            except Unreachable:
                self._forget_placement()
                raise
        finally:
            self._delete(client, spec.id)

    def _wait(self, client: Any, task_id: str, deadline: Deadline | None) -> dict[str, Any]:
        from batchk8s.batch.client import call, text

        what = f"relay task {RELAY_JOB}/{task_id}"

        def probe() -> tuple[bool, dict[str, Any]]:
            task = call(what, client.get_task, RELAY_JOB, task_id)
            info = task.execution_info
            return text(task.state) == "completed", {"exitCode": info.exit_code if info else None}

        try:
            return self.waiter.until(probe, self.task_timeout, what, deadline=deadline)
        except UpstreamTimeoutError as error:
            if error.code != "Timeout":  # Batch itself too slow: already says so
                raise
            cut = deadline is not None and deadline.remaining() <= READ_MARGIN_SECONDS
            limit = "before the request's deadline" if cut else f"within {self.task_timeout:g} s"
            raise UpstreamTimeoutError(f"the relay task {RELAY_JOB}/{task_id} did not finish {limit} on "
                                       f"{self.where}: is the pool busy, resizing or without a usable node?",
                                       code="TesRelayTimeout") from None

    def _file(self, client: Any, task_id: str, name: str) -> str:
        from batchk8s.batch.client import call

        chunks = call(f"{name} of relay task {task_id}", client.download_task_file, RELAY_JOB, task_id, name)
        return b"".join(chunks).decode("utf-8", errors="replace")

    def _delete(self, client: Any, task_id: str) -> None:
        """Best effort: the relay job should not collect a task per request; a failure here is only logged."""
        from azure.core.exceptions import AzureError

        try:
            client.delete_task(RELAY_JOB, task_id)
        except AzureError as exc:
            log.warning("could not delete relay task %s: %s", task_id, type(exc).__name__)


def _no_containers(files: Any) -> list[tuple[str, str]]:
    raise AssertionError(f"relay tasks have no resource files (asked for {files})")


def parse_output(stdout: str, marker: str) -> HttpResult:
    """The HTTP answer from the relay task's stdout: body, then `MARKER status`, then `MARKER-exit code`."""
    head, _, exit_line = stdout.rpartition(f"{marker}-exit ")
    curl_exit = int(exit_line.split()[0]) if exit_line.split() and exit_line.split()[0].isdigit() else -1
    body, found, status_line = head.rpartition(f"\n{marker} ")
    if curl_exit in CURL_NOT_CONNECTED:
        raise Unreachable("nothing listens on the TESK NodePort on the node", sent=False)
    if curl_exit == CURL_TIMEOUT:
        raise TimedOut()
    status_text = status_line.split()[0] if status_line.split() else ""
    if curl_exit != 0 or not found or not status_text.isdigit() or status_text == "000":
        raise Unreachable(f"curl on the node failed (exit code {curl_exit})", sent=True)
    return HttpResult(int(status_text), body.encode())
