"""`plan`: show what the app would do with these settings; sends nothing to Azure. Exits 2 when it
prints a PROBLEM line (a setting the app or the Functions host would refuse)."""

from __future__ import annotations

import argparse
from typing import Any

from batchk8s.commands import Output, int_between
from batchk8s.errors import EXIT_INPUT
from batchk8s.plan import build_plan
from batchk8s.settings import Settings


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    plan = subparsers.add_parser("plan", parents=[common],
                                 help="show what the app would do (offline); exit 2 if it shows a problem")
    plan.add_argument("--count", type=int_between(1, 100), default=5, help="firings to show per schedule")
    plan.set_defaults(handler=show_plan)


def show_plan(args: argparse.Namespace, settings: Settings) -> Output:
    sections = build_plan(settings, count=args.count)
    text = []
    for section in sections:
        text.append(f"== {section.title} ==")
        text += [f"  {line}" for line in section.lines]
    failed = any(section.has_problems for section in sections)
    return Output({section.key: section.data for section in sections}, "\n".join(text), EXIT_INPUT if failed else 0)
