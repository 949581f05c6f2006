"""`k8s-info`: what the cluster on the pool looks like (cluster info, versions, every pod)."""

from __future__ import annotations

from batchk8s.batch.tasks import TaskSpec, bash_command
from batchk8s.settings import Settings
from batchk8s.workflows import WorkflowContext, register
from batchk8s.workflows._shell import script


@register("k8s-info", "Kubernetes cluster info, client/server versions and the pods in all namespaces")
def k8s_info(settings: Settings, context: WorkflowContext) -> list[TaskSpec]:
    # Independent reads: no dependencies, so they run side by side.
    return [
        TaskSpec("cluster-info", bash_command(script("kubectl cluster-info")), max_wall_clock_seconds=600),
        TaskSpec("version", bash_command(script("kubectl version --output=yaml")), max_wall_clock_seconds=600),
        TaskSpec("pods", bash_command(script("kubectl get pods --all-namespaces -o wide")),
                 max_wall_clock_seconds=600),
    ]
