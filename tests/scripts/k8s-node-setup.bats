#!/usr/bin/env bats
# scripts/k8s-node-setup.sh, role single, with every system command stubbed.

setup() {
  load helpers
  common_setup
}

# bad_input EXPECTED_MESSAGE ARGS...: the script refuses before calling anything.
# shellcheck disable=SC2154  # status and output are set by bats' run
bad_input() {
  local expected="$1"
  shift
  run_setup "$@"
  [ "$status" -eq 2 ]
  [[ "$output" == *"$expected"* ]]
  [ ! -s "$NODE/calls.log" ]
  [ ! -e "$NODE/root/etc/apt" ]
}

@test "--help prints usage and changes nothing" {
  run_setup --help
  [ "$status" -eq 0 ]
  [[ "$output" == *"Usage: k8s-node-setup.sh"* ]]
  [[ "$output" == *"--role single|auto"* ]]
  [ ! -s "$NODE/calls.log" ]
}

@test "single node: installs from the pkgs.k8s.io repository of the pinned minor" {
  run_setup
  [ "$status" -eq 0 ]
  run cat "$NODE/root/etc/apt/sources.list.d/kubernetes.list"
  [ "$output" = "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.36/deb/ /" ]
  grep -qx "curl -fsSL https://pkgs.k8s.io/core:/stable:/v1.36/deb/Release.key" "$NODE/calls.log"
  grep -q "apt.kubernetes.io" "$NODE/root/etc/apt/sources.list.d/kubernetes.list" && false
  grep -qx "apt-get install -y -q kubelet kubeadm kubectl" "$NODE/calls.log"
  grep -qx "apt-mark hold kubelet kubeadm kubectl" "$NODE/calls.log"
}

@test "K8S_VERSION and --k8s-version select another minor" {
  K8S_VERSION=1.33 run_setup
  [ "$status" -eq 0 ]
  grep -q "pkgs.k8s.io/core:/stable:/v1.33/deb/ /" "$NODE/root/etc/apt/sources.list.d/kubernetes.list"
  rm -rf "$NODE" && new_node "$NODE"
  run_setup --k8s-version 1.35
  [ "$status" -eq 0 ]
  grep -q "pkgs.k8s.io/core:/stable:/v1.35/deb/ /" "$NODE/root/etc/apt/sources.list.d/kubernetes.list"
}

@test "single node: swap, kernel modules, sysctls" {
  run_setup
  [ "$status" -eq 0 ]
  grep -qx "swapoff -a" "$NODE/calls.log"
  grep -q "^# disabled for kubelet: /swapfile none swap" "$NODE/root/etc/fstab"
  grep -qx "modprobe overlay" "$NODE/calls.log"
  grep -qx "modprobe br_netfilter" "$NODE/calls.log"
  grep -qx "br_netfilter" "$NODE/root/etc/modules-load.d/k8s.conf"
  grep -q "net.ipv4.ip_forward *= 1" "$NODE/root/etc/sysctl.d/99-kubernetes.conf"
  grep -q "net.bridge.bridge-nf-call-iptables *= 1" "$NODE/root/etc/sysctl.d/99-kubernetes.conf"
}

# runc_options CONFIG: the lines of runc's options table in a containerd config.
runc_options() {
  sed -n '/runtimes\.runc\.options\]/,/^\[/p' "$1"
}

@test "containerd 2.x (config version 3): SystemdCgroup = true in runc's options, the kubeadm pause image pinned" {
  run_setup
  [ "$status" -eq 0 ]
  local config="$NODE/root/etc/containerd/config.toml"
  grep -qx "version = 3" "$config"
  runc_options "$config" | grep -qx "  SystemdCgroup = true"
  grep -A1 -F "[plugins.'io.containerd.cri.v1.images'.pinned_images]" "$config" | grep -qx '  sandbox = "registry.k8s.io/pause:3.10.1"'
  grep -qx "  sandboxer = 'podsandbox'" "$config"
  grep -qx "systemctl restart containerd" "$NODE/calls.log"
}

@test "containerd 1.x (config version 2) for Kubernetes 1.35: the version 2 keys are set" {
  STUB_CONTAINERD_VERSION=1.7.28 run_setup --k8s-version 1.35 --containerd-version 1.7
  [ "$status" -eq 0 ]
  local config="$NODE/root/etc/containerd/config.toml"
  grep -qx "version = 2" "$config"
  runc_options "$config" | grep -qx "  SystemdCgroup = true"
  grep -qx '  sandbox_image = "registry.k8s.io/pause:3.10.1"' "$config"
}

