"""The timeline page as text: escaping, the policy that pins its stylesheet, marks and the table fallback."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

from batchk8s.schedules.document import parse_document
from batchk8s.schedules.timeline import build
from batchk8s.schedules.timeline_html import CONTENT_SECURITY_POLICY, HEADERS, render, render_unconfigured

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
START = datetime(2026, 11, 30, tzinfo=UTC)
HOSTILE = "<script>alert('held')</script> & \"quotes\""
DOCUMENT = {
    "rules": [{"name": "<b>open</b>", "schedule": "0 0 8 * * Mon-Fri", "timeZone": "Europe/Berlin", "action": "start",
               "targets": [{"resourceGroup": "rg", "name": "vmss-a"}]},
              {"name": "night", "schedule": "0 0 20 * * *", "action": "resize", "dedicated": 0, "spot": 2,
               "targets": [{"pool": "p1"}]}],
    "holds": [{"resourceGroup": "rg", "name": "vmss-a", "until": "2026-12-01T12:00:00Z", "reason": HOSTILE}]}
HISTORY = [{"key": "vmss/rg/vmss-a", "target": {"kind": "vmss", "resourceGroup": "rg", "name": "vmss-a"},
            "firing": "2026-12-01T07:00:00+00:00", "at": "2026-12-01T07:00:02+00:00", "rule": "<b>open</b>",
            "action": "start", "result": "failed", "reason": "<img src=x>", "detail": "<i>quota</i>"}]


class Elements(HTMLParser):
    """Collects the tags and text of a page as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.style = ""
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.style += data
        self.text.append(data)


def page() -> tuple[str, Elements]:
    document = parse_document(DOCUMENT, now=NOW)
    html = render(build(document, start=START, days=7, zone=ZoneInfo("Europe/Berlin"), now=NOW, history=HISTORY))
    parsed = Elements()
    parsed.feed(html)
    return html, parsed


def test_names_reasons_and_details_are_text_never_markup():
    html, parsed = page()
    tags = {tag for tag, _ in parsed.tags}
    assert not tags & {"script", "b", "img", "i"}
    text = "".join(parsed.text)
    assert HOSTILE in text and "<b>open</b>" in text and "<img src=x>" in text and "<i>quota</i>" in text
    assert "&lt;script&gt;alert(&#x27;held&#x27;)&lt;/script&gt; &amp; &quot;quotes&quot;" in html


def test_the_policy_allows_exactly_the_pages_own_stylesheet_and_nothing_else():
    _, parsed = page()
    digest = base64.b64encode(hashlib.sha256(parsed.style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY and "script-src 'none'" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY and "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    [meta] = [attrs for tag, attrs in parsed.tags if tag == "meta" and attrs.get("http-equiv")]
    assert meta["content"] and meta["content"] in CONTENT_SECURITY_POLICY
    assert HEADERS["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert HEADERS["Referrer-Policy"] == "no-referrer"  # the function key travels in the query string
    # Nothing is loaded from anywhere: no external reference, no inline style attribute, no handler.
    for _, attrs in parsed.tags:
        assert "style" not in attrs and not any(name.startswith("on") for name in attrs)
        assert not any(str(value).startswith(("http:", "https:", "//")) for name, value in attrs.items()
                       if name in ("src", "href"))


def test_every_mark_is_a_named_focusable_shape_and_the_table_lists_each_one():
    html, parsed = page()
    marks = [attrs for tag, attrs in parsed.tags if tag == "g" and "mark" in (attrs.get("class") or "").split()]
    # 5 weekday openings at 08:00 Berlin and 7 nightly resizes from Monday 30 November 00:00 UTC.
    assert len(marks) == 12
    assert all(attrs.get("tabindex") == "0" and attrs.get("role") == "img" for attrs in marks)
    names = re.findall(r'<g class="mark [^"]*" tabindex="0" role="img"><title>([^<]*)</title><path', html)
    assert len(names) == 12  # each named by its <title>, which is also its tooltip
    held = re.findall(r'<g class="mark start held" tabindex="0" role="img"><title>([^<]*)</title>', html)
    assert held == [
        "scale set rg/vmss-a: start at Mon 30 Nov 08:00 CET, rule &lt;b&gt;open&lt;/b&gt;, held: will be skipped",
        "scale set rg/vmss-a: start at Tue 01 Dec 08:00 CET, rule &lt;b&gt;open&lt;/b&gt;, held: will be skipped"]
    outcomes = [attrs for tag, attrs in parsed.tags if tag == "g" and "outcome" in (attrs.get("class") or "")]
    assert [attrs["class"] for attrs in outcomes] == ["outcome failed"]
    rows = [tag for tag, _ in parsed.tags if tag == "tr"]
    # The header, then per target a heading row and one row per mark (an outcome joins its mark) and hold.
    assert len(rows) == 1 + 2 + 12 + 1
    assert sum(1 for tag, attrs in parsed.tags if tag == "g" and attrs.get("role") == "listitem") == 2


def test_resize_marks_read_their_node_counts_and_the_title_names_the_window():
    html, _ = page()
    assert re.search(r"<title>Schedules Mon 30 Nov 2026 01:00 to Mon 07 Dec 2026 01:00 \(Europe/Berlin\)</title>",
                     html)
    assert "pool p1: resize to 0+2 at Mon 30 Nov 21:00 CET (20:00 UTC), rule night" in html


def test_no_document_configured_says_so_and_links_the_docs():
    parsed = Elements()
    parsed.feed(render_unconfigured())
    assert "No schedule document is configured" in "".join(parsed.text)
    assert ("a", {"href": "docs/timeline.md"}) in parsed.tags
    assert "BATCHK8S_SCHEDULES" in "".join(parsed.text)
