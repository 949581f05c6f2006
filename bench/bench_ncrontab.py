"""How long NCRONTAB evaluation takes, and how croniter compares on the same expressions.

batchk8s evaluates NCRONTAB itself (batchk8s/ncrontab.py) instead of using croniter. This benchmark
is the evidence: on a fixed random corpus of six-field expressions (seconds first, day of month AND
day of week, as the Functions host reads them) it times the next firing with both and lists every
expression on which croniter's next three firings differ from batchk8s's (croniter is given its
NCRONTAB-like options: seconds first, day_or=False). batchk8s's evaluator is the one checked against
NCrontab's own test vectors (tests/unit/test_ncrontab.py), so a disagreement is croniter's reading.

Prints figures (medians of several runs); asserts nothing (timings depend on the machine).
Run: python bench/bench_ncrontab.py   (croniter comes with requirements-dev.txt)
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from croniter import croniter

from batchk8s.ncrontab import parse

EXPRESSIONS = ["0 */5 * * * *", "0 30 9 * * 1-5", "0 0 0 1 * *", "*/10 * * * * *", "0 0 12 13 * Fri",
               "0 0 2 29 Feb *", "0 0 8 * JAN-MAR mon", "30 1 * * *"]
# (low, high) of each six-field position: second, minute, hour, day of month, month, day of week.
FIELDS = ((0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
CORPUS_SIZE = 900
CORPUS_SEED = 13
FIRINGS = 3
RUNS = 5
START = datetime(2024, 5, 17, 10, 7, 3, tzinfo=UTC)


def random_field(rng: random.Random, low: int, high: int) -> str:
    """One field as people write them: *, a value, a range (sometimes of one value), a step, or a list."""
    a, b = sorted((rng.randint(low, high), rng.randint(low, high)))
    kind = rng.choice(("*", "value", "range", "step", "value-step", "range-step", "list"))
    return {"*": "*", "value": str(a), "range": f"{a}-{b}",
            "step": f"*/{rng.randint(2, 15)}", "value-step": f"{a}/{rng.randint(2, 15)}",
            "range-step": f"{a}-{b}/{rng.randint(2, 5)}", "list": f"{a},{b}"}[kind]


def corpus() -> list[str]:
    rng = random.Random(CORPUS_SEED)
    return [" ".join(random_field(rng, low, high) for low, high in FIELDS) for _ in range(CORPUS_SIZE)]


def ours(expression: str) -> list[datetime] | str:
    schedule, found, at = parse(expression), [], START
    for _ in range(FIRINGS):
        at = schedule.next_after(at)
        if at is None:
            break
        found.append(at)
    return found


def theirs(expression: str) -> list[datetime] | str:
    try:
        itr = croniter(expression, START, second_at_beginning=True, day_or=False, max_years_between_matches=50)
        return [itr.get_next(datetime) for _ in range(FIRINGS)]
    except Exception as exc:  # croniter refuses or finds nothing: that is its answer
        return f"{type(exc).__name__}: {exc}"


def shown(firings: list[datetime] | str, index: int) -> str:
    if isinstance(firings, str):
        return firings
    return firings[index].isoformat() if index < len(firings) else "none"


def agreement(expressions: list[str]) -> None:
    """Every expression whose next FIRINGS firings differ, at the first firing that differs."""
    answers = [(expression, ours(expression), theirs(expression)) for expression in expressions]
    # Neither finding a firing (croniter raises where batchk8s returns none) is agreement.
    disagreements = [(e, a, b) for e, a, b in answers if a != b and not (a == [] and isinstance(b, str))]
    print(f"agreement on {len(expressions)} random six-field expressions (seed {CORPUS_SEED}, next {FIRINGS} "
          f"firings after {START.isoformat()}): croniter differs on {len(disagreements)} "
          f"(1 in {len(expressions) / max(len(disagreements), 1):.1f})")
    for expression, a, b in disagreements:
        first = 0 if isinstance(b, str) else next(i for i in range(FIRINGS) if shown(a, i) != shown(b, i))
        print(f"  {expression:<34} firing {first + 1}: batchk8s {shown(a, first)}, croniter {shown(b, first)}")


def speed(expressions: list[str]) -> None:
    """Median per next-firing call over RUNS runs of the whole corpus, each library parsing once."""
    schedules = [parse(e) for e in expressions]
    iterators = []
    for expression in expressions:
        try:
            iterators.append(croniter(expression, START, second_at_beginning=True, day_or=False))
        except Exception:  # croniter refuses a few: time the ones it reads
            continue
    ours_runs, theirs_runs = [], []
    for _ in range(RUNS):
        start = time.perf_counter()
        for schedule in schedules:
            schedule.next_after(START)
        ours_runs.append((time.perf_counter() - start) / len(schedules))
        start = time.perf_counter()
        for itr in iterators:
            itr.set_current(START, force=True)
            try:
                itr.get_next(datetime)
            except Exception:  # no firing within its search horizon
                continue
        theirs_runs.append((time.perf_counter() - start) / len(iterators))
    a, b = statistics.median(ours_runs) * 1e6, statistics.median(theirs_runs) * 1e6
    print(f"next firing, median of {RUNS} runs over the corpus: batchk8s {a:.1f} us/call, "
          f"croniter {b:.1f} us/call ({b / a:.1f}x)")


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
    expressions = corpus()
    speed(expressions)
    agreement(expressions)


if __name__ == "__main__":
    main()
