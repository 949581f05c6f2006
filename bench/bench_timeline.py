"""The timeline page for 200 targets x 7 days (2,400 planned marks, 950 recorded outcomes, 20 groups).

Figures, medians of RUNS: building the layout (document already parsed) and rendering the HTML (CPU
time), the page's size, and in Debian's headless Chromium (the same pieces the browser tests use): the
navigation's load event (HTML over loopback, parse, style, layout and first paint of what is on screen;
off-screen groups are laid out lazily with `content-visibility: auto`), first contentful paint, and the
time to lay out every group and table row as well (forced after load). One HTTP request per page load
(nothing else is fetched: the page has no external resource). Issue 17's target: under a second.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from batchk8s.schedules.document import parse_document  # noqa: E402
from batchk8s.schedules.timeline import build  # noqa: E402
from batchk8s.schedules.timeline_html import HEADERS, render  # noqa: E402
from tests.browser.chromium import (  # noqa: E402
    FLEET_MONDAY,
    FLEET_NOW,
    PageServer,
    browser,
    fleet_document,
    fleet_history,
)

RUNS = 7
FULL_LAYOUT = """() => {
    const t0 = performance.now();
    document.querySelectorAll('details.group, #table tbody').forEach(e => { e.style.contentVisibility = 'visible'; });
    const height = document.documentElement.scrollHeight;
    return [performance.now() - t0, height];
}"""


def median_ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.1f} ms" if values and values[0] < 100 else "n/a"


def main() -> None:
    raw = fleet_document()
    history = fleet_history(raw)
    document = parse_document(raw, now=FLEET_NOW)
    build_cpu, render_cpu = [], []
    for _ in range(RUNS):
        started = time.process_time()
        timeline = build(document, start=FLEET_MONDAY, days=7, zone=ZoneInfo("Europe/Berlin"), now=FLEET_NOW,
                         history=history)
        middle = time.process_time()
        page = render(timeline)
        build_cpu.append(middle - started)
        render_cpu.append(time.process_time() - middle)
    counts = timeline.counts()
    print(f"targets {counts['rows']}, groups {counts['groups']}, marks {counts['marks']}, "
          f"outcomes {counts['outcomes']}, page {len(page.encode()) / 1024:.0f} KiB")
    print(f"layout (build) CPU median {median_ms(build_cpu)}; HTML render CPU median {median_ms(render_cpu)} "
          f"(over {RUNS} runs)")

    loads, paints, layouts, requests = [], [], [], []
    with PageServer() as server, tempfile.TemporaryDirectory() as profile, browser(Path(profile)) as context:
        server.pages["/view"] = (200, {**HEADERS, "Content-Type": "text/html; charset=utf-8"}, page.encode())
        for _ in range(RUNS):
            before = len(server.requests)
            tab = context.new_page()
            tab.goto(f"{server.url}/view", wait_until="load")
            timing = tab.evaluate("""() => [performance.getEntriesByType('navigation')[0].loadEventEnd,
                (performance.getEntriesByName('first-contentful-paint')[0] || {startTime: -1}).startTime]""")
            full, _height = tab.evaluate(FULL_LAYOUT)
            loads.append(timing[0])
            paints.append(timing[1])
            layouts.append(timing[0] + full)
            requests.append(len(server.requests) - before)
            tab.close()
    print(f"Chromium load event median {statistics.median(loads):.0f} ms (min {min(loads):.0f}, max {max(loads):.0f}); "
          f"first contentful paint median {statistics.median(paints):.0f} ms; every group and row laid out "
          f"median {statistics.median(layouts):.0f} ms; requests per load {max(requests)} (over {RUNS} loads)")


if __name__ == "__main__":
    main()
