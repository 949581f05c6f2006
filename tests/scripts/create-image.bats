#!/usr/bin/env bats
# scripts/create-image.sh and scripts/upload-artifacts.sh with `az` and python stubbed.

setup() {
  load helpers
  common_setup
  IMAGE_SCRIPT="$REPO_ROOT/scripts/create-image.sh"
  REQUIRED=(--resource-group rg1 --location westeurope --publisher contoso --image-version 1.2.3)
}

# shellcheck disable=SC2154  # status and output are set by bats' run
run_image() {
  run env "PATH=$STUB_BIN:$PATH" "STUB_LOG=$NODE/calls.log" "$IMAGE_SCRIPT" "$@"
}

@test "create-image --help" {
  run_image --help
  [ "$status" -eq 0 ]
  [[ "$output" == *"--dry-run"* ]]
}

@test "create-image --dry-run prints the whole pipeline and runs nothing" {
  run_image --dry-run "${REQUIRED[@]}"
  [ "$status" -eq 0 ]
  [ ! -s "$NODE/calls.log" ]
  local expected=(
    "az vm create --resource-group rg1 --location westeurope --name k8s-image-builder --image Canonical:ubuntu-24_04-lts:server:latest"
    "--scripts 'echo <base64 of scripts/k8s-node-setup.sh> | base64 -d >/tmp/k8s-node-setup.sh && bash /tmp/k8s-node-setup.sh --stage packages --k8s-version 1.36 --containerd-version 2.2'"
    "--scripts 'waagent -deprovision+user -force'"
    "az vm deallocate --resource-group rg1 --name k8s-image-builder"
    "az vm generalize --resource-group rg1 --name k8s-image-builder"
    "az sig create --resource-group rg1 --gallery-name k8sGallery"
    "az sig image-definition create --resource-group rg1 --gallery-name k8sGallery --gallery-image-definition k8sBatchNode --publisher contoso"
    "--os-type Linux --os-state generalized"
    "az sig image-version create --resource-group rg1 --gallery-name k8sGallery --gallery-image-definition k8sBatchNode --gallery-image-version 1.2.3 --target-regions westeurope --replica-count 1"
  )
  local line
  for line in "${expected[@]}"; do
    [[ "$output" == *"$line"* ]] || { echo "missing: $line"; false; }
  done
  # Order matters: generalize before the image version is taken.
  [[ "$output" == *"vm generalize"*"sig image-version create"* ]]
}

@test "create-image runs az in order and prints the image version id" {
  run_image "${REQUIRED[@]}" --target-regions "westeurope northeurope" --k8s-version 1.33
  [ "$status" -eq 0 ]
  [[ "$output" == *"/galleries/g/images/d/versions/1.0.0" ]]
  run cut -d' ' -f1-3 "$NODE/calls.log"
  [ "${lines[0]}" = "az group create" ]
  [ "${lines[1]}" = "az vm create" ]
  [ "${lines[2]}" = "az vm run-command" ]
  [ "${lines[4]}" = "az vm deallocate" ]
  [ "${lines[5]}" = "az vm generalize" ]
  grep -q -- "--target-regions westeurope northeurope --replica-count 1 --virtual-machine /subscriptions/0000/.*/virtualMachines/vm" "$NODE/calls.log"
  # The real payload decodes to the setup script.
  local payload
  payload="$(grep -m1 -o 'echo [A-Za-z0-9+/=]* | base64 -d' "$NODE/calls.log" | cut -d' ' -f2)"
  diff <(base64 -d <<<"$payload") "$REPO_ROOT/scripts/k8s-node-setup.sh"
  grep -q -- "--stage packages --k8s-version 1.33 --containerd-version 2.2" "$NODE/calls.log"
}

@test "create-image refuses bad input before calling az" {
  run_image --dry-run --location westeurope
  [ "$status" -eq 2 ]
  [[ "$output" == *"RESOURCE_GROUP is required"* ]]
  [[ "$output" == *"PUBLISHER is required"* ]]
  run_image "${REQUIRED[@]}" --image-version 2024.1
  [ "$status" -eq 2 ]
  [[ "$output" == *"IMAGE_VERSION must be MAJOR.MINOR.PATCH"* ]]
  run_image "${REQUIRED[@]}" --k8s-version 1.36.2
  [ "$status" -eq 2 ]
  [[ "$output" == *"invalid input: K8S_VERSION must be MAJOR.MINOR"* ]]
  run_image "${REQUIRED[@]}" --containerd-version 1.7
  [ "$status" -eq 2 ]
  [[ "$output" == *"invalid input: Kubernetes 1.36 needs containerd 2.x"* ]]
  run_image "${REQUIRED[@]}" --replica-count 0 --containerd-version x
  [ "$status" -eq 2 ]
  [[ "$output" == *"REPLICA_COUNT must be a positive number"* && "$output" == *"CONTAINERD_VERSION must be MAJOR.MINOR"* ]]
  run_image "${REQUIRED[@]}" --bogus x
  [ "$status" -eq 2 ]
  [ ! -s "$NODE/calls.log" ]
}

@test "create-image names the failing command and exits non-zero" {
  run env "PATH=$STUB_BIN:$PATH" "STUB_LOG=$NODE/calls.log" STUB_FAIL="az vm" "$IMAGE_SCRIPT" "${REQUIRED[@]}"
  [ "$status" -eq 1 ]
  [[ "$output" == *"error: step 'builder VM k8s-image-builder from Canonical:ubuntu-24_04-lts:server:latest' failed (exit 1) in: az vm create --resource-group"* ]]
  grep -q "az sig" "$NODE/calls.log" && false
  true
}

@test "upload-artifacts passes its arguments to python -m batchk8s artifacts upload" {
  local fake="$BATS_TEST_TMPDIR/python"
  # shellcheck disable=SC2016  # expanded by the fake, not here
  printf '#!/usr/bin/env bash\necho "$PWD $*" >"%s"\n' "$NODE/python.log" >"$fake"
  chmod +x "$fake"
  run env BATCHK8S_PYTHON="$fake" "$REPO_ROOT/scripts/upload-artifacts.sh" --dry-run --container apps
  [ "$status" -eq 0 ]
  [ "$(cat "$NODE/python.log")" = "$REPO_ROOT -m batchk8s artifacts upload --dry-run --container apps" ]
}

@test "upload-artifacts without a python says so and exits 2" {
  run env BATCHK8S_PYTHON="$BATS_TEST_TMPDIR/no-such-python" "$REPO_ROOT/scripts/upload-artifacts.sh" --dry-run
  [ "$status" -eq 2 ]
  [[ "$output" == *"step 'find python' failed: $BATS_TEST_TMPDIR/no-such-python not found"* ]]
}
