#!/usr/bin/env bash
# Upload scripts/, k8sresources/ and tesk-tasks/ to the artifact containers.
# A thin wrapper: all logic (containers, skip unchanged blobs, settings) lives in
#   python -m batchk8s artifacts upload [options]
# Uses the repository's .venv when it exists; BATCHK8S_PYTHON overrides.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${BATCHK8S_PYTHON:-}"
if [[ -z "$python" ]]; then
  if [[ -x "$repo/.venv/bin/python" ]]; then python="$repo/.venv/bin/python"; else python="python3"; fi
fi
if ! command -v "$python" >/dev/null; then
  echo "[upload-artifacts] error: step 'find python' failed: $python not found (set BATCHK8S_PYTHON or run make)" >&2
  exit 2
fi
cd "$repo"
exec "$python" -m batchk8s artifacts upload "$@"
