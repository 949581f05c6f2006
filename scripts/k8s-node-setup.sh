#!/usr/bin/env bash
# Bootstrap Kubernetes (kubeadm + containerd) on an Azure Batch node.
#
# Used as the Batch pool start task, but works on any Ubuntu/Debian host.
# Idempotent: a node that finished setup before (marker file) is left alone,
# so reruns on reboot are no-ops.
#
# Roles:
#   single  every node is its own one-node cluster (control plane, untainted).
#   auto    the nodes of one pool form one cluster: the first to create a lock
#           blob in a private per-pool container (once; it pins the API endpoint
#           and the CA hash) runs `kubeadm init` and publishes a join command
#           there; the others, and nodes added later, join that endpoint only.
#           A systemd timer refreshes the token. The container is reached with
#           SAS URLs, or with a pool identity's tokens from the instance metadata
#           service. One control plane: see --help ("If the control plane is lost").
#
# Run with --help for options. Every option also has an environment variable,
# which is how the Batch pool spec passes them.
set -Eeuo pipefail

# ---- pinned versions (change here, or override by environment / arguments) ----
K8S_VERSION="${K8S_VERSION:-1.36}"                 # MAJOR.MINOR; keep equal to the app's K8S_VERSION default
# MAJOR.MINOR of the distribution's containerd package (Ubuntu 24.04 updates ship 2.2).
# Kubernetes 1.35 was the last minor to support containerd 1.x.
CONTAINERD_VERSION="${CONTAINERD_VERSION:-2.2}"
# Flannel (VXLAN backend): Azure virtual networks drop IP-in-IP, which rules out Calico's default mode.
CNI_MANIFEST_URL="${CNI_MANIFEST_URL:-https://github.com/flannel-io/flannel/releases/download/v0.28.8/kube-flannel.yml}"
CNI_DEFAULT_CIDR="10.244.0.0/16"                   # the network written in the Flannel manifest
POD_CIDR="${POD_CIDR:-$CNI_DEFAULT_CIDR}"
LOCAL_PATH_MANIFEST_URL="${LOCAL_PATH_MANIFEST_URL:-https://raw.githubusercontent.com/rancher/local-path-provisioner/v0.0.37/deploy/local-path-storage.yaml}"
STORAGE_CLASS="${STORAGE_CLASS:-local-path}"

# ---- behaviour ----
K8S_ROLE="${K8S_ROLE:-${K8S_NODE_ROLE:-single}}"   # K8S_NODE_ROLE: the app setting's name
K8S_SETUP_STAGE="${K8S_SETUP_STAGE:-all}"          # all | packages (image build: install only)
K8S_CLUSTER_SAS_URL="${K8S_CLUSTER_SAS_URL:-}"      # auto: container URL + '?' + SAS (read; all writes without the three below)
K8S_CLUSTER_CLAIM_URL="${K8S_CLUSTER_CLAIM_URL:-}"  # auto: control-plane.lock + create-only SAS (the election)
K8S_CLUSTER_JOIN_URL="${K8S_CLUSTER_JOIN_URL:-}"    # auto: join-command + create/write SAS (the control plane)
K8S_CLUSTER_RECORD_URL="${K8S_CLUSTER_RECORD_URL:-}" # auto: control-plane.json + create/write SAS (the control plane)
ADVERTISE_ADDRESS="${ADVERTISE_ADDRESS:-}"          # auto: the API server's address (default: this node's first IP)
JOIN_NETWORKS="${JOIN_NETWORKS:-}"                  # auto: CIDRs the control plane must be in (default: this node's)
K8S_CLUSTER_URL="${K8S_CLUSTER_URL:-}"              # auto with a pool identity: container URL, no SAS
K8S_STORAGE_CLIENT_ID="${K8S_STORAGE_CLIENT_ID:-}"  # the pool identity's client id (tokens from IMDS)
IMDS_ENDPOINT="${IMDS_ENDPOINT:-http://169.254.169.254}"
JOIN_TOKEN_TTL="${JOIN_TOKEN_TTL:-24h}"
JOIN_REFRESH_INTERVAL="${JOIN_REFRESH_INTERVAL:-6h}"
JOIN_TIMEOUT="${JOIN_TIMEOUT:-1800}"               # seconds a joining node waits for the join command
JOIN_POLL_INTERVAL="${JOIN_POLL_INTERVAL:-10}"
UNTAINT_CONTROL_PLANE="${UNTAINT_CONTROL_PLANE:-1}" # Batch nodes are compute: run pods on the control plane too
NODE_ID="${NODE_ID:-${AZ_BATCH_NODE_ID:-$(hostname)}}"
AZ_STORAGE_API_VERSION="${AZ_STORAGE_API_VERSION:-2021-08-06}"

# ---- paths: K8S_SETUP_ROOT prefixes every system path (tests use a temp dir) ----
ROOT="${K8S_SETUP_ROOT:-}"
STATE_DIR="$ROOT/var/lib/k8s-node-setup"
CONF_DIR="$ROOT/etc/k8s-node-setup"
if [[ -n "${AZ_BATCH_NODE_SHARED_DIR:-}" ]]; then
  KUBECONFIG_TARGET="${KUBECONFIG_TARGET:-$AZ_BATCH_NODE_SHARED_DIR/k8s/admin.conf}"
else
  KUBECONFIG_TARGET="${KUBECONFIG_TARGET:-$ROOT/root/.kube/config}"
fi
KUBECONFIG_MODE="${KUBECONFIG_MODE:-0600}"
KUBECONFIG_GROUP="${KUBECONFIG_GROUP:-}"           # with a group, use KUBECONFIG_MODE=0640
ADMIN_CONF="$ROOT/etc/kubernetes/admin.conf"
PKI_DIR="$ROOT/etc/kubernetes/pki"
INSTALLED_SCRIPT="$ROOT/usr/local/sbin/k8s-node-setup.sh"
SYSTEMD_DIR="$ROOT/etc/systemd/system"

