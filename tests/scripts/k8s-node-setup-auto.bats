#!/usr/bin/env bats
# scripts/k8s-node-setup.sh role auto: nodes elect a control plane by creating a
# lock blob once, which pins the API endpoint and the cluster CA. Blob calls go over HTTP to a real Azurite with the real curl;
# kubeadm, kubectl and the other system commands are stubs.

load azurite

setup() {
  load helpers
  common_setup
  # A fresh private container per test: one cluster each.
  CLUSTER_SAS_URL="$("$PYTHON" "$BATS_TEST_DIRNAME/azurite_container.py" "$AZURITE_PORT" "pool-$BATS_TEST_NUMBER")"
  export STUB_PASSTHROUGH_URL="http://127.0.0.1:$AZURITE_PORT/"
}

# start_node NAME: run the script as node NAME in the background; pid in $NODE_PID.
start_node() {
  local dir="$BATS_TEST_TMPDIR/$1"
  new_node "$dir"
  node_env "$dir"
  env "${NODE_ENV[@]}" AZ_BATCH_NODE_ID="$1" K8S_ROLE=auto K8S_CLUSTER_SAS_URL="$CLUSTER_SAS_URL" \
    JOIN_POLL_INTERVAL=0.2 JOIN_TIMEOUT=30 "$SETUP_SCRIPT" >"$dir/output.log" 2>&1 &
  NODE_PID=$!
}

# run_node NAME [ARGS...]: run the script as node NAME in the foreground.
run_node() {
  local name="$1"
  shift
  run_auto_node "$name" K8S_CLUSTER_SAS_URL="$CLUSTER_SAS_URL" -- "$@"
}

blob_url() { echo "${CLUSTER_SAS_URL%%\?*}/$1?${2:+$2&}${CLUSTER_SAS_URL#*\?}"; }
blob() { "$REAL_CURL" -sSf -H "x-ms-version: 2021-08-06" "$(blob_url "$1")"; }
# blob_headers BLOB: the response headers of a GET (metadata arrives as x-ms-meta-*).
blob_headers() { "$REAL_CURL" -sSf -o /dev/null -D - -H "x-ms-version: 2021-08-06" "$(blob_url "$1")" | tr -d '\r'; }
# put_blob BLOB FILE [curl args...]
put_blob() {
  local name="$1" file="$2"
  shift 2
  "$REAL_CURL" -sSf -X PUT -H "x-ms-version: 2021-08-06" -H "x-ms-blob-type: BlockBlob" \
    --data-binary "@$file" "$@" "$(blob_url "$name")"
}
# hold_lock NODE: another node holds control-plane.lock (pinning the stub's endpoint and CA), as the script writes it.
hold_lock() {
  printf '{"nodeId":"%s","hostname":"%s","endpoint":"10.0.0.4:6443","caCertHash":"%s","claimed":"2026-01-05T08:00:00Z"}\n' \
    "$1" "$1" "$(ca_hash)" >"$BATS_TEST_TMPDIR/lock"
  put_blob control-plane.lock "$BATS_TEST_TMPDIR/lock"
}

start_three_nodes() {
  local pids=() name
  for name in node-a node-b node-c; do
    start_node "$name"
    pids+=("$NODE_PID")
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
}

@test "three nodes at once: exactly one control plane, two join with the published command" {
  start_three_nodes
  local inits=0 joins=0 name dir
  for name in node-a node-b node-c; do
    dir="$BATS_TEST_TMPDIR/$name"
    if grep -q "^kubeadm init --" "$dir/calls.log"; then
      inits=$((inits + 1))
      [ "$(cat "$dir/shared/k8s/node-role")" = control-plane ]
      [ -f "$dir/shared/k8s/admin.conf" ]
    fi
    if grep -q "^kubeadm join " "$dir/calls.log"; then
      joins=$((joins + 1))
      grep -qx "$(join_line 1) --node-name .*" "$dir/calls.log"
      [ "$(cat "$dir/shared/k8s/node-role")" = worker ]
      [ ! -e "$dir/shared/k8s/admin.conf" ]
      grep -q "^kubeadm init --" "$dir/calls.log" && false
    fi
    [ -f "$dir/root/var/lib/k8s-node-setup/done" ]
  done
  [ "$inits" -eq 1 ]
  [ "$joins" -eq 2 ]
  [ "$(blob join-command)" = "$(join_line 1) " ]
  # The lock, the join command and control-plane.json all name the one control plane.
  local leader
  leader="$(grep -l "^kubeadm init --" "$BATS_TEST_TMPDIR"/node-?/calls.log | xargs dirname | xargs basename)"
  blob control-plane.lock | grep -q "\"nodeId\":\"$leader\",.*\"endpoint\":\"10.0.0.4:6443\",\"caCertHash\":\"$(ca_hash)\""
  blob_headers join-command | grep -qix "x-ms-meta-nodeid: $leader"
  blob control-plane.json | grep -q "\"nodeId\":\"$leader\""
}

