"""`make bench`: run every bench/bench_*.py and write what each printed to bench/README.md, with the date.

Each benchmark prints its own figures (medians of several runs and request counts); this only runs them
one after another, so they do not compete for the cores, and records the output with when and where it
was measured. A benchmark that fails stops the run and leaves bench/README.md as it was.
Run: python bench/collect.py [--out PATH]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
COMMAND = "make bench"


def render(results: list[tuple[str, str]], measured_at: datetime, machine: str) -> str:
    """bench/README.md from (script name, what it printed) pairs."""
    lines = ["# Benchmark figures", "",
             f"Written by `{COMMAND}` (`python bench/collect.py`) on {measured_at:%Y-%m-%d %H:%M} UTC, {machine}.",
             "Each section is what the benchmark printed; CI does not assert timings. Rerun `make bench` to",
             "measure again: it rewrites this file.", ""]
    for name, output in results:
        lines += [f"## `{name}`", "", "```text", output.rstrip("\n"), "```", ""]
    return "\n".join(lines)


def machine() -> str:
    return f"{os.cpu_count()} cores, {platform.system()} {platform.machine()}, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=BENCH / "README.md", help="where to write (default: %(default)s)")
    parser.add_argument("--dir", type=Path, default=BENCH, help="where the bench_*.py scripts are")
    args = parser.parse_args(argv)
    results = []
    for script in sorted(args.dir.glob("bench_*.py")):
        print(f"== {script.name}", flush=True)
        run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
        sys.stdout.write(run.stdout)
        if run.returncode != 0:
            sys.stderr.write(run.stderr)
            print(f"error: {script.name} exited {run.returncode}; {args.out} left unchanged", file=sys.stderr)
            return 1
        results.append((script.name, run.stdout))
    args.out.write_text(render(results, datetime.now(UTC), machine()), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