LOG_PREFIX="[k8s-node-setup]"
CURRENT_STEP="start"
REFRESH_ONLY=0
CHECK_ONLY=0

log() { printf '%s %s\n' "$LOG_PREFIX" "$*" >&2; }
die() { log "error: $*"; exit 2; }
step() { CURRENT_STEP="$1"; log "step: $1"; }

# Replace any query string (a SAS) in a text with '?***'.
mask() { sed -E 's/\?[^[:space:]"'\'']*/?***/g' <<<"$*"; }

# utc EPOCH: ISO 8601 time.
utc() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }

# duration_seconds 24h|30m|90s
duration_seconds() {
  local n="${1%?}"
  case "${1: -1}" in h) echo $((n * 3600)) ;; m) echo $((n * 60)) ;; *) echo "$n" ;; esac
}

on_error() {
  local rc=$?
  log "error: step '$CURRENT_STEP' failed (exit $rc) at line $1: $(mask "$BASH_COMMAND")"
  exit "$rc"
}

usage() {
  cat <<EOF
Usage: k8s-node-setup.sh [options]

Bootstrap a Kubernetes node with kubeadm and containerd (idempotent).

Options (environment variable in brackets):
  --role single|auto         [K8S_ROLE] default: $K8S_ROLE
  --k8s-version X.Y          [K8S_VERSION] pkgs.k8s.io minor, default: $K8S_VERSION
  --containerd-version X.Y   [CONTAINERD_VERSION] default: $CONTAINERD_VERSION
  --pod-cidr CIDR            [POD_CIDR] default: $POD_CIDR
  --cni-manifest URL         [CNI_MANIFEST_URL] pinned Flannel manifest
  --local-path-manifest URL  [LOCAL_PATH_MANIFEST_URL] pinned local-path provisioner
  --cluster-sas-url URL      [K8S_CLUSTER_SAS_URL] role auto: private container URL with SAS
                             (read-only when the three blob URLs below are given)
  [K8S_CLUSTER_CLAIM_URL, K8S_CLUSTER_JOIN_URL, K8S_CLUSTER_RECORD_URL] role auto: URLs with
                             a SAS for one blob each: control-plane.lock (create only),
                             join-command and control-plane.json (create, write)
  --cluster-url URL          [K8S_CLUSTER_URL] role auto on a pool with a managed identity:
                             the container URL without SAS; needs --storage-client-id
  --storage-client-id GUID   [K8S_STORAGE_CLIENT_ID] the identity's client id: Blob storage
                             tokens come from the instance metadata service
  --kubeconfig-target PATH   [KUBECONFIG_TARGET] where tasks read the admin kubeconfig
                             default: \$AZ_BATCH_NODE_SHARED_DIR/k8s/admin.conf
  --kubeconfig-mode MODE     [KUBECONFIG_MODE] 0600 or 0640 (never world-readable)
  --join-token-ttl DURATION  [JOIN_TOKEN_TTL] default: $JOIN_TOKEN_TTL
  --join-refresh DURATION    [JOIN_REFRESH_INTERVAL] timer period, default: $JOIN_REFRESH_INTERVAL
  --join-timeout SECONDS     [JOIN_TIMEOUT] default: $JOIN_TIMEOUT
  --stage all|packages       [K8S_SETUP_STAGE] 'packages' installs software only (image build)
  --refresh-join             publish a fresh join command (what the timer runs)
  --check                    validate the inputs, change nothing, exit
  -h, --help                 show this help

Other environment: K8S_SETUP_ROOT (prefix for system paths), NODE_ID,
JOIN_POLL_INTERVAL, UNTAINT_CONTROL_PLANE (1/0), STORAGE_CLASS, KUBECONFIG_GROUP.

Role auto keeps its state in the cluster container: control-plane.lock (created
once by the winner, never overwritten: its nodeId, API endpoint and the sha256
of the cluster CA, which workers require of any join command), join-command
(metadata expires: when its token ends) and control-plane.json (for people and
the app).

If the control plane is lost: the cluster is lost with it (one control
plane, etcd on that node), and the lock is permanent, so no node takes
over. A joining node that finds an expired join command says so and stops.
To rebuild: delete the pool and create it again (creating an auto pool clears
the container), or resize it to 0 nodes, delete control-plane.lock,
delete the container's blobs and resize it back; the first node to start
becomes the new control plane. docs/kubernetes.md has the commands.
EOF
}

parse_args() {
  while (($#)); do
    case "$1" in
      -h|--help) usage; exit 0 ;;
      --refresh-join) REFRESH_ONLY=1; shift; continue ;;
      --check) CHECK_ONLY=1; shift; continue ;;
      --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}"; continue ;;
    esac
    (($# >= 2)) || die "option $1 needs a value (see --help)"
    case "$1" in
      --role) K8S_ROLE="$2" ;;
      --k8s-version) K8S_VERSION="$2" ;;
      --containerd-version) CONTAINERD_VERSION="$2" ;;
      --pod-cidr) POD_CIDR="$2" ;;
      --cni-manifest) CNI_MANIFEST_URL="$2" ;;
      --local-path-manifest) LOCAL_PATH_MANIFEST_URL="$2" ;;
      --cluster-sas-url) K8S_CLUSTER_SAS_URL="$2" ;;
      --cluster-url) K8S_CLUSTER_URL="$2" ;;
      --storage-client-id) K8S_STORAGE_CLIENT_ID="$2" ;;
      --kubeconfig-target) KUBECONFIG_TARGET="$2" ;;
      --kubeconfig-mode) KUBECONFIG_MODE="$2" ;;
      --join-token-ttl) JOIN_TOKEN_TTL="$2" ;;
      --join-refresh) JOIN_REFRESH_INTERVAL="$2" ;;
      --join-timeout) JOIN_TIMEOUT="$2" ;;
      --stage) K8S_SETUP_STAGE="$2" ;;
      *) die "unknown option: $1 (see --help)" ;;
    esac
    shift 2
  done
}