@test "the join command carries its expiry: now + JOIN_TOKEN_TTL" {
  local before after expires
  before="$(date -u +%s)"
  run_node node-a --join-token-ttl 2h --join-refresh 30m
  [ "$status" -eq 0 ]
  after="$(date -u +%s)"
  expires="$(blob_headers join-command | sed -nE 's/^x-ms-meta-expires: *//Ip')"
  [ "$expires" -ge $((before + 7200)) ]
  [ "$expires" -le $((after + 7200)) ]
  blob control-plane.json | grep -q "\"expires\":\"$(date -u -d "@$expires" +%Y-%m-%dT%H:%M:%SZ)\""
}

@test "a join command past its expiry is refused at once, naming the lost control plane" {
  hold_lock node-x
  join_line 1 >"$BATS_TEST_TMPDIR/join"
  put_blob join-command "$BATS_TEST_TMPDIR/join" -H "x-ms-meta-nodeid: node-x" -H "x-ms-meta-expires: $(($(date -u +%s) - 60))"
  local started=$SECONDS
  run_node node-b --join-timeout 30
  [ "$status" -ne 0 ]
  [ $((SECONDS - started)) -lt 15 ]
  [[ "$output" == *"the join command from control plane node-x expired at"* ]]
  [[ "$output" == *"If the control plane is lost"* ]]
  [[ "$output" == *"step 'wait for join command' failed"* ]]
  grep -q "^kubeadm join" "$BATS_TEST_TMPDIR/node-b/calls.log" && false
  [ ! -e "$BATS_TEST_TMPDIR/node-b/root/var/lib/k8s-node-setup/done" ]
}

@test "a join command that has not expired is used" {
  hold_lock node-x
  join_line 7 >"$BATS_TEST_TMPDIR/join"
  put_blob join-command "$BATS_TEST_TMPDIR/join" -H "x-ms-meta-nodeid: node-x" -H "x-ms-meta-expires: $(($(date -u +%s) + 600))"
  run_node node-b
  [ "$status" -eq 0 ]
  grep -qx "$(join_line 7) --node-name .*" "$BATS_TEST_TMPDIR/node-b/calls.log"
}

@test "a node added later joins; the control plane refreshes the token and a later node gets the new one" {
  start_three_nodes
  local leader
  leader="$(grep -l "^kubeadm init --" "$BATS_TEST_TMPDIR"/node-?/calls.log | xargs dirname | xargs basename)"

  run_node node-d
  [ "$status" -eq 0 ]
  grep -qx "$(join_line 1) --node-name .*" "$BATS_TEST_TMPDIR/node-d/calls.log"

  # What the systemd timer runs: it reads the SAS from the root-only env file.
  local dir="$BATS_TEST_TMPDIR/$leader"
  [ "$(stat -c %a "$dir/root/etc/k8s-node-setup/cluster.env")" = 600 ]
  node_env "$dir"
  run env "${NODE_ENV[@]}" "$SETUP_SCRIPT" --refresh-join
  [ "$status" -eq 0 ]
  grep -qx "kubeadm token create --ttl 24h --print-join-command" "$dir/calls.log"
  [ "$(blob join-command)" = "$(join_line 2) " ]

  run_node node-e
  [ "$status" -eq 0 ]
  grep -qx "$(join_line 2) --node-name .*" "$BATS_TEST_TMPDIR/node-e/calls.log"
}

@test "the control plane installs a refresh timer that runs before the token expires" {
  run_node node-a --join-token-ttl 12h --join-refresh 3h
  [ "$status" -eq 0 ]
  local dir="$BATS_TEST_TMPDIR/node-a"
  grep -qx "OnUnitActiveSec=3h" "$dir/root/etc/systemd/system/k8s-join-refresh.timer"
  grep -qx "ExecStart=/usr/local/sbin/k8s-node-setup.sh --refresh-join" "$dir/root/etc/systemd/system/k8s-join-refresh.service"
  [ -x "$dir/root/usr/local/sbin/k8s-node-setup.sh" ]
  grep -qx "systemctl enable --now k8s-join-refresh.timer" "$dir/calls.log"
  grep -qx "kubeadm token create --ttl 12h --print-join-command" "$dir/calls.log"
}

@test "the SAS never reaches the output" {
  start_three_nodes
  local sig="${CLUSTER_SAS_URL##*sig=}"
  sig="${sig%%&*}"
  [ -n "$sig" ]
  run grep -rlF "$sig" "$BATS_TEST_TMPDIR"/node-a/output.log "$BATS_TEST_TMPDIR"/node-b/output.log "$BATS_TEST_TMPDIR"/node-c/output.log
  [ "$status" -eq 1 ]
  grep -q "step: elect control plane" "$BATS_TEST_TMPDIR/node-a/output.log"
}

