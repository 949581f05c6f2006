"""Shell fragments the built-in workflows share (kept out of discovery by the leading '_')."""

from __future__ import annotations

from batchk8s.tes.auth import TES_CURL

# Exit code of a task that needs kubectl but runs on a node without the admin kubeconfig: a worker of a
# multi-node pool (Batch affinity to the control plane is only a preference) or a node whose bootstrap did
# not finish. EX_CONFIG from sysexits.h, so it is not mistaken for kubectl's own 1.
NO_KUBECONFIG_EXIT = 78

# Tasks run as the pool's admin auto-user, the identity that can read the private admin kubeconfig the
# bootstrap publishes in the node's shared directory; the bootstrap also records the node's role there
# (`control-plane` or `worker`). Values come in through the environment, never pasted.
PRELUDE = (
    'set -euo pipefail\n'
    'export KUBECONFIG="${KUBECONFIG:-$AZ_BATCH_NODE_SHARED_DIR/k8s/admin.conf}"\n'
    'if [ ! -r "$KUBECONFIG" ]; then\n'
    '  role="$(cat "$AZ_BATCH_NODE_SHARED_DIR/k8s/node-role" 2>/dev/null || true)"\n'
    '  if [ "$role" = worker ]; then\n'
    '    echo "node ${AZ_BATCH_NODE_ID:-?} is a Kubernetes worker: only the control-plane node of this pool has'
    ' the admin kubeconfig, and Batch ran this task here because the control plane was busy or unavailable;'
    ' run the workflow again" >&2\n'
    '  else\n'
    '    echo "node ${AZ_BATCH_NODE_ID:-?} has no readable kubeconfig at $KUBECONFIG (node role:'
    ' ${role:-not recorded}): its start task has not set Kubernetes up; see pool show" >&2\n'
    '  fi\n'
    f'  exit {NO_KUBECONFIG_EXIT}\n'
    'fi\n'
)

# The TES endpoint on the node port, and `tes_curl`, which sends the bearer token TESK's proxy demands.
TES_BASE = 'TES="http://localhost:${TESK_NODEPORT}/ga4gh/tes/v1"\n' + TES_CURL


def script(*lines: str) -> str:
    return PRELUDE + "\n".join(lines) + "\n"


def tes_environment(node_port: int) -> dict[str, str]:
    return {"TESK_NODEPORT": str(node_port)}
