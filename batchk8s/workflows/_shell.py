"""Shell fragments the built-in workflows share (kept out of discovery by the leading '_')."""

from __future__ import annotations

# Tasks run as the pool's admin auto-user, the identity that can read the private admin kubeconfig the
# bootstrap publishes in the node's shared directory. Values come in through the environment, never pasted.
PRELUDE = (
    'set -euo pipefail\n'
    'export KUBECONFIG="${KUBECONFIG:-$AZ_BATCH_NODE_SHARED_DIR/k8s/admin.conf}"\n'
    'if [ ! -r "$KUBECONFIG" ]; then echo "no readable kubeconfig at $KUBECONFIG (did the start task succeed?)" >&2;'
    ' exit 2; fi\n'
)

TES_BASE = 'TES="http://localhost:${TESK_NODEPORT}/ga4gh/tes/v1"\n'


def script(*lines: str) -> str:
    return PRELUDE + "\n".join(lines) + "\n"


def tes_environment(node_port: int) -> dict[str, str]:
    return {"TESK_NODEPORT": str(node_port)}
