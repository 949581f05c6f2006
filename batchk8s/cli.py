"""`python -m batchk8s`: the command line, a second thin door to the same services as HTTP.

Each area adds its verbs in `batchk8s/commands/<area>.py` through `register(subparsers, common)`; a
verb's handler takes `(args, settings)` and returns an `Output` (`batchk8s/commands/__init__.py` holds
what the verbs share). This module owns what all verbs share:
`--settings FILE`, `--json`, `--timeout SECONDS` (the whole command, waits included, ends within it:
the deadline handed to every call is `args.deadline`), and turning our errors into a message and an
exit code (2 = bad input or configuration, 3 = Azure or TES failed or too slow), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from batchk8s import DEPRECATED_SINCE
from batchk8s.commands import (
    artifacts,
    batch,
    config,
    cron,
    int_between,
    openapi,
    plan,
    schedules,
    tes,
    vmss,
)
from batchk8s.deadline import CLI_MAX_SECONDS, CLI_SECONDS, Deadline
from batchk8s.errors import BatchK8sError

COMMAND_MODULES = (artifacts, batch, config, openapi, plan, cron, schedules, tes, vmss)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own usage errors: exit 2 like any bad input
        self.print_usage(sys.stderr)
        raise SystemExit(f"{self.prog}: error: {message}")


def _common_options(defaults: bool) -> argparse.ArgumentParser:
    """Options accepted before or after the verb; only the top level sets defaults, so a verb's
    parser does not overwrite `--json` given before it."""
    common = argparse.ArgumentParser(add_help=False)
    kwargs: dict[str, Any] = {} if defaults else {"default": argparse.SUPPRESS}
    common.add_argument("--settings", metavar="FILE", **kwargs,
                        help="read settings from a local.settings.json-shaped file instead of the environment")
    common.add_argument("--json", action="store_true", help="print JSON instead of text", **kwargs)
    common.add_argument("-v", "--verbose", action="store_true", **kwargs,
                        help="log progress to stderr, the Azure SDKs' own messages included (else only errors)")
    common.add_argument("--timeout", type=int_between(1, int(CLI_MAX_SECONDS)), metavar="SECONDS",
                        help=f"give up after this long, waits included (default {CLI_SECONDS:g}; "
                             "1800 for Batch --wait, 3600 for TES waits)", **kwargs)
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_options(defaults=False)
    parser = _Parser(prog="python -m batchk8s", parents=[_common_options(defaults=True)],
                     description="Scheduled compute control, Kubernetes on Azure Batch, workflows and TES.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for module in COMMAND_MODULES:
        module.register(subparsers, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except BatchK8sError as error:  # a value an option's type refused: the one-line error, no usage dump
        _print_error(error, False)
        return error.exit_code
    except SystemExit as exit_:
        if isinstance(exit_.code, str):
            print(exit_.code, file=sys.stderr)
            return 2
        return int(exit_.code or 0)
    warn_if_renamed(args)
    from batchk8s.settings import load_settings, read_settings_file

    # A verb that waits by design sets `default_timeout`; every other verb gets CLI_SECONDS.
    args.timeout = args.timeout or getattr(args, "default_timeout", CLI_SECONDS)
    args.deadline = Deadline.after(args.timeout)

    try:
        env = read_settings_file(args.settings) if args.settings else None
        with command_logging(args.verbose):
            output = args.handler(args, load_settings(env))
    except BatchK8sError as error:
        _print_error(error, args.json)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(output.data, indent=2, default=str))
    elif output.text:
        print(output.text)
    return output.exit_code


def warn_if_renamed(args: argparse.Namespace) -> None:
    """A command typed by its old name still runs, for one release, with a note on stderr (so `--json`
    output stays clean) naming the new one."""
    new = getattr(args, "renamed_from", {}).get(args.command)
    if new:
        print(f"warning: '{args.command}' is deprecated since {DEPRECATED_SINCE} and goes in the next release; "
              f"use '{new}'", file=sys.stderr)


# The Azure SDKs log at WARNING what our own error then says in one line (DefaultAzureCredential
# writes a 13-line block listing every credential it tried); they speak only under --verbose.
SDK_LOGGERS = ("azure", "msal", "urllib3")


@contextmanager
def command_logging(verbose: bool) -> Iterator[None]:
    """Our progress to stderr under --verbose; the SDKs' own loggers only then, or for an ERROR.

    The SDK loggers get their levels back afterwards: `main` also runs inside other programs."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    loggers = [logging.getLogger(name) for name in SDK_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.NOTSET if verbose else logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _print_error(error: BatchK8sError, as_json: bool) -> None:
    if as_json:
        print(json.dumps(error.to_dict(), indent=2, default=str), file=sys.stderr)
        return
    print("\n".join(error_lines(error)), file=sys.stderr)


def error_lines(error: BatchK8sError) -> list[str]:
    """An error as people read it: one line for one problem, else a header and one line per problem.

    A header that only counts or lists the fields ("invalid input: EXPR") says nothing its single
    detail does not, so one problem prints as `error: FIELD: MESSAGE`; a header with news of its own
    ("task t1 ended in state ...") keeps it and adds the detail only when it says more."""
    fields = [detail for detail in error.details if "field" in detail]
    if len(fields) != 1:
        return [f"error: {error.message}"] + [f"  - {d['field']}: {d.get('message', '')}" for d in fields]
    field, message = fields[0]["field"], str(fields[0].get("message", ""))
    if error.message == f"{field}: {message}" or error.message.endswith(f": {field}"):
        return [f"error: {field}: {message}"]
    if message in error.message:
        return [f"error: {error.message}"]
    return [f"error: {error.message} ({field}: {message})"]
