"""`plan`: show what the app would do with these settings; sends nothing to Azure."""

from __future__ import annotations

import argparse
from typing import Any

from batchk8s.cli import Output, positive_int
from batchk8s.plan import build_plan
from batchk8s.settings import Settings


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    plan = subparsers.add_parser("plan", parents=[common], help="show what the app would do (offline)")
    plan.add_argument("--count", type=positive_int(1, 100), default=5, help="firings to show per schedule")
    plan.set_defaults(handler=show_plan)


def show_plan(args: argparse.Namespace, settings: Settings) -> Output:
    sections = build_plan(settings, count=args.count)
    text = []
    for section in sections:
        text.append(f"== {section.title} ==")
        text += [f"  {line}" for line in section.lines]
    return Output({section.key: section.data for section in sections}, "\n".join(text))
