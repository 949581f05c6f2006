"""`vmss status|start|deallocate`: the scale set operations the timer and HTTP API run, from a shell."""

from __future__ import annotations

import argparse
from typing import Any

from batchk8s.commands import Output, int_between
from batchk8s.errors import EXIT_INPUT, EXIT_UPSTREAM, InputError
from batchk8s.settings import VMSS_ACTIONS, Settings
from batchk8s.vmss import MAX_WAIT_SECONDS, TargetReport, summary_line


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    vmss = subparsers.add_parser("vmss", help="scale set power state, start and deallocate")
    verbs = vmss.add_subparsers(dest="verb", required=True, metavar="VERB")
    names = argparse.ArgumentParser(add_help=False)
    names.add_argument("--name", action="append", metavar="N", dest="names",
                       help="scale set name in AZURE_RES_GROUP_NAME, or full resource id (repeat, or "
                            "comma-separate; default AZURE_VMSS_NAME)")
    status = verbs.add_parser("status", parents=[common, names], help="power state of every instance")
    status.set_defaults(handler=status_command)
    for action in VMSS_ACTIONS:
        verb = verbs.add_parser(action, parents=[common, names],
                                help=f"{action} the instances that are not already {_wanted(action)}")
        verb.add_argument("--dry-run", action="store_true", help="report what would be done; send no action")
        verb.add_argument("--wait", nargs="?", const=UNTIL_DONE, default=0, metavar="SECONDS",
                          type=int_between(0, MAX_WAIT_SECONDS),
                          help="wait until the operations end, within --timeout (exit 3 if they are still running "
                               f"then), as --wait does on every verb; the older --wait SECONDS (at most "
                               f"{MAX_WAIT_SECONDS}) waits at most that long and is deprecated")
        verb.set_defaults(handler=action_command, action=action)


# `--wait` alone: follow the operations until they end or --timeout is near, like `pool create --wait`
# and `tes submit --wait`. argparse runs only a string `const` through `type`, and the type refuses a
# negative number, so a user cannot type this one.
UNTIL_DONE = -1


def _wanted(action: str) -> str:
    return "running" if action == "start" else "deallocated"


def _names(args: argparse.Namespace) -> list[str] | None:
    from batchk8s.vmss import validate_names

    if not args.names:
        return None
    names = [part.strip() for value in args.names for part in value.split(",") if part.strip()]
    try:
        return validate_names(names)
    except InputError as error:
        raise InputError.for_field("--name", error.details[0]["message"]) from None


def status_command(args: argparse.Namespace, settings: Settings) -> Output:
    from batchk8s.vmss import configured_targets, power_states

    reports = power_states(settings, configured_targets(settings, _names(args)), deadline=args.deadline)
    return _output({"scaleSets": [report.to_dict() for report in reports]}, reports)


def action_command(args: argparse.Namespace, settings: Settings) -> Output:
    from batchk8s.vmss import apply_action, configured_targets

    until_done = args.wait == UNTIL_DONE
    reports = apply_action(settings, args.action, configured_targets(settings, _names(args)),
                           dry_run=args.dry_run, wait_seconds=0 if until_done else args.wait,
                           budget=args.deadline if until_done else None, deadline=args.deadline)
    output = _output({"action": args.action, "dryRun": args.dry_run,
                      "targets": [report.to_dict() for report in reports]}, reports)
    if until_done and output.exit_code == 0 and any(report.outcome == "accepted" for report in reports):
        output.exit_code = EXIT_UPSTREAM  # waited for the end and did not see it, as a Batch or TES wait
    return output


def _output(data: dict[str, Any], reports: list[TargetReport]) -> Output:
    lines = []
    for report in reports:
        lines.append(summary_line(report))
        lines += [f"  {i.instance_id:>4}  {i.power_state:<13} {i.outcome or ''}".rstrip() for i in report.instances]
    if any(report.outcome == "failed" for report in reports):
        code = EXIT_UPSTREAM
    elif any(report.outcome == "not-found" for report in reports):
        code = EXIT_INPUT
    else:
        code = 0
    return Output(data, "\n".join(lines), code)