# Everything is checked here, before the first change to the machine.
validate() {
  local problems=()
  [[ "$K8S_ROLE" =~ ^(single|auto)$ ]] || problems+=("K8S_ROLE must be 'single' or 'auto', got '$K8S_ROLE'")
  [[ "$K8S_VERSION" =~ ^[0-9]+\.[0-9]+$ ]] || problems+=("K8S_VERSION must be MAJOR.MINOR (e.g. 1.34), got '$K8S_VERSION'")
  [[ "$CONTAINERD_VERSION" =~ ^[0-9]+\.[0-9]+$ ]] || problems+=("CONTAINERD_VERSION must be MAJOR.MINOR (e.g. 2.2), got '$CONTAINERD_VERSION'")
  if [[ "$K8S_VERSION" =~ ^1\.([0-9]+)$ ]] && ((BASH_REMATCH[1] >= 36)) && [[ "$CONTAINERD_VERSION" =~ ^1\.[0-9]+$ ]]; then
    problems+=("Kubernetes $K8S_VERSION needs containerd 2.x (1.35 was the last minor to support 1.x), got CONTAINERD_VERSION '$CONTAINERD_VERSION'")
  fi
  [[ "$K8S_SETUP_STAGE" =~ ^(all|packages)$ ]] || problems+=("K8S_SETUP_STAGE must be 'all' or 'packages', got '$K8S_SETUP_STAGE'")
  [[ "$POD_CIDR" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$ ]] || problems+=("POD_CIDR is not an IPv4 CIDR: '$POD_CIDR'")
  [[ "$KUBECONFIG_MODE" =~ ^0?[0-7][0-7]0$ ]] || problems+=("KUBECONFIG_MODE must not give others any access (e.g. 0600 or 0640), got '$KUBECONFIG_MODE'")
  [[ "$JOIN_TIMEOUT" =~ ^[0-9]+$ ]] || problems+=("JOIN_TIMEOUT must be seconds, got '$JOIN_TIMEOUT'")
  [[ "$JOIN_TOKEN_TTL" =~ ^[0-9]+[hms]$ ]] || problems+=("JOIN_TOKEN_TTL must look like 24h, got '$JOIN_TOKEN_TTL'")
  [[ "$JOIN_REFRESH_INTERVAL" =~ ^[0-9]+[hms]$ ]] || problems+=("JOIN_REFRESH_INTERVAL must look like 6h, got '$JOIN_REFRESH_INTERVAL'")
  if [[ "$JOIN_TOKEN_TTL" =~ ^[0-9]+[hms]$ && "$JOIN_REFRESH_INTERVAL" =~ ^[0-9]+[hms]$ ]] &&
    (($(duration_seconds "$JOIN_REFRESH_INTERVAL") >= $(duration_seconds "$JOIN_TOKEN_TTL"))); then
    problems+=("JOIN_REFRESH_INTERVAL ($JOIN_REFRESH_INTERVAL) must be shorter than JOIN_TOKEN_TTL ($JOIN_TOKEN_TTL)")
  fi
  [[ "$NODE_ID" =~ ^[A-Za-z0-9._-]+$ ]] || problems+=("NODE_ID has unexpected characters: '$NODE_ID'")
  [[ -z "$JOIN_NETWORKS" || "$JOIN_NETWORKS" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}(,[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2})*$ ]] ||
    problems+=("JOIN_NETWORKS must be IPv4 CIDRs separated by commas, got '$JOIN_NETWORKS'")
  # The container is only needed to form the cluster, not to install packages.
  if [[ ("$K8S_ROLE" == auto && "$K8S_SETUP_STAGE" == all) || "$REFRESH_ONLY" == 1 ]]; then
    if [[ -n "$K8S_CLUSTER_URL" ]]; then
      [[ -z "$K8S_CLUSTER_SAS_URL" ]] || problems+=("give K8S_CLUSTER_URL (pool identity) or K8S_CLUSTER_SAS_URL, not both")
      [[ "$K8S_CLUSTER_URL" =~ ^https?://[^?#]+$ ]] ||
        problems+=("K8S_CLUSTER_URL must be http(s)://.../container without a query (the pool identity signs in), got '$(mask "$K8S_CLUSTER_URL")'")
      [[ "$K8S_STORAGE_CLIENT_ID" =~ ^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$ ]] ||
        problems+=("K8S_STORAGE_CLIENT_ID must be the pool identity's client id (a GUID) with K8S_CLUSTER_URL, got '$K8S_STORAGE_CLIENT_ID'")
    elif [[ -z "$K8S_CLUSTER_SAS_URL" ]]; then
      problems+=("K8S_CLUSTER_SAS_URL is required for role 'auto' (container URL with a SAS), or K8S_CLUSTER_URL with K8S_STORAGE_CLIENT_ID (pool identity)")
    elif [[ ! "$K8S_CLUSTER_SAS_URL" =~ ^https?://[^?]+\?.+ ]]; then
      problems+=("K8S_CLUSTER_SAS_URL must be http(s)://.../container?<sas>, got '$(mask "$K8S_CLUSTER_SAS_URL")'")
    fi
  fi
  if ((${#problems[@]})); then
    local p
    for p in "${problems[@]}"; do log "invalid input: $p"; done
    exit 2
  fi
}

# ---------------------------------------------------------------- node prep --

disable_swap() {
  step "disable swap"
  swapoff -a
  # Keep it off after a reboot: comment out swap entries.
  if [[ -f "$ROOT/etc/fstab" ]]; then
    sed -i -E 's@^([^#].*[[:space:]]swap[[:space:]].*)$@# disabled for kubelet: \1@' "$ROOT/etc/fstab"
  fi
}

kernel_settings() {
  step "kernel modules and sysctls"
  mkdir -p "$ROOT/etc/modules-load.d" "$ROOT/etc/sysctl.d"
  printf 'overlay\nbr_netfilter\n' >"$ROOT/etc/modules-load.d/k8s.conf"
  modprobe overlay
  modprobe br_netfilter
  cat >"$ROOT/etc/sysctl.d/99-kubernetes.conf" <<'EOF'
net.bridge.bridge-nf-call-iptables  = 1
net.bridge.bridge-nf-call-ip6tables = 1
net.ipv4.ip_forward                 = 1
EOF
  sysctl --system >/dev/null
}

install_packages() {
  step "install containerd $CONTAINERD_VERSION and kubeadm/kubelet/kubectl $K8S_VERSION"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q apt-transport-https ca-certificates curl gpg

  # pkgs.k8s.io has one repository per minor version.
  local repo="https://pkgs.k8s.io/core:/stable:/v${K8S_VERSION}/deb/"
  local keyring="$ROOT/etc/apt/keyrings/kubernetes-apt-keyring.gpg"
  mkdir -p "$ROOT/etc/apt/keyrings" "$ROOT/etc/apt/sources.list.d" "$ROOT/etc/apt/preferences.d"
  curl -fsSL "${repo}Release.key" | gpg --dearmor --yes -o "$keyring"
  chmod 0644 "$keyring"
  echo "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] ${repo} /" \
    >"$ROOT/etc/apt/sources.list.d/kubernetes.list"
  apt-get update -q

  # containerd stays on the pinned minor but still takes that minor's security updates
  # (an apt pin, not a hold); an unattended upgrade to another minor is refused.
  printf 'Package: containerd\nPin: version %s.*\nPin-Priority: 1001\n' "$CONTAINERD_VERSION" \
    >"$ROOT/etc/apt/preferences.d/containerd-k8s-node-setup"
  # A containerd of the pinned minor already present (e.g. baked into the image) is kept.
  if command -v containerd >/dev/null && [[ "$(containerd --version)" =~ [[:space:]]v?${CONTAINERD_VERSION//./\\.}\. ]]; then
    log "containerd $CONTAINERD_VERSION already installed"
  else
    apt-get install -y -q "containerd=${CONTAINERD_VERSION}.*"
  fi
  # kubeadm upgrades these deliberately, one minor at a time: hold them (as the kubeadm docs do).
  apt-get install -y -q kubelet kubeadm kubectl
  apt-mark hold kubelet kubeadm kubectl >/dev/null
}

# The table that holds runc's SystemdCgroup, by config version: 3 is containerd 2.x,
# 2 is containerd 1.x (spaces and quotes removed; TOML allows either quote).
runc_options_table() {
  case "$1" in
    3) echo "[plugins.io.containerd.cri.v1.runtime.containerd.runtimes.runc.options]" ;;
    2) echo "[plugins.io.containerd.grpc.v1.cri.containerd.runtimes.runc.options]" ;;
    *) return 1 ;;
  esac
}

# systemd_cgroup_enabled CONFIG: true when SystemdCgroup = true sits in runc's options
# table for the config's version (a key in any other table has no effect).
systemd_cgroup_enabled() {
  local config="$1" version table
  version="$(sed -nE 's/^version[[:space:]]*=[[:space:]]*([0-9]+).*/\1/p' "$config" | head -n1)"
  table="$(runc_options_table "$version")" || { log "unsupported containerd config version '$version' in $config"; return 1; }
  awk -v want="$table" '
    function bare(s) { gsub(/[[:space:]"\047]/, "", s); return s }
    /^[[:space:]]*\[/ { inside = (bare($0) == want); next }
    inside && /^[[:space:]]*SystemdCgroup[[:space:]]*=[[:space:]]*true[[:space:]]*$/ { found = 1 }
    END { exit !found }' "$config"
}

configure_containerd() {
  step "configure containerd (SystemdCgroup = true)"
  local config="$ROOT/etc/containerd/config.toml"
  mkdir -p "$(dirname "$config")"
  containerd config default >"$config"
  sed -i -E 's/^([[:space:]]*SystemdCgroup[[:space:]]*=[[:space:]]*)false/\1true/' "$config"
  # Use the pause image this kubeadm expects instead of containerd's default: the key is
  # sandbox_image in config version 2, pinned_images.sandbox in version 3.
  local pause
  pause="$(kubeadm config images list --kubernetes-version "$(kubeadm_version)" 2>/dev/null | grep '/pause:' || true)"
  if [[ -n "$pause" ]]; then
    sed -i -E "s#^([[:space:]]*(sandbox_image|sandbox)[[:space:]]*=[[:space:]]*).*#\1\"${pause}\"#" "$config"
  fi
  # kubelet uses the systemd cgroup driver; a cgroupfs containerd makes pods crash-loop.
  if ! systemd_cgroup_enabled "$config"; then
    log "error: $config does not set SystemdCgroup = true in runc's options table"
    return 1
  fi
  systemctl restart containerd
  systemctl enable containerd kubelet
}

# ------------------------------------------------------------ control plane --

kubectl_admin() { kubectl --kubeconfig "$ADMIN_CONF" "$@"; }

# The installed kubeadm's own version: deterministic, and needs no download.
kubeadm_version() { kubeadm version -o short; }

# A start task that failed half-way is retried by Batch: undo a partial kubeadm run first.
# With keep-ca (the control plane of role auto) the cluster CA that control-plane.lock
# pins survives the reset, which empties the pki directory.
reset_partial_setup() {
  if [[ -e "$ROOT/etc/kubernetes/admin.conf" || -e "$ROOT/etc/kubernetes/kubelet.conf" ]]; then
    step "reset an incomplete earlier setup"
    local kept=""
    if [[ "${1:-}" == keep-ca && -f "$PKI_DIR/ca.crt" ]]; then
      kept="$(umask 077 && mktemp -d)"
      cp -p "$PKI_DIR"/ca.crt "$PKI_DIR"/ca.key "$kept"/
    fi
    kubeadm reset -f
    if [[ -n "$kept" ]]; then
      mkdir -p "$PKI_DIR"
      cp -p "$kept"/ca.crt "$kept"/ca.key "$PKI_DIR"/
      rm -rf "$kept"
    fi
  fi
}

kubeadm_init() {
  if [[ "$K8S_ROLE" == auto ]]; then reset_partial_setup keep-ca; else reset_partial_setup; fi
  step "kubeadm init"
  local advertise=()
  # role auto: the address the lock pinned, so the join command names the same endpoint
  if [[ "$K8S_ROLE" == auto ]]; then advertise=(--apiserver-advertise-address "$(advertise_address)"); fi
  kubeadm init --pod-network-cidr "$POD_CIDR" --kubernetes-version "$(kubeadm_version)" --node-name "$(node_name)" \
    "${advertise[@]}"
}

install_cni() {
  step "install CNI (Flannel)"
  local manifest="$STATE_DIR/cni.yaml"
  curl -fsSL -o "$manifest" "$CNI_MANIFEST_URL"
  # The manifest carries its own pod network; make it the one kubeadm was given.
  sed -i "s#${CNI_DEFAULT_CIDR}#${POD_CIDR}#g" "$manifest"
  kubectl_admin apply -f "$manifest"
}

untaint_control_plane() {
  step "allow workloads on the control plane"
  # `taint ... key-` fails when the taint is already gone: only that case is tolerated.
  if kubectl_admin get node "$(node_name)" -o jsonpath='{.spec.taints[*].key}' | grep -q 'node-role.kubernetes.io/control-plane'; then
    kubectl_admin taint nodes "$(node_name)" node-role.kubernetes.io/control-plane:NoSchedule-
  fi
}

install_storage_class() {
  step "default StorageClass ($STORAGE_CLASS)"
  kubectl_admin apply -f "$LOCAL_PATH_MANIFEST_URL"
  kubectl_admin patch storageclass "$STORAGE_CLASS" --type merge \
    -p '{"metadata":{"annotations":{"storageclass.kubernetes.io/is-default-class":"true"}}}'
}

publish_kubeconfig() {
  step "admin kubeconfig to $KUBECONFIG_TARGET"
  local dir
  dir="$(dirname "$KUBECONFIG_TARGET")"
  mkdir -p "$dir"
  chmod 0750 "$dir"
  # Written under a tight umask and renamed, so it is never readable by others, even briefly.
  local tmp
  tmp="$(umask 077 && mktemp "$dir/.admin.conf.XXXXXX")"
  cat "$ADMIN_CONF" >"$tmp"
  if [[ -n "$KUBECONFIG_GROUP" ]]; then chgrp "$KUBECONFIG_GROUP" "$tmp"; fi
  chmod "$KUBECONFIG_MODE" "$tmp"
  mv -f "$tmp" "$KUBECONFIG_TARGET"
}

wait_for_node_ready() {
  step "wait for the node to be Ready"
  kubectl_admin wait --for=condition=Ready "node/$(node_name)" --timeout=300s
}

node_name() { hostname | tr '[:upper:]' '[:lower:]'; }

# ------------------------------------------------------ blob calls (role auto) --

SAS_BASE="" SAS_QUERY=""
split_sas_url() {
  if [[ -n "$K8S_CLUSTER_URL" ]]; then # the pool identity signs in: no query at all
    SAS_BASE="${K8S_CLUSTER_URL%/}"
    SAS_QUERY=""
    return
  fi
  SAS_BASE="${K8S_CLUSTER_SAS_URL%%\?*}"
  SAS_BASE="${SAS_BASE%/}"
  SAS_QUERY="${K8S_CLUSTER_SAS_URL#*\?}"
}

# A field of a one-line JSON document on stdin (what IMDS answers).
json_field() { sed -nE "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"?([^\",}]*)\"?.*/\1/p" | head -n1; }

STORAGE_TOKEN="" STORAGE_TOKEN_EXPIRES=0
# With a pool identity: a Blob storage token from the instance metadata service, kept in this
# shell (never in a file, an argument or the log) and fetched again 5 minutes before it expires.
# Call it before blob_request, which runs in a subshell and only reads the token.
ensure_storage_token() {
  [[ -n "$K8S_CLUSTER_URL" ]] || return 0
  (($(date -u +%s) < STORAGE_TOKEN_EXPIRES - 300)) && return 0
  local body reason
  body="$(curl -sS --retry 5 --retry-connrefused --max-time 30 -H "Metadata: true" \
    "$IMDS_ENDPOINT/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://storage.azure.com/&client_id=$K8S_STORAGE_CLIENT_ID")" ||
    { log "the instance metadata service ($IMDS_ENDPOINT) did not answer"; return 1; }
  STORAGE_TOKEN="$(json_field access_token <<<"$body")"
  STORAGE_TOKEN_EXPIRES="$(json_field expires_on <<<"$body")"
  if [[ -z "$STORAGE_TOKEN" || ! "$STORAGE_TOKEN_EXPIRES" =~ ^[0-9]+$ ]]; then
    reason="$(json_field error_description <<<"$body")"
    STORAGE_TOKEN="" STORAGE_TOKEN_EXPIRES=0
    log "no storage token for identity $K8S_STORAGE_CLIENT_ID from the instance metadata service:" \
      "${reason:-no access_token in its answer} (is that identity assigned to the pool?)"
    return 1
  fi
}

# authorized CMD...: CMD with the storage token as a header, handed over on a file descriptor
# (printf is a builtin, so the token is never a process argument); CMD as is without a token.
authorized() {
  if [[ -n "$STORAGE_TOKEN" ]]; then
    "$@" -K <(printf 'header = "Authorization: Bearer %s"\n' "$STORAGE_TOKEN")
  else
    "$@"
  fi
}

# write_url BLOB: the URL (with its SAS) this node writes BLOB through: the blob's own URL
# when the pool gave one, else the container URL.
write_url() {
  local own=""
  case "$1" in
    control-plane.lock) own="$K8S_CLUSTER_CLAIM_URL" ;;
    join-command) own="$K8S_CLUSTER_JOIN_URL" ;;
    control-plane.json) own="$K8S_CLUSTER_RECORD_URL" ;;
  esac
  if [[ -n "$own" ]]; then echo "$own"; else echo "$SAS_BASE/$1${SAS_QUERY:+?$SAS_QUERY}"; fi
}

# blob_request METHOD BLOB EXTRA_QUERY OUTFILE [curl args...]; prints the HTTP status.
# Reads go through the container URL, writes through write_url. The SAS only ever goes
# to curl's argument list, never to the log. Every call here is safe to repeat, so curl
# retries throttling and transient server errors itself.
blob_request() {
  local method="$1" blob="$2" extra="$3" out="$4" url
  shift 4
  if [[ "$method" == PUT ]]; then url="$(write_url "$blob")"; else url="$SAS_BASE/$blob${SAS_QUERY:+?$SAS_QUERY}"; fi
  if [[ -n "$extra" ]]; then # before the SAS (bash 5.2 would expand an & in a ${//} replacement)
    if [[ "$url" == *\?* ]]; then url="${url%%\?*}?$extra&${url#*\?}"; else url="$url?$extra"; fi
  fi
  authorized curl -sS --retry 3 --retry-max-time 60 -o "$out" -w '%{http_code}' -X "$method" \
    -H "x-ms-version: $AZ_STORAGE_API_VERSION" "$@" "$url"
}

# http_status CODE: the code, with what it usually means for the cluster container.
http_status() {
  case "$1" in
    403) if [[ -n "$K8S_CLUSTER_URL" ]]; then
      echo "HTTP 403 (the pool identity was refused: it needs Storage Blob Data Contributor on the container)"
    else
      echo "HTTP 403 (the SAS was refused: expired, or without read/add/create/write)"
    fi ;;
    000) echo "no HTTP answer (storage not reachable)" ;;
    *) echo "HTTP $1" ;;
  esac
}

# blob_metadata HEADERS NAME: a metadata value from response headers saved with curl -D.
blob_metadata() {
  sed -nE "s/^x-ms-meta-$2:[[:space:]]*([^[:space:]]*).*/\1/Ip" "$1" | head -n1
}

blob_put() { # blob_put BLOB FILE [headers...]
  local blob="$1" file="$2" status
  shift 2
  status="$(blob_request PUT "$blob" "" /dev/null -H "x-ms-blob-type: BlockBlob" \
    -H "Content-Type: text/plain" --data-binary "@$file" "$@")"
  [[ "$status" == 201 ]] || { log "Put Blob $blob answered $(http_status "$status")"; return 1; }
}

LOCK_NODE="" LOCK_ENDPOINT="" LOCK_CA_HASH=""

# The sha256 of the cluster CA's public key, as kubeadm's --discovery-token-ca-cert-hash names it.
ca_cert_hash() {
  echo "sha256:$(openssl x509 -pubkey -noout -in "$PKI_DIR/ca.crt" | openssl pkey -pubin -outform der | sha256sum | cut -d' ' -f1)"
}

advertise_address() {
  if [[ -n "$ADVERTISE_ADDRESS" ]]; then echo "$ADVERTISE_ADDRESS"; else hostname -I | awk '{print $1}'; fi
}

# read_lock: LOCK_NODE, LOCK_ENDPOINT and LOCK_CA_HASH from control-plane.lock; 1 if there is none.
read_lock() {
  local body status
  body="$(mktemp)"
  status="$(blob_request GET control-plane.lock "" "$body" || true)"
  if [[ "$status" != 200 ]]; then rm -f "$body"; return 1; fi
  LOCK_NODE="$(json_field nodeId <"$body")"
  LOCK_ENDPOINT="$(json_field endpoint <"$body")"
  LOCK_CA_HASH="$(json_field caCertHash <"$body")"
  rm -f "$body"
}

# Returns 0 when this node is the control plane, 1 when another node is.
# The lock is created once (If-None-Match: *; the pool's SAS for it may only create) and
# never overwritten. The cluster CA is made first, so the lock pins the API endpoint and
# the CA hash in that one write: a worker joins only that API server, whoever writes
# join-command. A node that loses removes the CA it made.
elect_control_plane() {
  step "elect control plane (create-once lock)"
  split_sas_url
  ensure_storage_token || return 2
  local status lock="$STATE_DIR/control-plane.lock"
  mkdir -p "$STATE_DIR"
  kubeadm init phase certs ca --cert-dir "$PKI_DIR"
  printf '{"nodeId":"%s","hostname":"%s","endpoint":"%s:6443","caCertHash":"%s","claimed":"%s"}\n' "$NODE_ID" \
    "$(node_name)" "$(advertise_address)" "$(ca_cert_hash)" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$lock"
  status="$(blob_request PUT control-plane.lock "" /dev/null -H "x-ms-blob-type: BlockBlob" -H "If-None-Match: *" \
    -H "Content-Type: application/json" --data-binary "@$lock")"
  if [[ "$status" == 201 ]]; then
    log "this node ($NODE_ID) holds control-plane.lock: control plane"
    return 0
  fi
  # 409 or 412: taken (403 too with a create-only SAS, which may not even try to overwrite).
  if ! read_lock; then
    log "creating control-plane.lock answered $(http_status "$status") and no lock can be read"
    return 2
  fi
  if [[ "$LOCK_NODE" == "$NODE_ID" ]]; then # a rerun of this node's start task
    if [[ "$LOCK_CA_HASH" != "$(ca_cert_hash)" ]]; then
      log "control-plane.lock names this node but pins another cluster CA (was the node reimaged?); $RECOVERY_HINT"
      return 2
    fi
    log "this node ($NODE_ID) holds control-plane.lock: control plane"
    return 0
  fi
  rm -f "$PKI_DIR/ca.crt" "$PKI_DIR/ca.key"
  log "node ${LOCK_NODE:-unknown} holds control-plane.lock: joining as worker"
  return 1
}

# Publish a fresh join command. Used after init and by the refresh timer, so the
# blob's `expires` metadata doubles as the control plane's heartbeat: a command past
# it means the timer stopped, which in practice means the control plane is gone.
publish_join_command() {
  step "publish join command"
  split_sas_url
  ensure_storage_token
  local file="$STATE_DIR/join-command" now expires
  mkdir -p "$STATE_DIR"
  now="$(date -u +%s)"
  expires=$((now + $(duration_seconds "$JOIN_TOKEN_TTL")))
  (umask 077 && kubeadm token create --ttl "$JOIN_TOKEN_TTL" --print-join-command >"$file")
  validate_join_command "$(<"$file")" >/dev/null
  # Command and expiry in one Put Blob: a reader never sees one without the other.
  blob_put join-command "$file" -H "x-ms-meta-nodeid: $NODE_ID" -H "x-ms-meta-expires: $expires"
  printf '{"nodeId":"%s","hostname":"%s","published":"%s","expires":"%s"}\n' "$NODE_ID" "$(node_name)" \
    "$(utc "$now")" "$(utc "$expires")" >"$STATE_DIR/control-plane.json"
  blob_put control-plane.json "$STATE_DIR/control-plane.json"
  log "join command published (token valid for $JOIN_TOKEN_TTL, until $(utc "$expires"))"
}

# The join command comes from blob storage and is run as root: accept only the
# exact shape kubeadm prints, and print its arguments one a line (never eval).
validate_join_command() {
  local re='^kubeadm join ([A-Za-z0-9.:-]+) --token ([a-z0-9]{6}\.[a-z0-9]{16}) --discovery-token-ca-cert-hash (sha256:[a-f0-9]{64})[[:space:]]*$'
  [[ "$1" =~ $re ]] || { log "join command has an unexpected form"; return 1; }
  printf '%s\n' "${BASH_REMATCH[1]}" --token "${BASH_REMATCH[2]}" --discovery-token-ca-cert-hash "${BASH_REMATCH[3]}"
}

RECOVERY_HINT="see 'If the control plane is lost' in --help or docs/kubernetes.md"

ip_number() { local a b c d; IFS=. read -r a b c d <<<"$1"; echo $(((a << 24) + (b << 16) + (c << 8) + d)); }

# in_networks ADDRESS CIDR...: whether the IPv4 ADDRESS lies in one of the networks.
in_networks() {
  local address="$1" cidr bits mask
  [[ "$address" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || return 1
  shift
  for cidr in "$@"; do
    bits="${cidr#*/}"
    mask=$(((0xFFFFFFFF << (32 - bits)) & 0xFFFFFFFF))
    (((($(ip_number "$address") ^ $(ip_number "${cidr%/*}")) & mask) == 0)) && return 0
  done
  return 1
}

# The networks this node is in (JOIN_NETWORKS, else its global IPv4 addresses), one CIDR a line.
own_networks() {
  if [[ -n "$JOIN_NETWORKS" ]]; then tr ',' '\n' <<<"$JOIN_NETWORKS"; else ip -o -4 addr show scope global | awk '{print $4}'; fi
}

wait_and_join() {
  step "wait for join command"
  # The control plane is a node of this pool, so in this node's network: a lock that pins an API
  # server elsewhere was written by someone else before the pool's nodes started.
  local networks
  mapfile -t networks < <(own_networks)
  if ! in_networks "${LOCK_ENDPOINT%:*}" "${networks[@]}"; then
    log "control-plane.lock (node ${LOCK_NODE:-unknown}) pins API server ${LOCK_ENDPOINT:-nothing}, outside this" \
      "node's networks (${networks[*]}): it was not written by a node of this pool; refusing to join; $RECOVERY_HINT"
    return 1
  fi
  local deadline=$((SECONDS + JOIN_TIMEOUT)) status tmp headers
  tmp="$(mktemp)"
  headers="$(mktemp)"
  while :; do
    ensure_storage_token || { rm -f "$tmp" "$headers"; return 1; }
    status="$(blob_request GET join-command "" "$tmp" -D "$headers" || true)"
    [[ "$status" == 200 ]] && break
    if [[ "$status" == 403 ]]; then # waiting cannot help
      rm -f "$tmp" "$headers"
      log "reading join-command answered $(http_status 403)"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      rm -f "$tmp" "$headers"
      log "no join command after ${JOIN_TIMEOUT}s (last: $(http_status "$status")) from control plane ${LOCK_NODE:-unknown};" \
        "if that node is gone, $RECOVERY_HINT"
      return 1
    fi
    sleep "$JOIN_POLL_INTERVAL"
  done
  local expires publisher
  expires="$(blob_metadata "$headers" expires)"
  publisher="$(blob_metadata "$headers" nodeid)"
  rm -f "$headers"
  # Joining with an expired token fails inside kubeadm with an obscure message; say what happened.
  if [[ "$expires" =~ ^[0-9]+$ ]] && (($(date -u +%s) >= expires)); then
    rm -f "$tmp"
    log "the join command from control plane ${publisher:-unknown} expired at $(utc "$expires") and was not" \
      "refreshed: that node is probably gone and the cluster with it; $RECOVERY_HINT"
    return 1
  fi
  local args
  mapfile -t args < <(validate_join_command "$(<"$tmp")")
  rm -f "$tmp"
  ((${#args[@]} == 5)) || return 1
  # Whoever could write join-command, it may only name the API server and CA the lock pins.
  if [[ "${args[0]}" != "$LOCK_ENDPOINT" || "${args[4]}" != "$LOCK_CA_HASH" ]]; then
    log "join-command names API server ${args[0]} with CA ${args[4]}, but control-plane.lock pins" \
      "${LOCK_ENDPOINT:-nothing} with CA ${LOCK_CA_HASH:-nothing}: refusing to join"
    return 1
  fi
  reset_partial_setup
  step "kubeadm join ${args[0]}"
  kubeadm join "${args[@]}" --node-name "$(node_name)"
}

install_refresh_timer() {
  step "install join-command refresh timer (every $JOIN_REFRESH_INTERVAL)"
  # A systemd timer, not a background loop: it survives the start task's exit and reboots.
  mkdir -p "$CONF_DIR" "$SYSTEMD_DIR" "$(dirname "$INSTALLED_SCRIPT")"
  install -m 0755 "${BASH_SOURCE[0]}" "$INSTALLED_SCRIPT"
  # Read back by `--refresh-join` (bash syntax, root only: it may hold the SAS; with a pool
  # identity it holds the container URL and client id, and tokens are fetched when needed).
  (umask 077 && {
    printf 'K8S_CLUSTER_SAS_URL=%q\nK8S_CLUSTER_JOIN_URL=%q\nK8S_CLUSTER_RECORD_URL=%q\n' "$K8S_CLUSTER_SAS_URL" \
      "$K8S_CLUSTER_JOIN_URL" "$K8S_CLUSTER_RECORD_URL"
    printf 'K8S_CLUSTER_URL=%q\nK8S_STORAGE_CLIENT_ID=%q\n' "$K8S_CLUSTER_URL" "$K8S_STORAGE_CLIENT_ID"
    printf 'JOIN_TOKEN_TTL=%q\nNODE_ID=%q\n' "$JOIN_TOKEN_TTL" "$NODE_ID"
  } >"$CONF_DIR/cluster.env")
  cat >"$SYSTEMD_DIR/k8s-join-refresh.service" <<EOF
[Unit]
Description=Publish a fresh kubeadm join command for the Batch pool
After=kubelet.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/k8s-node-setup.sh --refresh-join
EOF
  cat >"$SYSTEMD_DIR/k8s-join-refresh.timer" <<EOF
[Unit]
Description=Refresh the kubeadm join command before its token expires

[Timer]
OnBootSec=5min
OnUnitActiveSec=${JOIN_REFRESH_INTERVAL}
Persistent=true

[Install]
WantedBy=timers.target
EOF
  systemctl daemon-reload
  systemctl enable --now k8s-join-refresh.timer
}

# ------------------------------------------------------------------- main --

setup_control_plane() {
  kubeadm_init
  install_cni
  if [[ "$UNTAINT_CONTROL_PLANE" == 1 ]]; then untaint_control_plane; fi
  install_storage_class
  publish_kubeconfig
  wait_for_node_ready
}

main() {
  parse_args "$@"
  if ((REFRESH_ONLY)) && [[ -f "$CONF_DIR/cluster.env" ]]; then
    # shellcheck source=/dev/null
    source "$CONF_DIR/cluster.env"
  fi
  validate
  if ((CHECK_ONLY)); then
    log "inputs are valid: role=$K8S_ROLE k8s=$K8S_VERSION containerd=$CONTAINERD_VERSION stage=$K8S_SETUP_STAGE"
    exit 0
  fi
  trap 'on_error $LINENO' ERR

  if ((REFRESH_ONLY)); then
    publish_join_command
    exit 0
  fi

  local marker="$STATE_DIR/done"
  if [[ -f "$marker" && "$K8S_SETUP_STAGE" == all ]]; then
    log "node already set up ($(<"$marker")); nothing to do"
    exit 0
  fi
  log "role=$K8S_ROLE k8s=$K8S_VERSION containerd=$CONTAINERD_VERSION node=$NODE_ID stage=$K8S_SETUP_STAGE"
  mkdir -p "$STATE_DIR"

  disable_swap
  kernel_settings
  install_packages
  configure_containerd
  if [[ "$K8S_SETUP_STAGE" == packages ]]; then
    log "packages installed; cluster setup left to the start task"
    exit 0
  fi

  local node_role=control-plane
  if [[ "$K8S_ROLE" == single ]]; then
    setup_control_plane
  else
    local rc=0
    elect_control_plane || rc=$?
    case "$rc" in
      0) setup_control_plane; publish_join_command; install_refresh_timer ;;
      1) wait_and_join; node_role=worker ;;
      *) log "error: step '$CURRENT_STEP' failed: the cluster container could not be used"; exit 1 ;;
    esac
  fi

  step "record completion"
  echo "role=$K8S_ROLE node-role=$node_role k8s=$K8S_VERSION at $(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$marker"
  if [[ -n "${AZ_BATCH_NODE_SHARED_DIR:-}" ]]; then
    mkdir -p "$AZ_BATCH_NODE_SHARED_DIR/k8s"
    echo "$node_role" >"$AZ_BATCH_NODE_SHARED_DIR/k8s/node-role"
  fi
  log "done: $node_role"
}

main "$@"
