"""How long NCRONTAB evaluation takes: next_after per call, and a tick evaluating 1,000 rules.

Prints figures; asserts nothing (timings depend on the machine).  Run: python bench/bench_schedule.py
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from batchk8s.schedule import parse

EXPRESSIONS = ["0 */5 * * * *", "0 30 9 * * 1-5", "0 0 0 1 * *", "*/10 * * * * *", "0 0 12 13 * Fri",
               "0 0 2 29 Feb *", "0 0 8 * JAN-MAR mon", "30 1 * * *"]


def main() -> None:
    schedules = [parse(expression) for expression in EXPRESSIONS]
    for zone in (UTC, ZoneInfo("Europe/Berlin")):
        now = datetime(2024, 5, 17, 10, 7, 3, tzinfo=zone)
        samples = []
        for schedule in schedules:
            for _ in range(2000):
                start = time.perf_counter()
                schedule.next_after(now)
                samples.append(time.perf_counter() - start)
        print(f"next_after in {zone}: median {statistics.median(samples) * 1e6:.1f} us, "
              f"p99 {statistics.quantiles(samples, n=100)[98] * 1e6:.1f} us")
    rules = [schedules[index % len(schedules)] for index in range(1000)]
    now = datetime(2024, 5, 17, 10, 7, 3, tzinfo=ZoneInfo("Europe/Berlin"))
    start = time.process_time()
    for rule in rules:
        rule.next_after(now)
        rule.previous_at_or_before(now)
    elapsed_ms = (time.process_time() - start) * 1000
    print(f"tick of 1000 rules (next_after + previous_at_or_before): {elapsed_ms:.1f} ms CPU")


if __name__ == "__main__":
    main()
