"""Cold start: importing the app and listing its functions vs importing azure.functions alone.

Target (issue 2): at most 1.5x the time and peak memory of the bare import, which holds only while
the Azure SDKs stay out of the import path. Each sample is a fresh interpreter; medians of RUNS.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 15

PROBE = """
import json, resource, sys, time
start = time.perf_counter()
{body}
elapsed = time.perf_counter() - start
heavy = sorted(m for m in sys.modules if m.split('.')[0] == 'azure' and m.split('.')[1:2] and
               m.split('.')[1] in ('batch', 'mgmt', 'storage', 'identity', 'core'))
print(json.dumps({{"seconds": elapsed, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                   "sdk_modules": len(heavy)}}))
"""

BARE = "import azure.functions"
APP = "import function_app\nnames = [f.get_function_name() for f in function_app.app.get_functions()]"


def sample(body: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", PROBE.format(body=body)], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def main() -> None:
    cases = (("azure.functions alone", BARE), ("function_app + get_functions()", APP))
    samples: dict[str, list[dict[str, float]]] = {name: [] for name, _ in cases}
    for _ in range(RUNS):  # interleaved, so background load hits both cases alike
        for name, body in cases:
            samples[name].append(sample(body))
    results = {}
    for name, runs in samples.items():
        results[name] = {
            "ms": statistics.median(r["seconds"] for r in runs) * 1000,
            "maxrss_mb": statistics.median(r["maxrss_kb"] for r in runs) / 1024,
            "sdk_modules": runs[0]["sdk_modules"],
        }
    bare, app = results["azure.functions alone"], results["function_app + get_functions()"]
    for name, r in results.items():
        print(f"{name:32s} import {r['ms']:7.1f} ms   peak RSS {r['maxrss_mb']:6.1f} MiB   "
              f"Azure SDK modules loaded: {r['sdk_modules']}")
    print(f"ratio: time {app['ms'] / bare['ms']:.2f}x, peak memory {app['maxrss_mb'] / bare['maxrss_mb']:.2f}x "
          f"(target <= 1.5x each; median of {RUNS} fresh interpreters)")


if __name__ == "__main__":
    main()
