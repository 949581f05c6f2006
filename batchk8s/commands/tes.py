"""`tes submit|get|list|cancel|wait|service-info`: GA4GH TES tasks on the cluster's TESK, from a shell.

`tes submit --wait` and `tes wait` exit 0 when the task ends COMPLETE, 1 when it ends in any other
terminal state (EXECUTOR_ERROR, SYSTEM_ERROR, CANCELED, PREEMPTED), 3 when TES cannot be reached or
the wait times out, and 2 for bad input or settings. `tes cancel` exits 0 for a task it cancels or
that was already CANCELED, and 2 (TaskAlreadyEnded) for one that already ended otherwise.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from batchk8s.commands import Output, int_between, one_of, read_json_file
from batchk8s.errors import InputError
from batchk8s.settings import Settings

EXIT_TASK_FAILED = 1
DEFAULT_WAIT_TIMEOUT = 3600
log = logging.getLogger("batchk8s.tes")


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    from batchk8s.tes import STATES, VIEWS
    from batchk8s.tes.client import MAX_PAGE_SIZE

    tes = subparsers.add_parser("tes", help="submit, watch, list and cancel GA4GH TES tasks")
    verbs = tes.add_subparsers(dest="verb", required=True, metavar="VERB")
    views = {"type": one_of("--view", VIEWS), "metavar": "|".join(VIEWS)}
    view_help = ("how much of each task TES returns: MINIMAL (id and state), BASIC (all but executor stdout/stderr, "
                 "inline input content and system logs) or FULL")
    task_id = {"metavar": "ID", "help": "the task's id, as `tes submit` or `tes list` printed it"}
    timeout = argparse.ArgumentParser(add_help=False)
    timeout.set_defaults(default_timeout=DEFAULT_WAIT_TIMEOUT)  # --timeout is the common option

    submit = verbs.add_parser("submit", parents=[common, timeout], help="validate and submit a TES task")
    submit.add_argument("file", nargs="?", metavar="FILE", help="TES task JSON ('-' for stdin)")
    submit.add_argument("--sample", metavar="NAME", help="submit a sample from tesk-tasks/ instead of FILE")
    submit.add_argument("--wait", action="store_true",
                        help="wait until the task ends, within --timeout (exit 3 if it has not)")
    submit.set_defaults(handler=submit_command)

    get = verbs.add_parser("get", parents=[common], help="one task")
    get.add_argument("id", **task_id)
    get.add_argument("--view", default="BASIC", help=f"{view_help} (default BASIC)", **views)
    get.set_defaults(handler=get_command)

    listing = verbs.add_parser("list", parents=[common], help="tasks, newest pages first as TES returns them")
    listing.add_argument("--name-prefix", metavar="PREFIX", help="only tasks whose name starts with PREFIX")
    listing.add_argument("--state", type=one_of("--state", STATES), metavar="STATE",
                         help=f"only tasks in this state: {', '.join(STATES)}")
    listing.add_argument("--tag", action="append", default=[], metavar="KEY[=VALUE]",
                         help="only tasks with this tag (any value when no =VALUE); repeatable")
    listing.add_argument("--view", default="MINIMAL", help=f"{view_help} (default MINIMAL)", **views)
    listing.add_argument("--page-size", type=int_between(1, MAX_PAGE_SIZE), metavar="N",
                         help=f"tasks per page, 1 to {MAX_PAGE_SIZE} (default: the server's)")
    listing.add_argument("--page-token", metavar="TOKEN",
                         help="continue from this page (the 'more: --page-token' line of the previous page)")
    listing.add_argument("--all", action="store_true", help="walk every page")
    listing.set_defaults(handler=list_command)

    cancel = verbs.add_parser("cancel", parents=[common], help="cancel a task")
    cancel.add_argument("id", **task_id)
    cancel.set_defaults(handler=cancel_command)

    wait = verbs.add_parser("wait", parents=[common, timeout], help="wait until a task ends")
    wait.add_argument("id", **task_id)
    wait.set_defaults(handler=wait_command)

    info = verbs.add_parser("service-info", parents=[common], help="the TES server, its version and API root")
    info.set_defaults(handler=service_info_command)


def submit_command(args: argparse.Namespace, settings: Settings) -> Output:
    from batchk8s.tes import client_for, load_sample, prepare_task

    if bool(args.file) == bool(args.sample):
        raise InputError.for_field("FILE", "give a task FILE or --sample NAME (one of them)")
    document = load_sample(args.sample) if args.sample else read_json_file(args.file, "FILE")
    task = prepare_task(document, settings, args.deadline)
    client = client_for(settings).within(args.deadline)
    task_id = client.create(task)
    if not args.wait:
        return Output({"id": task_id}, task_id)
    return _waited(client, task_id, args.timeout)


def get_command(args: argparse.Namespace, settings: Settings) -> Output:
    from batchk8s.tes import client_for

    task = client_for(settings).within(args.deadline).get(args.id, args.view)
    return Output(task, _task_text(task))


def list_command(args: argparse.Namespace, settings: Settings) -> Output:
    from batchk8s.tes import client_for

    filters: dict[str, Any] = {"view": args.view, "page_size": args.page_size, "name_prefix": args.name_prefix,
                               "state": args.state, "tags": _tags(args.tag)}
    client = client_for(settings).within(args.deadline)
    if args.all:
        page: dict[str, Any] = {"tasks": list(client.iter_tasks(page_token=args.page_token, **filters))}
    else:
        page = client.list(page_token=args.page_token, **filters)
    lines = [f"{task.get('id', '?'):<24} {task.get('state', 'UNKNOWN'):<15} {task.get('name', '')}".rstrip()
             for task in page["tasks"]]
    if page.get("next_page_token"):
        lines.append(f"more: --page-token {page['next_page_token']}")
    return Output(page, "\n".join(lines) or "no tasks")


def cancel_command(args: argparse.Namespace, settings: Settings) -> Output:
    from batchk8s.tes import client_for

    result = client_for(settings).within(args.deadline).cancel(args.id)
    text = f"{args.id}: cancel requested" if result.requested else f"{args.id}: already {result.state}"
    return Output(result.to_dict(), text)


def wait_command(args: argparse.Namespace, settings: Settings) -> Output:
    from batchk8s.tes import client_for

    return _waited(client_for(settings).within(args.deadline), args.id, args.timeout)


def service_info_command(args: argparse.Namespace, settings: Settings) -> Output:
    from batchk8s.tes import client_for

    client = client_for(settings).within(args.deadline)
    data = client.describe()
    text = (f"TES {client.version} at {client.transport.where}{client.base} via {client.transport.name}: "
            f"{data['serviceInfo'].get('name') or 'unnamed'}")
    return Output(data, text)


def _waited(client: Any, task_id: str, timeout: int) -> Output:
    seen: list[str] = []

    def progress(task: dict[str, Any]) -> None:
        state = task.get("state", "UNKNOWN")
        if not seen or seen[-1] != state:
            seen.append(state)
            log.info("%s: %s", task_id, state)

    task = client.wait(task_id, timeout, on_poll=progress)
    state = task.get("state", "UNKNOWN")
    return Output({"id": task_id, "state": state, "states": seen}, f"{task_id}: {state}",
                  0 if state == "COMPLETE" else EXIT_TASK_FAILED)


def _tags(values: list[str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for value in values:
        key, _, tag_value = value.partition("=")
        if not key:
            raise InputError.for_field("--tag", f"{value!r}: must be KEY or KEY=VALUE")
        tags[key] = tag_value
    return tags


def _task_text(task: dict[str, Any]) -> str:
    lines = [f"{task.get('id', '?')}: {task.get('state', 'UNKNOWN')}"]
    if task.get("name"):
        lines.append(f"  name: {task['name']}")
    for index, executor in enumerate(task.get("executors", [])):
        lines.append(f"  executor {index}: {executor.get('image')} {' '.join(executor.get('command', []))}")
    for log_entry in task.get("logs", []):
        for index, executor_log in enumerate(log_entry.get("logs", [])):
            lines.append(f"  executor {index} exit code: {executor_log.get('exit_code')}")
    return "\n".join(lines)
