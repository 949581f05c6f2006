"""`cron next EXPR`: preview an NCRONTAB expression exactly as the Functions host will evaluate it.

`schedule` is the verb's old name, kept for one release: it differed from `schedules` (the schedule
document) by one letter and meant something else entirely.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from batchk8s import clock
from batchk8s.commands import Output, int_between
from batchk8s.problems import Problems
from batchk8s.settings import Settings


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    cron = subparsers.add_parser("cron", aliases=["schedule"],
                                 help="NCRONTAB expressions as the Functions host evaluates them ('schedule' is "
                                      "the deprecated old name)")
    cron.set_defaults(renamed_from={"schedule": "cron"})
    verbs = cron.add_subparsers(dest="verb", required=True, metavar="VERB")
    upcoming = verbs.add_parser("next", parents=[common], help="the next firings of an NCRONTAB expression")
    upcoming.add_argument("expression", metavar="EXPR",
                          help="NCRONTAB, 6 fields (seconds first) or 5, e.g. '0 30 7 * * 1-5'")
    upcoming.add_argument("--after", metavar="ISO", help="start after this ISO-8601 time (default: now); "
                                                           "without an offset it is read in --tz")
    upcoming.add_argument("--count", type=int_between(1, 1000), default=5, help="how many firings (default 5)")
    upcoming.add_argument("--tz", metavar="IANA", help="evaluate in this time zone (default: the zone the timer "
                                                        "uses: WEBSITE_TIME_ZONE, or UTC where the plan ignores it)")
    upcoming.set_defaults(handler=next_firings)


def next_firings(args: argparse.Namespace, settings: Settings) -> Output:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from batchk8s.ncrontab import ScheduleError, parse
    from batchk8s.vmss_timer import evaluation_zone

    problems = Problems()
    try:
        schedule = parse(args.expression)
    except ScheduleError as exc:
        problems.add("EXPR", str(exc))  # the message names the NCRONTAB field
    zone = evaluation_zone(settings)
    if args.tz:
        try:
            zone = ZoneInfo(args.tz)
        except (ZoneInfoNotFoundError, ValueError):
            problems.add("--tz", f"{args.tz!r} is not an IANA time zone (e.g. Europe/Berlin)")
    after = None
    if args.after:
        try:
            after = datetime.fromisoformat(args.after)
        except ValueError:
            problems.add("--after", f"{args.after!r} is not an ISO-8601 time")
    problems.raise_if_any("cannot evaluate the schedule")
    after = after or clock.now()
    start = (after if after.tzinfo else after.replace(tzinfo=zone)).astimezone(zone)
    times = [moment.isoformat() for moment in schedule.occurrences(start, args.count)]
    data = {"expression": args.expression, "timeZone": zone.key, "after": start.isoformat(), "firings": times,
            "neverFires": not times}
    return Output(data, "\n".join(times) if times else "this schedule never fires")