@test "containerd config without SystemdCgroup fails the step and stops" {
  STUB_CONTAINERD_CONFIG=no-systemd-cgroup run_setup
  [ "$status" -ne 0 ]
  [[ "$output" == *"does not set SystemdCgroup = true in runc's options table"* ]]
  [[ "$output" == *"step 'configure containerd (SystemdCgroup = true)' failed"* ]]
  grep -q "kubeadm init" "$NODE/calls.log" && false
  grep -q "systemctl restart containerd" "$NODE/calls.log" && false
  [ ! -e "$NODE/root/var/lib/k8s-node-setup/done" ]
}

@test "SystemdCgroup = true in a table runc does not read fails the check" {
  STUB_CONTAINERD_CONFIG=misplaced run_setup
  [ "$status" -ne 0 ]
  grep -q "SystemdCgroup = true" "$NODE/root/etc/containerd/config.toml"
  [[ "$output" == *"step 'configure containerd (SystemdCgroup = true)' failed"* ]]
  grep -q "kubeadm init" "$NODE/calls.log" && false
  [ ! -e "$NODE/root/var/lib/k8s-node-setup/done" ]
}

@test "a containerd of another minor is replaced by the pinned one" {
  STUB_CONTAINERD_VERSION=2.1.4 run_setup
  [ "$status" -eq 0 ]
  grep -qx "apt-get install -y -q containerd=2.2.\*" "$NODE/calls.log"
}

@test "a containerd of the pinned minor is kept, pinned to its minor but not held" {
  run_setup
  [ "$status" -eq 0 ]
  grep -q "apt-get install .*containerd" "$NODE/calls.log" && false
  [[ "$output" == *"containerd 2.2 already installed"* ]]
  run cat "$NODE/root/etc/apt/preferences.d/containerd-k8s-node-setup"
  [ "$output" = "$(printf 'Package: containerd\nPin: version 2.2.*\nPin-Priority: 1001')" ]
  grep -q "apt-mark hold.*containerd" "$NODE/calls.log" && false
  true
}

@test "single node: kubeadm init, Flannel, control-plane taint removed (never master)" {
  run_setup
  [ "$status" -eq 0 ]
  grep -qx "kubeadm init --pod-network-cidr 10.244.0.0/16 --kubernetes-version v1.36.4 --node-name .*" "$NODE/calls.log"
  grep -q "^curl -fsSL -o .* https://github.com/flannel-io/flannel/releases/download/v[0-9.]*/kube-flannel.yml" "$NODE/calls.log"
  grep -q "^kubectl --kubeconfig $NODE/root/etc/kubernetes/admin.conf apply -f .*/cni.yaml" "$NODE/calls.log"
  grep -q "^kubectl .* taint nodes .* node-role.kubernetes.io/control-plane:NoSchedule-$" "$NODE/calls.log"
  grep -q "master" "$NODE/calls.log" && false
  true
}

@test "taint already gone: no taint call" {
  STUB_NO_TAINT=1 run_setup
  [ "$status" -eq 0 ]
  grep -q " taint " "$NODE/calls.log" && false
  true
}

@test "pod CIDR override reaches kubeadm and the Flannel manifest" {
  run_setup --pod-cidr 172.30.0.0/16
  [ "$status" -eq 0 ]
  grep -q "kubeadm init --pod-network-cidr 172.30.0.0/16" "$NODE/calls.log"
  grep -q '"Network": "172.30.0.0/16"' "$NODE/root/var/lib/k8s-node-setup/cni.yaml"
}

@test "single node: local-path is installed and made the default StorageClass" {
  run_setup
  [ "$status" -eq 0 ]
  grep -q "apply -f https://raw.githubusercontent.com/rancher/local-path-provisioner/v[0-9.]*/deploy/local-path-storage.yaml" "$NODE/calls.log"
  grep -q 'patch storageclass local-path --type merge -p {"metadata":{"annotations":{"storageclass.kubernetes.io/is-default-class":"true"}}}' "$NODE/calls.log"
}

@test "admin kubeconfig is copied for tasks and is not world-readable" {
  run_setup
  [ "$status" -eq 0 ]
  target="$NODE/shared/k8s/admin.conf"
  [ -f "$target" ]
  [ "$(stat -c %a "$target")" = 600 ]
  [ "$(stat -c %a "$NODE/shared/k8s")" = 750 ]
  grep -q "admin kubeconfig (stub)" "$target"
  [ "$(cat "$NODE/shared/k8s/node-role")" = control-plane ]
}

