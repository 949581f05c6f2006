# Shared set-up for the script tests (loaded by each .bats file).
REPO_ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
SETUP_SCRIPT="$REPO_ROOT/scripts/k8s-node-setup.sh"
STUBBED_COMMANDS=(apt-get apt-mark kubeadm kubectl systemctl swapoff curl modprobe sysctl containerd gpg az)

# make_stub_bin DIR: a directory of stubs for STUBBED_COMMANDS.
make_stub_bin() {
  local dir="$1" cmd
  mkdir -p "$dir"
  for cmd in "${STUBBED_COMMANDS[@]}"; do
    ln -sf "$REPO_ROOT/tests/scripts/stubs/stub" "$dir/$cmd"
  done
}

# new_node DIR: a fake machine root with its own stub log; exports what the
# script and stubs read.
new_node() {
  local dir="$1"
  mkdir -p "$dir/root/etc" "$dir/shared"
  printf 'UUID=abc / ext4 defaults 0 1\n/swapfile none swap sw 0 0\n' >"$dir/root/etc/fstab"
  : >"$dir/calls.log"
}

# node_env DIR: sets NODE_ENV, the environment for running the script as the node in DIR.
node_env() {
  local dir="$1"
  NODE_ENV=("K8S_SETUP_ROOT=$dir/root" "STUB_LOG=$dir/calls.log" "STUB_STATE=$dir"
    "AZ_BATCH_NODE_SHARED_DIR=$dir/shared" "PATH=$STUB_BIN:$PATH")
}

common_setup() {
  REAL_CURL="$(command -v curl)"
  export REAL_CURL
  STUB_BIN="$BATS_TEST_TMPDIR/bin"
  make_stub_bin "$STUB_BIN"
  NODE="$BATS_TEST_TMPDIR/node"
  new_node "$NODE"
}

# run_setup ARGS...: run the setup script as $NODE with stubs on PATH.
run_setup() {
  node_env "$NODE"
  run env "${NODE_ENV[@]}" "$SETUP_SCRIPT" "$@"
}

calls() { cat "$NODE/calls.log"; }

# start_azurite: a real Azurite on a free port for the file's tests (exports AZURITE_PORT, AZURITE_PID, PYTHON).
start_azurite() {
  AZURITE_BIN="$REPO_ROOT/node_modules/.bin/azurite-blob"
  PYTHON="$REPO_ROOT/.venv/bin/python"
  # Skipped here, the suite's pytest entry point fails in CI (tests/scripts/test_bats.py).
  [ -x "$AZURITE_BIN" ] || skip "Azurite is not installed (npm ci)"
  [ -x "$PYTHON" ] || skip "the virtualenv is missing (.venv)"
  AZURITE_PORT="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  "$AZURITE_BIN" --blobHost 127.0.0.1 --blobPort "$AZURITE_PORT" --inMemoryPersistence \
    --skipApiVersionCheck --silent --disableTelemetry >"$BATS_FILE_TMPDIR/azurite.log" 2>&1 3>&- &
  AZURITE_PID=$!
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$AZURITE_PORT/" && break
    sleep 0.1
  done
  curl -s -o /dev/null "http://127.0.0.1:$AZURITE_PORT/" || { echo "Azurite did not start:" >&2; cat "$BATS_FILE_TMPDIR/azurite.log" >&2; false; }
  export AZURITE_PORT AZURITE_PID PYTHON
}

stop_azurite() {
  if [[ -n "${AZURITE_PID:-}" ]]; then kill "$AZURITE_PID" 2>/dev/null || true; fi
}
