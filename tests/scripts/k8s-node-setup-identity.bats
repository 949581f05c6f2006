#!/usr/bin/env bats
# scripts/k8s-node-setup.sh role auto on a pool with a managed identity: no SAS anywhere.
# The node asks the instance metadata service (a curl stub answering as IMDS does) for a
# Blob storage token and sends it as a bearer token; a real Azurite serves the container,
# reached through the stub, which stands in for Storage accepting that identity's token.

load azurite

setup() {
  load helpers
  common_setup
  local sas_url
  sas_url="$("$PYTHON" "$BATS_TEST_DIRNAME/azurite_container.py" "$AZURITE_PORT" "ident-$BATS_TEST_NUMBER")"
  CLUSTER_URL="${sas_url%%\?*}"
  export STUB_PASSTHROUGH_URL="http://127.0.0.1:$AZURITE_PORT/" STUB_BEARER_SAS="${sas_url#*\?}"
  export STUB_IMDS_CLIENT_ID=0b1d2c3e-4f50-4a61-8b72-93a4b5c6d7e8 STUB_IMDS_TOKEN="eyJ0eXAi.token-$RANDOM-$RANDOM"
}

# run_node NAME [VAR=value...]: the script as node NAME with the identity's settings (and more environment).
run_node() {
  local name="$1"
  shift
  run_auto_node "$name" K8S_CLUSTER_URL="$CLUSTER_URL" K8S_STORAGE_CLIENT_ID="$STUB_IMDS_CLIENT_ID" "$@"
}

blob() { "$REAL_CURL" -sSf -H "x-ms-version: 2021-08-06" "$CLUSTER_URL/$1?$STUB_BEARER_SAS"; }

@test "identity: the first node becomes the control plane and the next joins, with IMDS tokens and no SAS" {
  run_node node-a
  [ "$status" -eq 0 ]
  [ "$(cat "$BATS_TEST_TMPDIR/node-a/shared/k8s/node-role")" = control-plane ]
  run_node node-b
  [ "$status" -eq 0 ]
  [ "$(cat "$BATS_TEST_TMPDIR/node-b/shared/k8s/node-role")" = worker ]
  grep -qx "$(join_line 1) --node-name .*" "$BATS_TEST_TMPDIR/node-b/calls.log"
  blob control-plane.json | grep -q '"nodeId":"node-a"'
  # IMDS was asked as its documentation says: header Metadata: true, storage resource, this client id.
  local imds
  imds="$(grep -h "169.254.169.254" "$BATS_TEST_TMPDIR"/node-?/calls.log | head -n1)"
  [[ "$imds" == *"-H Metadata: true"* ]]
  [[ "$imds" == *"/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://storage.azure.com/&client_id=$STUB_IMDS_CLIENT_ID"* ]]
}

@test "identity: the token is never an argument, in the output or on disk, and the refresh timer needs no SAS" {
  run_node node-a
  [ "$status" -eq 0 ]
  [[ "$output" != *"$STUB_IMDS_TOKEN"* ]]
  run grep -rlF "$STUB_IMDS_TOKEN" "$BATS_TEST_TMPDIR/node-a"
  [ "$status" -eq 1 ]
  local env_file="$BATS_TEST_TMPDIR/node-a/root/etc/k8s-node-setup/cluster.env"
  grep -qxF "K8S_CLUSTER_URL=$CLUSTER_URL" "$env_file"
  grep -qx "K8S_STORAGE_CLIENT_ID=$STUB_IMDS_CLIENT_ID" "$env_file"
  grep -qx "K8S_CLUSTER_SAS_URL=''" "$env_file"
  # What the systemd timer runs: the env file only, a fresh token from IMDS.
  node_env "$BATS_TEST_TMPDIR/node-a"
  run env "${NODE_ENV[@]}" "$SETUP_SCRIPT" --refresh-join
  [ "$status" -eq 0 ]
  [ "$(blob join-command)" = "$(join_line 2) " ]
}

@test "identity: an identity IMDS does not know stops the node before anything is changed, saying why" {
  run_node node-a K8S_STORAGE_CLIENT_ID=11111111-2222-4333-8444-555555555555
  [ "$status" -ne 0 ]
  [[ "$output" == *"no storage token for identity 11111111-2222-4333-8444-555555555555 from the instance metadata service: Identity not found"* ]]
  [[ "$output" == *"the cluster container could not be used"* ]]
  grep -q "^kubeadm init --" "$BATS_TEST_TMPDIR/node-a/calls.log" && false
  [ ! -e "$BATS_TEST_TMPDIR/node-a/root/var/lib/k8s-node-setup/done" ]
}

@test "identity: storage refusing the identity is a 403 that names the missing role" {
  run_node node-a STUB_STORAGE_ACCEPTS=the-token-of-another-identity
  [ "$status" -ne 0 ]
  [[ "$output" == *"Storage Blob Data Contributor"* ]]
}

@test "identity: bad input is reported before anything is called" {
  node_env "$NODE"
  run env "${NODE_ENV[@]}" K8S_ROLE=auto K8S_CLUSTER_URL="$CLUSTER_URL?sv=1&sig=SECRET" "$SETUP_SCRIPT" --check
  [ "$status" -eq 2 ]
  [[ "$output" == *"K8S_CLUSTER_URL must be http(s)://.../container without a query"* ]]
  [[ "$output" == *"K8S_STORAGE_CLIENT_ID must be the pool identity's client id"* ]]
  [[ "$output" != *SECRET* ]]
  run env "${NODE_ENV[@]}" K8S_ROLE=auto K8S_CLUSTER_URL="$CLUSTER_URL" K8S_STORAGE_CLIENT_ID="$STUB_IMDS_CLIENT_ID" \
    K8S_CLUSTER_SAS_URL="$CLUSTER_URL?sig=x" "$SETUP_SCRIPT" --check
  [ "$status" -eq 2 ]
  [[ "$output" == *"not both"* ]]
  [ ! -s "$NODE/calls.log" ]
}