@test "KUBECONFIG_TARGET and mode 0640 are honoured; a world-readable mode is refused" {
  KUBECONFIG_TARGET="$NODE/kube/config" KUBECONFIG_MODE=0640 run_setup
  [ "$status" -eq 0 ]
  [ "$(stat -c %a "$NODE/kube/config")" = 640 ]
  rm -rf "$NODE" && new_node "$NODE"
  KUBECONFIG_MODE=0644 run_setup
  [ "$status" -eq 2 ]
  [[ "$output" == *"KUBECONFIG_MODE must not give others any access"* ]]
  [ ! -s "$NODE/calls.log" ]
}

@test "rerun on a configured node does nothing" {
  run_setup
  [ "$status" -eq 0 ]
  : >"$NODE/calls.log"
  run_setup
  [ "$status" -eq 0 ]
  [[ "$output" == *"already set up"* ]]
  [ ! -s "$NODE/calls.log" ]
}

@test "a failed step is named, exits non-zero, and a retry resets the partial kubeadm state" {
  STUB_FAIL="kubectl --kubeconfig" run_setup
  [ "$status" -ne 0 ]
  [[ "$output" == *"step 'install CNI (Flannel)' failed"* ]]
  [ ! -e "$NODE/root/var/lib/k8s-node-setup/done" ]
  : >"$NODE/calls.log"
  run_setup
  [ "$status" -eq 0 ]
  grep -qx "kubeadm reset -f" "$NODE/calls.log"
  [ -e "$NODE/root/var/lib/k8s-node-setup/done" ]
}

@test "stage packages installs software only" {
  run_setup --stage packages
  [ "$status" -eq 0 ]
  grep -q "apt-get install -y -q kubelet kubeadm kubectl" "$NODE/calls.log"
  grep -q "kubeadm init" "$NODE/calls.log" && false
  [ ! -e "$NODE/root/var/lib/k8s-node-setup/done" ]
}

@test "bad input fails before anything is called: unknown role" {
  bad_input "K8S_ROLE must be 'single' or 'auto', got 'primary'" --role primary
}

@test "bad input fails before anything is called: version not MAJOR.MINOR" {
  bad_input "K8S_VERSION must be MAJOR.MINOR" --k8s-version 1.36.1
  bad_input "K8S_VERSION must be MAJOR.MINOR" --k8s-version=v1.36
  K8S_VERSION=latest bad_input "K8S_VERSION must be MAJOR.MINOR"
  bad_input "CONTAINERD_VERSION must be MAJOR.MINOR" --containerd-version latest
}

@test "bad input fails before anything is called: Kubernetes 1.36 or later with containerd 1.x" {
  bad_input "Kubernetes 1.36 needs containerd 2.x" --containerd-version 1.7
  bad_input "Kubernetes 1.37 needs containerd 2.x" --k8s-version 1.37 --containerd-version 1.7
}

@test "bad input fails before anything is called: a join refresh not shorter than the token lifetime" {
  bad_input "JOIN_REFRESH_INTERVAL (24h) must be shorter than JOIN_TOKEN_TTL (24h)" --join-refresh 24h
  bad_input "JOIN_REFRESH_INTERVAL (90m) must be shorter than JOIN_TOKEN_TTL (1h)" --join-token-ttl 1h --join-refresh 90m
}

@test "bad input: every problem is reported at once" {
  bad_input "K8S_ROLE must be 'single' or 'auto'" --role primary --k8s-version 2 --pod-cidr nope
  [[ "$output" == *"K8S_VERSION must be MAJOR.MINOR"* ]]
  [[ "$output" == *"POD_CIDR is not an IPv4 CIDR"* ]]
}

@test "bad input fails before anything is called: auto without the SAS URL" {
  bad_input "K8S_CLUSTER_SAS_URL is required for role 'auto'" --role auto
}

@test "bad input: a malformed SAS URL is reported without its query string" {
  bad_input "got 'ftp://x/c?***'" --role auto --cluster-sas-url "ftp://x/c?sig=SECRETSIG"
  [[ "$output" != *SECRETSIG* ]]
}

@test "bad input: unknown option, missing value" {
  bad_input "unknown option: --bogus" --bogus 1
  bad_input "option --role needs a value" --role
}
