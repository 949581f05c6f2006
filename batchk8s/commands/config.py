"""`config check`: every setting (secrets masked) and every problem, at once; `config reference`: the docs."""

from __future__ import annotations

import argparse
from typing import Any

from batchk8s.cli import Output
from batchk8s.errors import EXIT_INPUT
from batchk8s.settings import Settings, written


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    config = subparsers.add_parser("config", help="inspect the settings")
    verbs = config.add_subparsers(dest="verb", required=True, metavar="VERB")
    check = verbs.add_parser("check", parents=[common], help="validate every setting and list all problems")
    check.set_defaults(handler=check_config)
    reference = verbs.add_parser("reference", parents=[common],
                                 help="print the settings reference in Markdown (docs/settings.md)")
    reference.set_defaults(handler=print_reference)


def print_reference(args: argparse.Namespace, settings: Settings) -> Output:
    from batchk8s.settings_reference import markdown

    text = markdown()
    # print() ends the text with the newline the Markdown file ends with.
    return Output({"markdown": text}, text.rstrip("\n"))


def check_config(args: argparse.Namespace, settings: Settings) -> Output:
    report = settings.report()
    lines = ["settings:"]
    lines += [f"  {name} = {written(value)}" for name, value in report["settings"].items() if value not in (None, [])]
    access = report["storage"]
    if access:
        identity = access["mode"] == "identity"
        who = f" ({access['credential']}, client id {access['clientId'] or 'default'})" if identity else ""
        lines.append(f"storage: {access['mode']}{who}" + (f" at {access['endpoint']}" if access["endpoint"] else ""))
    lines.append("features:")
    for name, state in report["features"].items():
        gaps = "; ".join(f"{gap['field']} {gap['message']}" for gap in state["missing"])
        verdict = "off" if state.get("off") else "ready" if state["ready"] else "not ready"
        lines.append(f"  {name}: {verdict}{' (' + gaps + ')' if gaps else ''}")
    lines.append("timers:")
    for name, timer in report["timers"].items():
        lines.append(f"  {name}: " + (f"on, schedule {timer['schedule'] or '(unset)'}" if timer["enabled"]
                                      else f"off ({timer['disabledBy']})"))
    lines += [f"warning: {warning}" for warning in report["warnings"]]
    if report["problems"]:
        lines.append(f"{len(report['problems'])} problem(s):")
        lines += [f"  - {p['field']}: {p['message']}" for p in report["problems"]]
    else:
        lines.append("no problems")
    return Output(report, "\n".join(lines), EXIT_INPUT if report["problems"] else 0)
