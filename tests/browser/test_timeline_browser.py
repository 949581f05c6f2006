"""The timeline page in a real browser (Debian's Chromium, headless): the example document's week as the
route serves it, and a 200-target fleet with a history. No console error (a CSP violation is one), the
expected marks and rows in the DOM, a screenshot of the expected size, the policy header as received,
keyboard focus on the marks, a hostile hold reason shown as text, and rendering within a second."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import azure.functions as func
import pytest

from batchk8s import clock
from batchk8s import settings as settings_module
from batchk8s.schedules.document import parse_document
from batchk8s.schedules.timeline import build
from batchk8s.schedules.timeline_html import CONTENT_SECURITY_POLICY, HEADERS, render
from tests.app_index import indexed_functions
from tests.browser.chromium import (
    FLEET_MARKS_PER_TARGET,
    FLEET_MONDAY,
    FLEET_NOW,
    HOSTILE_REASON,
    VIEWPORT,
    PageServer,
    browser,
    chromium_path,
    fleet_document,
    fleet_history,
    png_size,
)
from tests.scripts.tools import missing_tool

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "schedules.json"
RENDER_BUDGET_MS = 1000


@pytest.fixture(scope="module")
def server() -> Iterator[PageServer]:
    with PageServer() as started:
        yield started


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if chromium_path() is None:
        missing_tool("Chromium is not installed (make test installs Debian's chromium package)")
    with browser(tmp_path_factory.mktemp("chromium-profile")) as started:
        yield started


def route_response(monkeypatch: pytest.MonkeyPatch, **params: str) -> func.HttpResponse:
    """GET /api/schedules/view through the indexed function, with the example document and a pinned clock."""
    monkeypatch.setenv("BATCHK8S_SCHEDULES", EXAMPLE.read_text())
    for name in ("BATCHK8S_SCHEDULES_BLOB", "AzureWebJobsStorage", "AZURE_STORAGE_ACCOUNT_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(clock, "now", lambda: datetime(2026, 11, 30, 6, tzinfo=UTC))
    settings_module.clear_cache()
    function = indexed_functions()["schedules_view"]
    request = func.HttpRequest("GET", "http://localhost/api/schedules/view", params=params, body=b"", headers={})
    return function.get_user_function()(request)


class Visit:
    """One page load with every console message and page error collected."""

    def __init__(self, context: Any, url: str):
        self.page = context.new_page()
        self.console: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self.page.on("console", lambda message: self.console.append((message.type, message.text)))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.response = self.page.goto(url, wait_until="load")

    def count(self, selector: str) -> int:
        return self.page.locator(selector).count()

    def timing(self) -> dict[str, float]:
        return self.page.evaluate("""() => {
            const nav = performance.getEntriesByType('navigation')[0];
            const paint = performance.getEntriesByName('first-contentful-paint')[0];
            return {load: nav.loadEventEnd, fcp: paint ? paint.startTime : -1};
        }""")

    def problems(self) -> list[str]:
        return [text for kind, text in self.console if kind in ("error", "warning")] + self.errors


def test_the_example_week_as_the_route_serves_it(context: Any, server: PageServer, monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path):
    response = route_response(monkeypatch, after="2026-11-30T00:00:00Z", tz="Europe/Berlin")
    assert response.status_code == 200
    server.pages["/api/schedules/view"] = (200, {**dict(response.headers), "Content-Type": "text/html; charset=utf-8"},
                                           response.get_body())
    visit = Visit(context, f"{server.url}/api/schedules/view?after=2026-11-30T00:00:00Z&tz=Europe/Berlin")
    assert visit.response.status == 200
    assert visit.response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert visit.problems() == []
    # Monday to Monday: four office-hours rules on five weekdays, weekend-off once, pool-night daily,
    # pool-day on weekdays; the four targets of the document, one row each.
    assert visit.count("g.mark") == 5 * 4 + 1 + 7 + 5
    assert visit.count("g.mark.start") == 10 and visit.count("g.mark.deallocate") == 11
    assert visit.count("g.mark.resize") == 12 and visit.count("g.mark.held") == 1
    assert visit.count("[role=listitem]") == 4 and visit.count("details.group") == 4
    assert visit.count("script") == 0
    # The stylesheet applied under the policy: weekend shading has its colour, the hold its hatching.
    assert visit.page.eval_on_selector("rect.weekend", "e => getComputedStyle(e).fill") == "rgb(226, 231, 238)"
    assert visit.page.eval_on_selector("rect.hold", "e => getComputedStyle(e).fill").startswith("url(")
    assert visit.page.locator("table tbody tr").count() == 4 + 33 + 1  # per target a heading; every mark; the hold

    shot = visit.page.screenshot(path=str(tmp_path / "example.png"), full_page=True)
    width, height = png_size(shot)
    body = visit.page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
    assert (width, height) == tuple(body) and width >= VIEWPORT["width"] and height > VIEWPORT["height"]
    assert len(shot) > 50_000  # drawn, not blank

    # Keyboard: the skip link first, then the first group's fold, then its first mark.
    visit.page.keyboard.press("Tab")
    assert visit.page.evaluate("() => document.activeElement.className") == "skip"
    visit.page.keyboard.press("Tab")
    assert visit.page.evaluate("() => document.activeElement.tagName") == "SUMMARY"
    visit.page.keyboard.press("Tab")
    label = visit.page.evaluate("() => document.activeElement.querySelector('title').textContent")
    assert label == ("scale sets tagged schedule=office-hours-eu: start at Mon 30 Nov 08:00 CET, rule eu-open")
    assert visit.page.get_by_role("img", name=label, exact=True).count() == 1  # its <title> is its accessible name
    visit.page.close()


def fleet_page() -> tuple[str, dict[str, int]]:
    document = fleet_document()
    parsed = parse_document(document, now=FLEET_NOW)
    timeline = build(parsed, start=FLEET_MONDAY, days=7, zone=ZoneInfo("Europe/Berlin"), now=FLEET_NOW,
                     history=fleet_history(document))
    return render(timeline), timeline.counts()


def test_two_hundred_targets_for_a_week_render_within_a_second(context: Any, server: PageServer, tmp_path: Path):
    page, counts = fleet_page()
    history = fleet_history(fleet_document())
    server.pages["/fleet"] = (200, {**HEADERS, "Content-Type": "text/html; charset=utf-8"}, page.encode())
    visit = Visit(context, f"{server.url}/fleet")
    assert visit.response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert visit.problems() == []
    assert visit.count("[role=listitem]") == 200 and visit.count("details.group") == 20
    assert visit.count("g.mark") == 200 * FLEET_MARKS_PER_TARGET
    assert visit.count("g.outcome") == len(history) == counts["outcomes"]
    assert visit.count("g.outcome.failed") == sum(1 for e in history if e["result"] == "failed") > 0
    # The hostile hold reason is text on the page, and nothing ran.
    assert visit.page.get_by_text(HOSTILE_REASON).count() >= 1
    assert visit.page.title().startswith("Schedules ") and visit.count("script") == 0
    # Rendered within a second: the median load event of three loads (HTML over loopback, parse, layout, paint).
    loads = [visit.timing()["load"]]
    for _ in range(2):
        again = Visit(context, f"{server.url}/fleet")
        loads.append(again.timing()["load"])
        again.page.close()
    assert 0 < sorted(loads)[1] < RENDER_BUDGET_MS, loads
    shot = visit.page.screenshot(path=str(tmp_path / "fleet.png"))
    assert png_size(shot) == (VIEWPORT["width"], VIEWPORT["height"]) and len(shot) > 50_000
    visit.page.close()


def test_the_escaped_reason_is_also_json_safe_in_the_layout():
    """The layout keeps the reason verbatim (escaping is the renderer's job, once)."""
    document = parse_document(fleet_document(20), now=FLEET_NOW)
    timeline = build(document, start=FLEET_MONDAY, days=7, zone=ZoneInfo("UTC"), now=FLEET_NOW)
    holds = [hold for row in timeline.rows for hold in row.holds]
    assert [hold.reason for hold in holds] == [HOSTILE_REASON]
    assert json.loads(json.dumps(timeline.to_dict()))["counts"]["holds"] == 1
