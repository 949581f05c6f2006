"""`pool create|show|resize|delete`, `workflow list|run`, `job show|delete`: Batch from a shell.

The same services as the HTTP API. Without `--wait` a command returns once Batch accepted the
change (like the API's 202); with `--wait` it reads Batch with backoff until the pool is ready or
failed, the resize settled, the pool is gone, or the workflow's job finished. Exit code 3 means
Batch reported a failure (start task failed, resize errors, a task failed or was blocked).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from batchk8s.commands import Output, int_between
from batchk8s.errors import EXIT_UPSTREAM
from batchk8s.settings import Settings

if TYPE_CHECKING:
    from batchk8s.batch.reports import Deletion, JobReport, PoolStatus

TAIL_LINES = 5
DEFAULT_WAIT_TIMEOUT = 1800
NODES = int_between(0, 1000)


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    waiting = argparse.ArgumentParser(add_help=False)
    waiting.add_argument("--wait", action="store_true",
                         help="wait until Batch reports the outcome, within --timeout (exit 3 if it has not)")
    waiting.set_defaults(default_timeout=DEFAULT_WAIT_TIMEOUT)  # --timeout is the common option
    _register_pool(subparsers, common, waiting)
    _register_workflow(subparsers, common, waiting)
    _register_job(subparsers, common)


def _register_pool(subparsers: Any, common: argparse.ArgumentParser, waiting: argparse.ArgumentParser) -> None:
    pool = subparsers.add_parser("pool", help="the Batch pool that runs Kubernetes")
    verbs = pool.add_subparsers(dest="verb", required=True, metavar="VERB")
    create = verbs.add_parser("create", parents=[common, waiting], help="create the pool, or reuse an identical one")
    create.add_argument("--id", help="pool id (default AZURE_BATCH_POOL_ID)")
    create.add_argument("--vm-size", help="VM size (default AZURE_BATCH_VM_SIZE)")
    create.add_argument("--dedicated", type=NODES, metavar="N",
                        help="dedicated nodes (default AZURE_BATCH_VM_NODE_COUNT)")
    create.add_argument("--spot", type=NODES, metavar="N", help="spot nodes (default AZURE_BATCH_VM_SPOT_NODE_COUNT)")
    create.add_argument("--image-id", help="Shared Image Gallery image (version) id (default AZURE_BATCH_VM_IMAGE_ID)")
    create.add_argument("--node-agent-sku", help="node agent SKU for a gallery image (e.g. 'batch.node.ubuntu 24.04')")
    create.add_argument("--metadata", action="append", metavar="NAME=VALUE", help="pool metadata (repeatable)")
    create.set_defaults(handler=pool_create)
    show = verbs.add_parser("show", parents=[common], help="allocation, nodes and start tasks")
    show.add_argument("id", nargs="?", help="pool id (default AZURE_BATCH_POOL_ID)")
    show.set_defaults(handler=pool_show)
    resize = verbs.add_parser("resize", parents=[common, waiting], help="change the node counts")
    resize.add_argument("id", nargs="?", help="pool id (default AZURE_BATCH_POOL_ID)")
    resize.add_argument("--dedicated", type=NODES, metavar="N", help="target dedicated nodes")
    resize.add_argument("--spot", type=NODES, metavar="N", help="target spot nodes")
    resize.set_defaults(handler=pool_resize)
    delete = verbs.add_parser("delete", parents=[common, waiting], help="delete the pool and its nodes")
    delete.add_argument("id", nargs="?", help="pool id (default AZURE_BATCH_POOL_ID)")
    delete.set_defaults(handler=pool_delete)


def _register_workflow(subparsers: Any, common: argparse.ArgumentParser, waiting: argparse.ArgumentParser) -> None:
    workflow = subparsers.add_parser("workflow", help="named workflows that run as Batch jobs on the pool")
    verbs = workflow.add_subparsers(dest="verb", required=True, metavar="VERB")
    verbs.add_parser("list", parents=[common], help="the registered workflows").set_defaults(handler=workflow_list)
    run = verbs.add_parser("run", parents=[common, waiting], help="run a workflow as a job on a pool")
    run.add_argument("name", help="workflow name (see 'workflow list')")
    run.add_argument("--pool", dest="pool_id", help="pool id (default AZURE_BATCH_POOL_ID)")
    run.add_argument("--job", dest="job_id", help="job id (default NAME-<UTC time>)")
    run.set_defaults(handler=workflow_run)


def _register_job(subparsers: Any, common: argparse.ArgumentParser) -> None:
    job = subparsers.add_parser("job", help="a workflow's Batch job")
    verbs = job.add_subparsers(dest="verb", required=True, metavar="VERB")
    show = verbs.add_parser("show", parents=[common], help="task states, exit codes and output tails")
    show.add_argument("id", help="job id")
    show.set_defaults(handler=job_show)
    delete = verbs.add_parser("delete", parents=[common], help="delete the job and its tasks")
    delete.add_argument("id", help="job id")
    delete.set_defaults(handler=job_delete)


# --- pools -------------------------------------------------------------------------------------


def _metadata(values: list[str] | None) -> dict[str, str] | None:
    from batchk8s.errors import InputError

    if not values:
        return None
    pairs = {}
    for value in values:
        name, sep, text = value.partition("=")
        if not sep or not name:
            raise InputError.for_field("--metadata", f"{value!r} must look like NAME=VALUE")
        pairs[name] = text
    return pairs


def pool_create(args: argparse.Namespace, settings: Settings) -> Output:
    from batchk8s.batch.pools import create_pool

    options = {"id": args.id, "vmSize": args.vm_size, "dedicatedNodes": args.dedicated, "spotNodes": args.spot,
               "imageId": args.image_id, "nodeAgentSkuId": args.node_agent_sku, "metadata": _metadata(args.metadata)}
    status = create_pool(settings, {k: v for k, v in options.items() if v is not None}, wait=args.wait,
                         timeout=args.timeout, deadline=args.deadline)
    verb = "created" if status.created else "reused"
    return _pool_output(status, f"{verb} pool {status.id}", args.wait)


def pool_show(args: argparse.Namespace, settings: Settings) -> Output:
    from batchk8s.batch.pools import pool_status

    return _pool_output(pool_status(settings, args.id or settings.pool_id, deadline=args.deadline), "", False)


def pool_resize(args: argparse.Namespace, settings: Settings) -> Output:
    from batchk8s.batch.pools import resize_pool

    body = {k: v for k, v in (("dedicatedNodes", args.dedicated), ("spotNodes", args.spot)) if v is not None}
    pool_id = args.id or settings.pool_id
    status = resize_pool(settings, pool_id, body, wait=args.wait, timeout=args.timeout, deadline=args.deadline)
    return _pool_output(status, f"resizing pool {pool_id}" if not args.wait else f"resized pool {pool_id}", args.wait)


def pool_delete(args: argparse.Namespace, settings: Settings) -> Output:
    from batchk8s.batch.pools import delete_pool

    return _deletion_output("pool", delete_pool(settings, args.id or settings.pool_id, wait=args.wait,
                                                timeout=args.timeout, deadline=args.deadline))


def _deletion_output(kind: str, deletion: Deletion) -> Output:
    return Output(deletion.to_dict(), f"{kind} {deletion.id}: {deletion.state}")


def _tail_lines(text: str | None, indent: str) -> list[str]:
    if not text:
        return []
    return [indent + line for line in text.rstrip("\n").splitlines()[-TAIL_LINES:]]


def _pool_output(status: PoolStatus, headline: str, waited: bool) -> Output:
    counts = ", ".join(f"{state}={n}" for state, n in sorted(status.node_counts.items())) or "none"
    lines = [headline] if headline else []
    lines.append(f"pool {status.id}: {status.state}, allocation {status.allocation_state}, "
                 f"dedicated {status.current_dedicated_nodes}/{status.target_dedicated_nodes}, "
                 f"spot {status.current_spot_nodes}/{status.target_spot_nodes}; nodes: {counts}")
    lines += [f"  resize error {e.code}: {e.message}" for e in status.resize_errors]
    for node in status.nodes:
        start = node.start_task
        line = f"  {node.id}: {node.state}"
        if start:
            line += f", start task {start.state}"
            if start.exit_code is not None:
                line += f" (exit {start.exit_code})"
            if start.failure:
                line += f": {start.failure.code} {start.failure.message}"
        lines.append(line)
        if node.state == "starttaskfailed" and start:
            lines += _tail_lines(start.stderr_tail, "    stderr| ")
    lines += [f"warning: {warning['message']}" for warning in status.warnings]
    if status.note:
        lines.append(f"note: {status.note}")
    if waited or not status.ready:
        lines.append(status.reason)
    return Output(status.to_dict(), "\n".join(lines), EXIT_UPSTREAM if waited and status.failed else 0)


# --- workflows and jobs ------------------------------------------------------------------------


def workflow_list(args: argparse.Namespace, settings: Settings) -> Output:
    from batchk8s.workflows import workflows

    known = workflows()
    width = max((len(w.name) for w in known), default=0)
    return Output({"workflows": [w.to_dict() for w in known]},
                  "\n".join(f"{w.name:<{width}}  {w.description}" for w in known))


def workflow_run(args: argparse.Namespace, settings: Settings) -> Output:
    from batchk8s.workflows.runs import run_workflow

    body = {k: v for k, v in (("poolId", args.pool_id), ("jobId", args.job_id)) if v}
    run = run_workflow(settings, args.name, body, wait=args.wait, timeout=args.timeout, deadline=args.deadline)
    lines = [f"workflow {run.workflow}: job {run.job_id} on pool {run.pool_id} "
             f"({'created' if run.job_created else 'reused'}); tasks added {run.added}, "
             f"already there {run.existing}"]
    if run.status is None:
        lines.append(f"follow it with: python -m batchk8s job show {run.job_id}")
        return Output(run.to_dict(), "\n".join(lines))
    job = _job_output(run.status)
    return Output(run.to_dict(), "\n".join([*lines, job.text]), job.exit_code)


def job_show(args: argparse.Namespace, settings: Settings) -> Output:
    from batchk8s.batch.jobs import job_status

    return _job_output(job_status(settings, args.id, deadline=args.deadline))


def job_delete(args: argparse.Namespace, settings: Settings) -> Output:
    from batchk8s.batch.jobs import delete_job

    return _deletion_output("job", delete_job(settings, args.id, deadline=args.deadline))


def _job_output(report: JobReport) -> Output:
    counts = ", ".join(f"{state}={n}" for state, n in sorted(report.task_counts.items())) or "no tasks"
    outcome = ("succeeded" if report.succeeded else "failed") if report.complete else "in progress"
    lines = [f"job {report.id}: {outcome}; tasks: {counts}"]
    for task in report.tasks:
        line = f"  {task.id}: {'blocked (a dependency failed)' if task.blocked else task.state}"
        if task.exit_code is not None:
            line += f", exit {task.exit_code}"
        if task.failure:
            line += f" ({task.failure.code})"
        lines.append(line)
        lines += _tail_lines(task.stdout_tail, "    stdout| ")
        lines += _tail_lines(task.stderr_tail, "    stderr| ")
    if report.stalled:
        lines.append(f"stalled: {report.stalled}")
    failed = (report.complete and not report.succeeded) or bool(report.stalled)
    return Output(report.to_dict(), "\n".join(lines), EXIT_UPSTREAM if failed else 0)
