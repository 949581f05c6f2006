"""The built-in workflows' shell scripts, run the way Batch runs a command line (no shell around it)
against a stubbed kubectl."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

from batchk8s.settings import load_settings
from batchk8s.workflows import WorkflowContext, get_workflow

KUBECTL_STUB = """#!/usr/bin/env bash
echo "$*" >> "$KUBECTL_LOG"
if [ "$1 $2 $3 $4" = "-n tesk patch service" ]; then printf '%s' "${@: -1}" > "$PATCH_FILE"; fi
if [ "$1 $2 $3 $4" = "-n tesk get secret" ]; then [ -f "$SECRET_FILE" ] || exit 1; fi
if [ "$1 $2" = "create -f" ] || [ "$1 $2" = "replace -f" ]; then cat > "$SECRET_FILE"; fi
"""


def apply_task(env: dict[str, str]):
    tasks = get_workflow("tesk-deploy").build(load_settings(env), WorkflowContext("k8s-pool", "job-1"))
    return next(task for task in tasks if task.id == "apply")


def run(task, tmp_path: Path, *, manifests: bool) -> subprocess.CompletedProcess[str]:
    bin_dir, shared, workdir = tmp_path / "bin", tmp_path / "shared", tmp_path / "wd"
    for folder in (bin_dir, shared / "k8s", workdir):
        folder.mkdir(parents=True, exist_ok=True)
    if manifests:
        (workdir / "tesk").mkdir(exist_ok=True)
    (bin_dir / "kubectl").write_text(KUBECTL_STUB)
    (bin_dir / "kubectl").chmod(0o755)
    (shared / "k8s" / "admin.conf").write_text("apiVersion: v1\n")
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "AZ_BATCH_NODE_SHARED_DIR": str(shared),
           "KUBECTL_LOG": str(tmp_path / "kubectl.log"), "PATCH_FILE": str(tmp_path / "patch.json"),
           "SECRET_FILE": str(tmp_path / "secret.yaml"),
           **task.environment}
    argv = shlex.split(task.command_line)
    assert argv[:2] == ["/bin/bash", "-c"] and len(argv) == 3
    return subprocess.run(argv, cwd=workdir, env=env, capture_output=True, text=True)


def test_tesk_deploy_patches_the_service_to_the_configured_node_port(tmp_path):
    result = run(apply_task({"TESK_NODEPORT": "30999"}), tmp_path, manifests=True)
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "kubectl.log").read_text().splitlines()
    assert calls[0] == "apply -f tesk"
    assert calls[1].startswith("-n tesk patch service tesk-api --type=json -p")
    patch = json.loads((tmp_path / "patch.json").read_text())
    assert patch == [{"op": "replace", "path": "/spec/ports/0/nodePort", "value": 30999}]


def test_tesk_deploy_without_manifests_fails_before_kubectl(tmp_path):
    result = run(apply_task({}), tmp_path, manifests=False)
    assert result.returncode == 2 and "run artifacts upload" in result.stderr
    assert not (tmp_path / "kubectl.log").exists()


def test_tesk_deploy_creates_the_token_secret_once_without_printing_the_token(tmp_path):
    import yaml

    result = run(apply_task({}), tmp_path, manifests=True)
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "kubectl.log").read_text().splitlines()
    assert calls[-2:] == ["-n tesk get secret tesk-api-token", "create -f -"]  # create: no last-applied copy
    secret = yaml.safe_load((tmp_path / "secret.yaml").read_text())
    assert (secret["kind"], secret["metadata"]) == ("Secret", {"name": "tesk-api-token", "namespace": "tesk"})
    token = secret["stringData"]["token"]
    assert len(token) == 43 and token.isalnum()
    assert token not in result.stdout + result.stderr + "".join(calls)

    again = run(apply_task({}), tmp_path, manifests=True)  # reruns keep the token (a rotated one too)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "kubectl.log").read_text().splitlines().count("create -f -") == 1
    assert yaml.safe_load((tmp_path / "secret.yaml").read_text())["stringData"]["token"] == token


def test_tesk_rotate_token_replaces_the_token_and_restarts_the_proxy(tmp_path):
    import yaml

    deploy = run(apply_task({}), tmp_path, manifests=True)
    assert deploy.returncode == 0, deploy.stderr
    old = yaml.safe_load((tmp_path / "secret.yaml").read_text())["stringData"]["token"]
    [rotate] = get_workflow("tesk-rotate-token").build(load_settings({}), WorkflowContext("k8s-pool", "job-2"))
    result = run(rotate, tmp_path, manifests=False)
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "kubectl.log").read_text().splitlines()
    assert calls[-4:] == ["-n tesk get secret tesk-api-token", "replace -f -",
                          "-n tesk rollout restart deployment/tesk-auth",
                          "-n tesk rollout status deployment/tesk-auth --timeout=300s"]
    new = yaml.safe_load((tmp_path / "secret.yaml").read_text())["stringData"]["token"]
    assert new != old and len(new) == 43 and new.isalnum()
    assert new not in result.stdout + result.stderr + "".join(calls) + rotate.command_line