@test "a control plane whose start task is retried keeps its lock and its CA, and stays control plane" {
  run_node node-a
  [ "$status" -eq 0 ]
  rm "$BATS_TEST_TMPDIR/node-a/root/var/lib/k8s-node-setup/done"
  run_node node-a
  [ "$status" -eq 0 ]
  [ "$(grep -c "^kubeadm init --" "$BATS_TEST_TMPDIR/node-a/calls.log")" -eq 2 ]
  grep -qx "kubeadm reset -f" "$BATS_TEST_TMPDIR/node-a/calls.log"
  cmp "$BATS_TEST_TMPDIR/node-a/root/etc/kubernetes/pki/ca.crt" "$REPO_ROOT/tests/scripts/data/cluster-ca.crt"
}

@test "a tampered join command is refused, not executed" {
  run_node node-a
  [ "$status" -eq 0 ]
  printf 'kubeadm join 10.0.0.4:6443 --token abcdef.0000000000000001 --discovery-token-ca-cert-hash sha256:%064d; rm -rf /\n' 0 >"$BATS_TEST_TMPDIR/evil"
  put_blob join-command "$BATS_TEST_TMPDIR/evil"
  run_node node-b
  [ "$status" -ne 0 ]
  [[ "$output" == *"join command has an unexpected form"* ]]
  grep -q "^kubeadm join" "$BATS_TEST_TMPDIR/node-b/calls.log" && false
  true
}

@test "a worker gives up after JOIN_TIMEOUT when no control plane publishes, naming the lock holder" {
  # Another node holds the lock but never publishes.
  hold_lock node-x
  run_node node-b --join-timeout 1
  [ "$status" -ne 0 ]
  [[ "$output" == *"no join command after 1s (last: HTTP 404) from control plane node-x"* ]]
  [[ "$output" == *"If the control plane is lost"* ]]
  [[ "$output" == *"step 'wait for join command' failed"* ]]
}

@test "storage that cannot be reached fails the election step, without the SAS in the output" {
  local port
  port="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  local dir="$BATS_TEST_TMPDIR/node-z"
  new_node "$dir"
  node_env "$dir"
  run env "${NODE_ENV[@]}" STUB_PASSTHROUGH_URL="http://127.0.0.1:$port/" AZ_BATCH_NODE_ID=node-z K8S_ROLE=auto \
    K8S_CLUSTER_SAS_URL="http://127.0.0.1:$port/devstoreaccount1/c?sig=SECRETSIG" "$SETUP_SCRIPT"
  [ "$status" -ne 0 ]
  [[ "$output" == *"creating control-plane.lock answered no HTTP answer (storage not reachable)"* ]]
  [[ "$output" == *"step 'elect control plane (create-once lock)' failed"* ]]
  [[ "$output" != *SECRETSIG* ]]
  grep -Eq "^kubeadm (init --|join|reset)" "$dir/calls.log" && false
  [ ! -e "$dir/root/var/lib/k8s-node-setup/done" ]
}

@test "a rerun on a node that joined does nothing: no blob call, no kubeadm" {
  start_three_nodes
  local worker
  worker="$(grep -l "^kubeadm join " "$BATS_TEST_TMPDIR"/node-?/calls.log | head -n1 | xargs dirname | xargs basename)"
  : >"$BATS_TEST_TMPDIR/$worker/calls.log"
  run_node "$worker"
  [ "$status" -eq 0 ]
  [[ "$output" == *"already set up"* ]]
  [ ! -s "$BATS_TEST_TMPDIR/$worker/calls.log" ]
  [[ "$output" != *"elect control plane"* ]]
}

@test "a SAS the container refuses fails at once, saying so" {
  local bad="${CLUSTER_SAS_URL/sig=/sig=AAAA}"
  local dir="$BATS_TEST_TMPDIR/node-q"
  new_node "$dir"
  node_env "$dir"
  run env "${NODE_ENV[@]}" AZ_BATCH_NODE_ID=node-q K8S_ROLE=auto K8S_CLUSTER_SAS_URL="$bad" "$SETUP_SCRIPT"
  [ "$status" -ne 0 ]
  [[ "$output" == *"answered HTTP 403 (the SAS was refused: expired, or without read/add/create/write)"* ]]
  [[ "$output" == *"step 'elect control plane (create-once lock)' failed"* ]]
}

