"""`tesk-verify`: the pods, then a hello TES task submitted from the node and watched to its end."""

from __future__ import annotations

from batchk8s.batch.tasks import BlobFiles, TaskSpec, bash_command
from batchk8s.settings import Settings
from batchk8s.workflows import WorkflowContext, register
from batchk8s.workflows._shell import TES_BASE, script, tes_environment

HELLO_BLOB = "hello.json"
WATCH_SECONDS = 600

FIELD = 'python3 -c "import json, sys; print(json.load(sys.stdin)[sys.argv[1]])"'
HELLO = script(
    TES_BASE.rstrip("\n"),
    f'field() {{ {FIELD} "$1"; }}',
    'task_id="$(tes_curl -fsS -X POST -H "Content-Type: application/json" --data @tes/hello.json "$TES/tasks"'
    ' | field id)"',
    'echo "submitted TES task $task_id"',
    'deadline=$((SECONDS + WATCH_SECONDS))',
    'while :; do',
    '  state="$(tes_curl -fsS "$TES/tasks/$task_id" | field state)"',
    '  echo "state: $state"',
    '  case "$state" in',
    '    COMPLETE) tes_curl -fsS "$TES/tasks/$task_id?view=FULL"; echo; exit 0 ;;',
    '    EXECUTOR_ERROR|SYSTEM_ERROR|CANCELED|CANCELING|PREEMPTED)',
    '      tes_curl -fsS "$TES/tasks/$task_id?view=FULL" >&2; exit 1 ;;',
    '  esac',
    '  if [ "$SECONDS" -ge "$deadline" ]; then echo "TES task $task_id still $state after ${WATCH_SECONDS}s" >&2;'
    ' exit 1; fi',
    '  sleep 5',
    'done',
)


@register("tesk-verify", "List the pods, then run the hello TES task through TESK and report its state")
def tesk_verify(settings: Settings, context: WorkflowContext) -> list[TaskSpec]:
    environment = tes_environment(settings.tesk_node_port)
    return [
        TaskSpec("pods", bash_command(script("kubectl get pods --all-namespaces -o wide")),
                 max_wall_clock_seconds=300),
        TaskSpec("hello", bash_command(HELLO), depends_on=("pods",),
                 resource_files=(BlobFiles(settings.tesk_container, HELLO_BLOB, "tes"),),
                 environment={**environment, "WATCH_SECONDS": str(WATCH_SECONDS)},
                 max_wall_clock_seconds=WATCH_SECONDS + 300),
    ]
