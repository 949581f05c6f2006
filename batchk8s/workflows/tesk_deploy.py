"""`tesk-deploy`: apply the TESK manifests, wait until its TES API answers, report the service.

Three tasks in order (apply -> ready -> service): readiness means the TES API's service-info answers
on the node port through the authenticating proxy, with the token, which is what a TES client needs,
not just a rolled-out deployment. `apply` creates the proxy's token Secret (random, on the node)
when the cluster has none; an existing one (a rotated token) is kept.
"""

from __future__ import annotations

from batchk8s.batch.tasks import BlobFiles, TaskSpec, bash_command
from batchk8s.settings import Settings
from batchk8s.tes.auth import ENSURE_SECRET
from batchk8s.workflows import WorkflowContext, register
from batchk8s.workflows._shell import TES_BASE, script, tes_environment

MANIFEST_PREFIX = "tesk/"
READY_TIMEOUT_SECONDS = 900

# The manifests carry the default NodePort; the Service is patched to TESK_NODEPORT so the app's
# setting, not a number in a YAML file, decides where TES answers.
APPLY = script(
    'if [ ! -d tesk ]; then echo "no TESK manifests were downloaded (run artifacts upload)" >&2; exit 2; fi',
    'if [ -f tesk/kustomization.yaml ]; then kubectl apply -k tesk; else kubectl apply -f tesk; fi',

    "kubectl -n tesk patch service tesk-api --type=json "
    """-p '[{"op": "replace", "path": "/spec/ports/0/nodePort", "value": '"${TESK_NODEPORT}"'}]'""",
    ENSURE_SECRET.rstrip("\n"),
)
READY = script(
    TES_BASE.rstrip("\n"),
    'kubectl -n tesk rollout status deployment/tesk-api --timeout="${READY_TIMEOUT}s"',
    'kubectl -n tesk rollout status deployment/tesk-auth --timeout="${READY_TIMEOUT}s"',
    'deadline=$((SECONDS + READY_TIMEOUT))',
    'until tes_curl -fsS "$TES/service-info"; do',
    '  if [ "$SECONDS" -ge "$deadline" ]; then',
    '    echo "TES API not ready at $TES after ${READY_TIMEOUT}s" >&2; exit 1',
    '  fi',
    '  sleep 5',
    'done',
    'echo',
)
SERVICE = script(
    TES_BASE.rstrip("\n"),
    'kubectl -n tesk get service tesk-api -o wide',
    'kubectl -n tesk get pods -o wide',
    'echo "TES API: $TES"',
)


@register("tesk-deploy", "Deploy TESK on the pool's cluster, wait until its TES API answers, report its service")
def tesk_deploy(settings: Settings, context: WorkflowContext) -> list[TaskSpec]:
    environment = tes_environment(settings.tesk_node_port)
    return [
        TaskSpec("apply", bash_command(APPLY), resource_files=(BlobFiles(settings.k8s_container, MANIFEST_PREFIX),),
                 environment=environment, max_wall_clock_seconds=600, max_task_retry_count=2),
        TaskSpec("ready", bash_command(READY), depends_on=("apply",),
                 environment={**environment, "READY_TIMEOUT": str(READY_TIMEOUT_SECONDS)},
                 max_wall_clock_seconds=READY_TIMEOUT_SECONDS + 300),
        TaskSpec("service", bash_command(SERVICE), depends_on=("ready",), environment=environment,
                 max_wall_clock_seconds=300),
    ]