# split_urls: the four URLs a pool's start task gets (what batchk8s issues): read-only container SAS,
# create-only SAS for control-plane.lock, create/write SAS for join-command and control-plane.json.
split_urls() {
  mapfile -t SPLIT < <("$PYTHON" "$BATS_TEST_DIRNAME/azurite_container.py" "$AZURITE_PORT" "split-$BATS_TEST_NUMBER" split)
  SPLIT_ENV=("K8S_CLUSTER_SAS_URL=${SPLIT[0]}" "K8S_CLUSTER_CLAIM_URL=${SPLIT[1]}" "K8S_CLUSTER_JOIN_URL=${SPLIT[2]}"
    "K8S_CLUSTER_RECORD_URL=${SPLIT[3]}")
}

@test "with the least-privilege URLs (read-only container, create-only lock) nodes form one cluster" {
  split_urls
  run_auto_node node-a "${SPLIT_ENV[@]}"
  [ "$status" -eq 0 ]
  run_auto_node node-b "${SPLIT_ENV[@]}"
  [ "$status" -eq 0 ]
  grep -qx "$(join_line 1) --node-name .*" "$BATS_TEST_TMPDIR/node-b/calls.log"
  [ "$(cat "$BATS_TEST_TMPDIR/node-b/shared/k8s/node-role")" = worker ]
  # The refresh timer keeps only what the control plane writes with.
  local env_file="$BATS_TEST_TMPDIR/node-a/root/etc/k8s-node-setup/cluster.env"
  grep -q "^K8S_CLUSTER_JOIN_URL=" "$env_file"
  grep -q "^K8S_CLUSTER_CLAIM_URL=" "$env_file" && false
  node_env "$BATS_TEST_TMPDIR/node-a"
  run env "${NODE_ENV[@]}" "$SETUP_SCRIPT" --refresh-join
  [ "$status" -eq 0 ]
}

@test "what a Batch reader gets from the start task cannot take the lock or redirect a joining node" {
  split_urls
  run_auto_node node-a "${SPLIT_ENV[@]}"
  [ "$status" -eq 0 ]
  local h=(-sS -o /dev/null -w '%{http_code}' -H "x-ms-version: 2021-08-06" -H "x-ms-blob-type: BlockBlob")
  echo '{"nodeId":"evil","endpoint":"10.9.9.9:6443","caCertHash":"sha256:00"}' >"$BATS_TEST_TMPDIR/evil-lock"
  # The lock's create-only SAS cannot overwrite, lease or delete it; the container SAS cannot write at all.
  [ "$("$REAL_CURL" "${h[@]}" -X PUT --data-binary "@$BATS_TEST_TMPDIR/evil-lock" "${SPLIT[1]}")" = 403 ]
  [ "$("$REAL_CURL" "${h[@]}" -X PUT -H "x-ms-lease-action: acquire" -H "x-ms-lease-duration: -1" \
    "${SPLIT[1]%%\?*}?comp=lease&${SPLIT[1]#*\?}")" = 403 ]
  [ "$("$REAL_CURL" "${h[@]}" -X DELETE "${SPLIT[1]}")" = 403 ]
  [ "$("$REAL_CURL" "${h[@]}" -X PUT --data-binary "@$BATS_TEST_TMPDIR/evil-lock" \
    "${SPLIT[0]/\?//control-plane.lock?}")" = 403 ]
  # join-command can be overwritten, but a command for another API server or CA is refused.
  printf 'kubeadm join 10.9.9.9:6443 --token abcdef.0000000000000009 --discovery-token-ca-cert-hash sha256:%064d\n' 0 \
    >"$BATS_TEST_TMPDIR/evil-join"
  [ "$("$REAL_CURL" "${h[@]}" -X PUT -H "x-ms-meta-expires: $(($(date -u +%s) + 600))" \
    --data-binary "@$BATS_TEST_TMPDIR/evil-join" "${SPLIT[2]}")" = 201 ]
  run_auto_node node-b "${SPLIT_ENV[@]}"
  [ "$status" -ne 0 ]
  [[ "$output" == *"join-command names API server 10.9.9.9:6443 with CA sha256:"*"but control-plane.lock pins 10.0.0.4:6443 with CA $(ca_hash): refusing to join"* ]]
  run grep -q "^kubeadm join" "$BATS_TEST_TMPDIR/node-b/calls.log"
  [ "$status" -eq 1 ]
}

@test "a lock pinning an API server outside the node's network is refused at once" {
  printf '{"nodeId":"evil","endpoint":"203.0.113.9:6443","caCertHash":"%s"}\n' "$(ca_hash)" >"$BATS_TEST_TMPDIR/lock"
  put_blob control-plane.lock "$BATS_TEST_TMPDIR/lock"
  local started=$SECONDS
  run_node node-b --join-timeout 30
  [ "$status" -ne 0 ]
  [ $((SECONDS - started)) -lt 15 ]
  [[ "$output" == *"pins API server 203.0.113.9:6443, outside this node's networks (10.0.0.0/24)"* ]]
  run grep -q "^kubeadm join" "$BATS_TEST_TMPDIR/node-b/calls.log"
  [ "$status" -eq 1 ]
}
