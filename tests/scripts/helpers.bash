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
    "AZ_BATCH_NODE_SHARED_DIR=$dir/shared" "PATH=$STUB_BIN:$PATH" "ADVERTISE_ADDRESS=10.0.0.4"
    "JOIN_NETWORKS=10.0.0.0/24")
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

# run_auto_node NAME [VAR=value...] [-- ARGS...]: run the setup script in the foreground as node NAME of
# an auto cluster, with the given environment (the cluster's URL settings) and script arguments.
run_auto_node() {
  local name="$1" dir="$BATS_TEST_TMPDIR/$1" vars=()
  shift
  while (($#)) && [[ "$1" != -- ]]; do vars+=("$1"); shift; done
  if (($#)); then shift; fi
  [ -d "$dir" ] || new_node "$dir"
  node_env "$dir"
  run env "${NODE_ENV[@]}" AZ_BATCH_NODE_ID="$name" K8S_ROLE=auto JOIN_POLL_INTERVAL=0.2 JOIN_TIMEOUT=30 \
    "${vars[@]}" "$SETUP_SCRIPT" "$@"
}

# The sha256 of the stub kubeadm's cluster CA (tests/scripts/data/cluster-ca.crt), as the lock pins it.
ca_hash() {
  echo "sha256:$(openssl x509 -pubkey -noout -in "$REPO_ROOT/tests/scripts/data/cluster-ca.crt" |
    openssl pkey -pubin -outform der | sha256sum | cut -d' ' -f1)"
}

# join_line N: the join command the stub kubeadm prints for its Nth token.
join_line() {
  printf 'kubeadm join 10.0.0.4:6443 --token abcdef.%016d --discovery-token-ca-cert-hash %s' "$1" "$(ca_hash)"
}
