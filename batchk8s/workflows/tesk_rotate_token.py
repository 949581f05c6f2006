"""`tesk-rotate-token`: a new bearer token for TESK's authenticating proxy, generated on the node.

The Secret `tesk/tesk-api-token` gets a new random value (it never leaves the cluster: not in the
task, its output or Batch), then the proxy is restarted to read it and the task waits until it answers
again. The relay reads the Secret on every request, so it follows at once; a `direct` client needs the
new value in its TES_TOKEN setting (docs/least-privilege.md says how to read it from the cluster).
"""

from __future__ import annotations

from batchk8s.batch.tasks import TaskSpec, bash_command
from batchk8s.settings import Settings
from batchk8s.tes.auth import NAMESPACE, ROTATE_SECRET
from batchk8s.workflows import WorkflowContext, register
from batchk8s.workflows._shell import script

RESTART_TIMEOUT_SECONDS = 300

ROTATE = script(
    ROTATE_SECRET.rstrip("\n"),
    f"kubectl -n {NAMESPACE} rollout restart deployment/tesk-auth",
    f'kubectl -n {NAMESPACE} rollout status deployment/tesk-auth --timeout="{RESTART_TIMEOUT_SECONDS}s"',
)


@register("tesk-rotate-token", "Give TESK's authenticating proxy a new random bearer token and restart it")
def tesk_rotate_token(settings: Settings, context: WorkflowContext) -> list[TaskSpec]:
    return [TaskSpec("rotate", bash_command(ROTATE), max_wall_clock_seconds=RESTART_TIMEOUT_SECONDS + 300)]
