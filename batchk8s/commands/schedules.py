"""`schedules plan|validate|history|reconcile`: the schedule document from the command line."""

from __future__ import annotations

import argparse
import json
from typing import Any

from batchk8s import clock
from batchk8s.commands import Output, int_between, read_json_file
from batchk8s.schedules.planner import format_firing, format_hold
from batchk8s.settings import Settings


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    from batchk8s.schedules.service import MAX_HISTORY, MAX_HOURS, MAX_VIEW_DAYS

    schedules = subparsers.add_parser("schedules", help="the schedule document (BATCHK8S_SCHEDULES)")
    verbs = schedules.add_subparsers(dest="verb", required=True, metavar="VERB")
    plan = verbs.add_parser("plan", parents=[common], help="every firing in the next hours, per target")
    plan.add_argument("--hours", type=int_between(1, MAX_HOURS), default=24, help="window (1-168, default 24)")
    plan.add_argument("--file", metavar="FILE", help="plan this document instead of the configured one")
    plan.add_argument("--html", metavar="FILE", help="write the timeline page (the same as GET /api/schedules/view) "
                                                     "to FILE instead of listing firings")
    plan.add_argument("--days", type=int_between(1, MAX_VIEW_DAYS), default=7,
                      help="with --html: window in days (1-31, default 7)")
    plan.add_argument("--tz", metavar="ZONE", help="with --html: the clock to read it on (IANA, default UTC)")
    plan.add_argument("--after", metavar="TIME", help="where the window starts (ISO 8601, no offset = UTC; "
                                                      "default now), e.g. 2026-11-26T12:00:00Z")
    plan.set_defaults(handler=show_plan)
    validate = verbs.add_parser("validate", parents=[common], help="validate a document and list every problem")
    validate.add_argument("file", metavar="FILE", nargs="?",
                          help="a JSON document ('-' for stdin); default: the configured one")
    validate.set_defaults(handler=validate_document)
    history = verbs.add_parser("history", parents=[common], help="what was applied, skipped or failed")
    history.add_argument("--limit", type=int_between(1, MAX_HISTORY), default=50, help="entries (default 50)")
    history.set_defaults(handler=show_history)
    reconcile = verbs.add_parser("reconcile", parents=[common], help="run one reconcile tick now")
    reconcile.add_argument("--dry-run", action="store_true", help="decide and report, change nothing")
    reconcile.set_defaults(handler=run_reconcile)


def _file_text(path: str | None) -> str | None:
    return None if path is None else json.dumps(read_json_file(path, "FILE"))


def show_plan(args: argparse.Namespace, settings: Settings) -> Output:
    from batchk8s.schedules import service

    if args.html:
        return write_timeline(args, settings)
    start = service.view_start(args.after, clock.now(), "--after")
    data = service.upcoming(settings, args.hours, now=start, text=_file_text(args.file), source=args.file)
    lines = [f"{data['firings']} firing(s) from {data['from']} to {data['to']}"]
    for entry in data["targets"]:
        lines.append(f"{entry['label']}:")
        lines += [f"  {format_firing(f)}" for f in entry["firings"]] or ["  (no firing in the window)"]
    lines += [format_hold(hold) for hold in data["holds"]]
    return Output(data, "\n".join(lines))


def write_timeline(args: argparse.Namespace, settings: Settings) -> Output:
    from pathlib import Path

    from batchk8s.errors import InputError
    from batchk8s.schedules import service
    from batchk8s.schedules.timeline_html import render, render_unconfigured

    zone = service.view_zone(args.tz)
    start = service.view_start(args.after, clock.now(), "--after")
    text = _file_text(args.file)
    if text is None and not service.configured(settings):
        page, data = render_unconfigured(), {"configured": False}
    else:
        timeline = service.timeline(settings, args.days, zone, start, text=text, source=args.file)
        page, data = render(timeline), {"configured": True, **timeline.counts()}
    path = Path(args.html).resolve()
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise InputError.for_field("--html", f"cannot write {path}: {exc.strerror}") from None
    data["file"] = str(path)
    summary = (f" ({data['rows']} target(s), {data['marks']} planned action(s), {data['outcomes']} outcome(s))"
               if data["configured"] else " (no schedule document is configured)")
    return Output(data, f"wrote {path}{summary}")


def validate_document(args: argparse.Namespace, settings: Settings) -> Output:
    from batchk8s.schedules.service import load_document

    document = load_document(settings, clock.now(), _file_text(args.file), args.file)
    summary = document.summary()
    text = (f"valid: {summary['rules']} rule(s), {summary['explicitTargets']} named target(s), "
            f"{summary['tagSelectors']} tag selector(s), {summary['holds']} hold(s)")
    return Output({"valid": True, **summary}, text)


def show_history(args: argparse.Namespace, settings: Settings) -> Output:
    from batchk8s.schedules.service import history

    data = history(settings, args.limit, deadline=args.deadline)
    lines = [f"{e.get('at')}  {e['key']}  {e.get('result')}"
             f"{' (' + e['reason'] + ')' if e.get('reason') else ''}  {e.get('action')} firing {e.get('firing')} "
             f"[{e.get('rule')}]{': ' + e['detail'] if e.get('detail') else ''}" for e in data["entries"]]
    return Output(data, "\n".join(lines) or "no history yet")


def run_reconcile(args: argparse.Namespace, settings: Settings) -> Output:
    from batchk8s.errors import EXIT_UPSTREAM
    from batchk8s.schedules.reconcile import reconcile

    report = reconcile(settings, dry_run=args.dry_run, deadline=args.deadline)
    data = report.to_dict()
    lines = [f"tick at {data['now']}{' (dry run)' if report.dry_run else ''}: "
             + (", ".join(f"{n} {result}" for result, n in sorted(data["counts"].items())) or "no targets")]
    for entry in data["targets"]:
        firing = entry.get("firing")
        when = f" firing {format_firing(firing)}" if firing else ""
        reason = f" ({entry['reason']})" if entry.get("reason") else ""
        detail = f": {entry['detail']}" if entry.get("detail") else ""
        lines.append(f"  {entry['key']}: {entry['result']}{reason}{when}{detail}")
    lines += [f"  error: tag selection in {e['scope']}: {e['message']}" for e in data["errors"]]
    failed = data["counts"].get("failed", 0) or data["errors"]
    return Output(data, "\n".join(lines), EXIT_UPSTREAM if failed else 0)
