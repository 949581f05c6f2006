"""The timeline as one self-contained HTML document: inline SVG and one stylesheet, no script. Pure.

Everything from the document or the history (target names, rule names, hold reasons, error details)
goes through `html.escape`, so a reason reading `<script>` is shown as text. The stylesheet is fixed
text, so the Content-Security-Policy allows it by its SHA-256 hash and forbids everything else
(`default-src 'none'`); the policy is also written into the page, so a file opened from disk is held
to it too. Nothing depends on colour alone: each action has its own shape (start ▲, deallocate ▼,
resize ◆) and each outcome its own (applied ●, skipped ○ with a slash, failed ✕ with the error code),
every mark has a text label and a tooltip, is reachable with Tab and named by its `<title>`,
each group folds with the keyboard (`<details>`), and a table below lists every mark for screen readers.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from batchk8s.schedules.timeline import Day, Mark, Outcome, Row, Timeline

LABEL_WIDTH = 300
ROW_HEIGHT = 44
AXIS_HEIGHT = 60  # day labels, hour labels, clock-change labels
PLAN_Y, OUTCOME_Y = 15, 33  # lane centres within a row
LABEL_CHARS = 44
CHAR_PX = 6.0  # width of a character of an 10 px mark label, near enough to keep labels apart
DOCS = "docs/timeline.md"
APP_SETTINGS_DOCS = "https://learn.microsoft.com/azure/azure-functions/functions-how-to-use-azure-function-app-settings"

CSS = """
:root { color-scheme: light; --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --start: #1a7f37;
  --stop: #6639ba; --resize: #0969da; --fail: #cf222e; --skip: #9a6700; --ok: #1f2328; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
  background: #fff; }
header, main > section { padding: 12px 20px; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 16px 0 8px; }
p { margin: 4px 0; }
.muted { color: var(--muted); }
.note { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 6px; padding: 6px 10px; margin: 6px 0; }
.skip { position: absolute; left: -9999px; }
.skip:focus { left: 20px; top: 8px; background: #fff; padding: 4px 8px; border: 2px solid var(--resize); z-index: 3; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 18px; margin: 8px 0 0; padding: 0; list-style: none; }
.legend li { display: flex; align-items: center; gap: 6px; }
.legend svg { flex: none; }
.chart { padding: 0 20px 12px; min-width: 1460px; }
.axis { position: sticky; top: 0; z-index: 2; background: #fff; border-bottom: 1px solid var(--line); }
svg { display: block; overflow: visible; }
svg text { font: 11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; fill: var(--ink); }
details.group { border-bottom: 1px solid var(--line); content-visibility: auto; contain-intrinsic-size: auto 200px; }
#table tbody { content-visibility: auto; contain-intrinsic-size: auto 120px; }
details.group > summary { cursor: pointer; padding: 6px 0 4px; font-weight: 600; }
details.group > summary:focus-visible { outline: 3px solid var(--resize); outline-offset: 2px; }
summary .rules { font-weight: 400; color: var(--muted); margin-left: 8px; }
.day-line { stroke: #8c959f; stroke-width: 1; }
.hour-line { stroke: var(--line); stroke-width: 1; }
.night { fill: #eef1f5; }
.weekend { fill: #e2e7ee; }
.row-line { stroke: var(--line); }
.lane { fill: none; }
.now { stroke: var(--fail); stroke-width: 2; }
.now-label { fill: var(--fail); font-weight: 600; }
.dst { stroke: #bc4c00; stroke-width: 1.5; stroke-dasharray: 4 3; }
.dst-label { fill: #bc4c00; font-weight: 600; }
.hold { fill: url(#hold-hatch); stroke: #9a6700; stroke-width: 1; }
.hold-label { fill: #7d4e00; font-style: italic; font-size: 11px; }
.target { font-size: 12px; }
.target.history { font-style: italic; }
.kind { fill: var(--muted); font-size: 10px; }
.day-label { font-weight: 600; font-size: 12px; }
.hour-label { fill: var(--muted); font-size: 10px; }
.mark text, .outcome text { font-size: 10px; }
.mark .shape, .outcome .shape { stroke-width: 1.5; }
.start .shape { fill: var(--start); stroke: var(--start); }
.deallocate .shape { fill: var(--stop); stroke: var(--stop); }
.resize .shape { fill: var(--resize); stroke: var(--resize); }
.held .shape { fill: #fff; stroke-dasharray: 2 1.5; }
.applied .shape { fill: var(--ok); stroke: var(--ok); }
.skipped .shape { fill: #fff; stroke: var(--skip); }
.skipped .slash { stroke: var(--skip); stroke-width: 1.5; }
.failed .shape { fill: none; stroke: var(--fail); stroke-width: 2.5; }
.failed text { fill: var(--fail); font-weight: 600; }
.mark:focus, .outcome:focus { outline: none; }
.mark:focus-visible .shape, .outcome:focus-visible .shape { stroke: #000; stroke-width: 4; paint-order: stroke; }
.mark:focus-visible text, .outcome:focus-visible text { font-weight: 700; text-decoration: underline; }
table { border-collapse: collapse; width: 100%; max-width: 1460px; }
caption { text-align: left; color: var(--muted); padding: 4px 0; }
th, td { border-bottom: 1px solid var(--line); padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
th[scope=rowgroup] { background: #fff; padding-top: 10px; }
td.when { white-space: nowrap; font-variant-numeric: tabular-nums; }
a { color: #0550ae; }
"""

_HASH = base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()
# `frame-ancestors` is honoured only as a header, so the page's <meta> copy leaves it out.
PAGE_POLICY = (f"default-src 'none'; style-src 'sha256-{_HASH}'; img-src 'none'; script-src 'none'; "
               "base-uri 'none'; form-action 'none'")
CONTENT_SECURITY_POLICY = f"{PAGE_POLICY}; frame-ancestors 'none'"
HEADERS = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}

ACTION_SYMBOL = {"start": "▲", "deallocate": "▼", "resize": "◆"}
RESULT_SYMBOL = {"applied": "●", "skipped": "○", "failed": "✕"}


def _a(value: object) -> str:
    """Escaped for an attribute or text node."""
    return escape(str(value), quote=True)


def _when(instant: datetime, zone: ZoneInfo) -> str:
    local = instant.astimezone(zone)
    return f"{local:%a %d %b %H:%M} {local.tzname()}"


def _page(title: str, body: str) -> str:
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{_a(PAGE_POLICY)}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="referrer" content="no-referrer">'
            f"<title>{_a(title)}</title><style>{CSS}</style></head>\n<body>\n{body}\n</body></html>\n")


def render_unconfigured(docs: str = DOCS) -> str:
    """The page for an app with no schedule document: what to set, and where it is explained."""
    body = (f'<header><h1>No schedule document is configured</h1>'
            f"<p>Set the app setting <code>BATCHK8S_SCHEDULES</code> to a schedule document (JSON), or "
            f"<code>BATCHK8S_SCHEDULES_BLOB</code> to <code>CONTAINER/BLOB</code> in the app's storage account, "
            f"and this page shows a week of its start, deallocate and resize actions.</p>"
            f'<p>How to write one and read this page: <a href="{_a(docs)}">{_a(docs)}</a> in the batchk8s '
            f"repository (and its docs/scheduling.md); how to set an app setting: "
            f'<a href="{APP_SETTINGS_DOCS}">Azure Functions app settings</a>.</p></header>')
    return _page("Schedules: no document configured", body)


def render(timeline: Timeline) -> str:
    zone = timeline.zone
    axis = timeline.axis
    counts = timeline.counts()
    title = (f"Schedules {axis.start.astimezone(zone):%a %d %b %Y %H:%M} to "
             f"{axis.end.astimezone(zone):%a %d %b %Y %H:%M} ({zone.key})")
    notes = "".join(f'<p class="note" role="note">{_a(note)}</p>' for note in timeline.notes)
    summary = (f"{counts['rows']} target(s) in {counts['groups']} group(s) · {counts['marks']} planned action(s) · "
               f"{counts['outcomes']} recorded outcome(s) · {counts['holds']} hold(s) · document: "
               f"{_a(timeline.source)} · now {_when(timeline.now, zone)}")
    groups = "".join(_group(timeline, number, group.label, group.descriptions, group.rows)
                     for number, group in enumerate(timeline.groups))
    if not groups:
        groups = '<p class="muted">The document names no target.</p>'
    body = (f'<a class="skip" href="#table">Skip to the table of every action</a>'
            f"<header><h1>{_a(title)}</h1><p class=\"muted\">{summary}</p>{notes}{_legend()}</header>\n"
            f"{_defs()}"
            f'<main><div class="chart" role="region" aria-label="Timeline, one row per target">'
            f"{_axis(timeline)}\n{groups}</div>\n{_table(timeline)}</main>")
    return _page(title, body)


def _defs() -> str:
    return ('<svg width="0" height="0" aria-hidden="true" focusable="false"><defs>'
            '<pattern id="hold-hatch" width="8" height="8" patternUnits="userSpaceOnUse" '
            'patternTransform="rotate(45)"><rect width="8" height="8" fill="#fff8c5"/>'
            '<line x1="0" y1="0" x2="0" y2="8" stroke="#ecd58f" stroke-width="3"/></pattern></defs></svg>')


def _legend() -> str:
    items = [("start", _mark_shape("start", 9, 9), "start"),
             ("deallocate", _mark_shape("deallocate", 9, 9), "deallocate"),
             ("resize", _mark_shape("resize", 9, 9), "resize to dedicated+spot"),
             ("start held", _mark_shape("start", 9, 9), "planned while a hold is on (will be skipped)"),
             ("applied", _outcome_shape("applied", 9, 9), "applied"),
             ("skipped", _outcome_shape("skipped", 9, 9), "skipped (hold, missed, already done)"),
             ("failed", _outcome_shape("failed", 9, 9), "failed, with the error code")]
    parts = [f'<li><svg width="18" height="18" aria-hidden="true"><g class="{kind}">{shape}</g></svg>{_a(text)}</li>'
             for kind, shape, text in items]
    parts += ['<li><svg width="26" height="18" aria-hidden="true"><rect class="hold" x="1" y="2" width="24" '
              'height="14"/></svg>hold</li>',
              '<li><svg width="26" height="18" aria-hidden="true"><rect class="night" x="1" y="2" width="24" '
              'height="14"/></svg>night (19:00-07:00)</li>',
              '<li><svg width="26" height="18" aria-hidden="true"><rect class="weekend" x="1" y="2" width="24" '
              'height="14"/></svg>weekend</li>',
              '<li><svg width="18" height="18" aria-hidden="true"><line class="dst" x1="9" y1="0" x2="9" '
              'y2="18"/></svg>clock change (DST)</li>',
              '<li><svg width="18" height="18" aria-hidden="true"><line class="now" x1="9" y1="0" x2="9" '
              'y2="18"/></svg>now</li>']
    return f'<ul class="legend" aria-label="Legend">{"".join(parts)}</ul>'


def _mark_shape(action: str, cx: float, cy: float) -> str:
    if action == "start":
        path = f"M{cx},{cy - 6}L{cx + 6},{cy + 5}L{cx - 6},{cy + 5}Z"
    elif action == "deallocate":
        path = f"M{cx - 6},{cy - 5}L{cx + 6},{cy - 5}L{cx},{cy + 6}Z"
    else:
        path = f"M{cx},{cy - 7}L{cx + 7},{cy}L{cx},{cy + 7}L{cx - 7},{cy}Z"
    return f'<path class="shape" d="{path}"/>'


def _outcome_shape(result: str, cx: float, cy: float) -> str:
    if result == "failed":
        return (f'<path class="shape" d="M{cx - 5},{cy - 5}L{cx + 5},{cy + 5}M{cx + 5},{cy - 5}L{cx - 5},{cy + 5}"/>')
    shape = f'<circle class="shape" cx="{cx}" cy="{cy}" r="5"/>'
    if result == "skipped":
        shape += f'<path class="slash" d="M{cx - 4},{cy + 4}L{cx + 4},{cy - 4}"/>'
    return shape


def _axis(timeline: Timeline) -> str:
    axis, zone = timeline.axis, timeline.zone
    width = LABEL_WIDTH + axis.width
    parts = [f'<text x="8" y="18" class="day-label">{_a(zone.key)}</text>',
             '<text x="8" y="36" class="hour-label">time on the viewer\'s clock</text>']
    hours_every = 6 if timeline.days <= 7 else (12 if timeline.days <= 14 else 0)
    month_shown = False
    for day in timeline.day_list:
        x0 = LABEL_WIDTH + day.x0
        parts.append(f'<line class="day-line" x1="{x0}" y1="0" x2="{x0}" y2="{AXIS_HEIGHT}"/>')
        wide = day.x1 - day.x0
        if wide >= 18:
            label = f"{day.day:%a %d %b}" if wide >= 70 else f"{day.day:%a %d}" if wide >= 40 else f"{day.day:%d}"
            extra = f" ({day.hours:g} h)" if day.hours != 24 and wide >= 100 and _whole_day(day, zone) else ""
            parts.append(f'<text x="{x0 + 4}" y="18" class="day-label">{_a(label + extra)}</text>')
            if wide < 70 and (day.day.day == 1 or not month_shown):
                parts.append(f'<text x="{x0 + 4}" y="36" class="hour-label">{day.day:%b}</text>')
            month_shown = True
        if hours_every:
            for hour in range(hours_every, 24, hours_every):
                instant = datetime(day.day.year, day.day.month, day.day.day, hour, tzinfo=zone)
                if day.start <= instant < day.end:
                    x = LABEL_WIDTH + axis.x(instant)
                    parts.append(f'<line class="hour-line" x1="{x}" y1="26" x2="{x}" y2="42"/>'
                                 f'<text x="{x + 3}" y="38" class="hour-label">{hour:02d}</text>')
    same_instant: dict[tuple[float, str], list[str]] = {}
    for change in timeline.dst:  # zones that change together (most of Europe) share one label
        same_instant.setdefault((change.x, change.label.rpartition(" clocks ")[2]), []).append(change.zone)
    for (x, shift), zones in same_instant.items():
        zones_text = zones[0] if len(zones) == 1 else f"{zones[0]} +{len(zones) - 1} zone(s)"
        parts.append(f'<line class="dst" x1="{LABEL_WIDTH + x}" y1="0" x2="{LABEL_WIDTH + x}" y2="{AXIS_HEIGHT}"/>'
                     f'<text x="{LABEL_WIDTH + x + 3}" y="{AXIS_HEIGHT - 5}" class="dst-label">'
                     f"<title>{_a(', '.join(zones))} clocks {_a(shift)}</title>{_a(zones_text)} clocks {_a(shift)}"
                     "</text>")
    return (f'<svg class="axis" width="{width}" height="{AXIS_HEIGHT + 2}" role="img" '
            f'aria-label="{_a(_axis_description(timeline))}">{"".join(parts)}</svg>')


def _whole_day(day: Day, zone: ZoneInfo) -> bool:
    start, end = day.start.astimezone(zone), day.end.astimezone(zone)
    return start.hour == 0 and start.minute == 0 and end.hour == 0 and end.minute == 0


def _axis_description(timeline: Timeline) -> str:
    changes = "; ".join(f"{change.label} at {_when(change.at, timeline.zone)}" for change in timeline.dst)
    return (f"Time axis in {timeline.zone.key}, {len(timeline.day_list)} day(s)"
            + (f"; clock changes: {changes}" if changes else ""))


def _group(timeline: Timeline, number: int, label: str, descriptions: tuple[str, ...], rows: list[Row]) -> str:
    axis = timeline.axis
    height = ROW_HEIGHT * len(rows)
    width = LABEL_WIDTH + axis.width
    back = [f'<rect class="{shade.kind}" x="{LABEL_WIDTH + shade.x0}" y="0" width="{round(shade.x1 - shade.x0, 2)}" '
            f'height="{height}"/>' for shade in timeline.shades]
    back += [f'<line class="day-line" x1="{LABEL_WIDTH + day.x0}" y1="0" x2="{LABEL_WIDTH + day.x0}" '
             f'y2="{height}"/>' for day in timeline.day_list]
    back += [f'<line class="dst" x1="{LABEL_WIDTH + c.x}" y1="0" x2="{LABEL_WIDTH + c.x}" y2="{height}"/>'
             for c in timeline.dst]
    if axis.start <= timeline.now <= axis.end:
        x = LABEL_WIDTH + axis.x(timeline.now)
        back.append(f'<line class="now" x1="{x}" y1="0" x2="{x}" y2="{height}"/>')
        if number == 0:
            back.append(f'<text x="{x + 3}" y="10" class="now-label">now</text>')
    body = "".join(_row(timeline, index, row) for index, row in enumerate(rows))
    rules = "; ".join(descriptions)
    return (f'<details class="group" open><summary>{_a(label)}<span class="rules">{_a(rules)}</span></summary>'
            f'<svg width="{width}" height="{height}" role="list" aria-label="{_a(label)}: {len(rows)} target(s)">'
            f'<g aria-hidden="true">{"".join(back)}</g>{body}</svg></details>\n')


def _row(timeline: Timeline, index: int, row: Row) -> str:
    y = index * ROW_HEIGHT
    label = row.label if len(row.label) <= LABEL_CHARS else row.label[:LABEL_CHARS - 1] + "…"
    kind = {"vmss": "scale set", "pool": "Batch pool", "tag": "tag selector"}.get(row.kind, row.kind)
    if row.from_history:
        kind += ", matched by tag (from the history)"
    parts = [f'<line class="row-line" x1="0" y1="{y + ROW_HEIGHT}" x2="{LABEL_WIDTH + timeline.axis.width}" '
             f'y2="{y + ROW_HEIGHT}"/>',
             f'<text x="8" y="{y + 18}" class="target{" history" if row.from_history else ""}">'
             f"<title>{_a(row.label)}</title>{_a(label)}</text>",
             _kind_line(timeline, row, kind, y)]
    for hold in row.holds:
        x0 = LABEL_WIDTH + hold.x0
        reason = f"held until {_when(hold.until, timeline.zone)}" + (f": {hold.reason}" if hold.reason else "")
        parts.append(f'<g class="hold-span"><title>{_a(reason)}</title><rect class="hold" x="{x0}" y="{y + 3}" '
                     f'width="{round(hold.x1 - hold.x0, 2)}" height="{ROW_HEIGHT - 6}"/></g>')
    end = timeline.axis.width + 24
    parts += [_mark(timeline, row, mark, y, room) for mark, room in zip(row.marks, _rooms(row.marks, end), strict=True)]
    parts += [_outcome(timeline, row, outcome, y, room)
              for outcome, room in zip(row.outcomes, _rooms(row.outcomes, end), strict=True)]
    summary = (f"{row.label}: {len(row.marks)} planned action(s), {len(row.outcomes)} recorded outcome(s)"
               + (f", held until {_when(row.holds[0].until, timeline.zone)}" if row.holds else ""))
    return f'<g role="listitem" aria-label="{_a(summary)}">{"".join(parts)}</g>'


def _kind_line(timeline: Timeline, row: Row, kind: str, y: int) -> str:
    """The second line of a row's label: what the target is, or, while a hold is on, the hold and why."""
    if not row.holds:
        return f'<text x="8" y="{y + 34}" class="kind">{_a(kind)}</text>'
    hold = row.holds[0]
    text = f"held until {_when(hold.until, timeline.zone)}" + (f": {hold.reason}" if hold.reason else "")
    short = text if len(text) <= LABEL_CHARS + 4 else text[:LABEL_CHARS + 3] + "…"
    return f'<text x="8" y="{y + 34}" class="hold-label"><title>{_a(text)}</title>{_a(short)}</text>'


def describe_mark(mark: Mark, zone: ZoneInfo) -> str:
    local = datetime.fromisoformat(mark.local)
    own = "" if mark.time_zone == zone.key else f" ({local:%H:%M} {mark.time_zone})"
    held = ", held: will be skipped" if mark.held else ""
    return f"{mark.effect} at {_when(mark.at, zone)}{own}, rule {mark.rule}{held}"


def describe_outcome(outcome: Outcome, zone: ZoneInfo) -> str:
    why = f" ({outcome.reason})" if outcome.reason else ""
    detail = f": {outcome.detail}" if outcome.detail else ""
    tries = f", {outcome.records} records" if outcome.records > 1 else ""
    return (f"{outcome.result}{why} {outcome.action} firing of {_when(outcome.firing, zone)}, rule {outcome.rule}, "
            f"recorded {outcome.recorded}{tries}{detail}")


def _rooms(items: list[Mark] | list[Outcome], end: float) -> list[float]:
    """Pixels free for each item's label: up to the next item in its lane (items are in time order)."""
    xs = [item.x for item in items]
    return [following - x - 12 for x, following in zip(xs, [*xs[1:], end], strict=False)]


def fit(text: str, room: float, *, cut: bool) -> str:
    """`text` if it fits in `room` pixels; else cut with an ellipsis (`cut`) or nothing. The tooltip and the
    table always carry the whole text."""
    if len(text) * CHAR_PX <= room:
        return text
    keep = int(room // CHAR_PX) - 1
    return text[:keep] + "…" if cut and keep >= 3 else ""


def _label(text: str, x: float, y: float) -> str:
    return f'<text x="{x}" y="{y}">{_a(text)}</text>' if text else ""


def _mark(timeline: Timeline, row: Row, mark: Mark, y: int, room: float) -> str:
    cx, cy = LABEL_WIDTH + mark.x, y + PLAN_Y
    text = f"{mark.at.astimezone(timeline.zone):%H:%M}"
    if mark.action == "resize":
        counts = f"{text} {mark.dedicated}+{mark.spot}"
        text = counts if len(counts) * CHAR_PX <= room else f"{mark.dedicated}+{mark.spot}"
    description = f"{row.label}: {describe_mark(mark, timeline.zone)}"
    classes = f"mark {mark.action}" + (" held" if mark.held else "")
    return (f'<g class="{classes}" tabindex="0" role="img"><title>{_a(description)}</title>'
            f'{_mark_shape(mark.action, cx, cy)}{_label(fit(text, room, cut=False), cx + 8, cy + 4)}</g>')


def _outcome(timeline: Timeline, row: Row, outcome: Outcome, y: int, room: float) -> str:
    cx, cy = LABEL_WIDTH + outcome.x, y + OUTCOME_Y
    text = outcome.reason if outcome.result in ("failed", "skipped") and outcome.reason else outcome.result
    description = f"{row.label}: {describe_outcome(outcome, timeline.zone)}"
    return (f'<g class="outcome {_a(outcome.result)}" tabindex="0" role="img"><title>{_a(description)}</title>'
            f'{_outcome_shape(outcome.result, cx, cy)}{_label(fit(text, room, cut=True), cx + 8, cy + 4)}</g>')


def _table(timeline: Timeline) -> str:
    """Every mark, outcome and hold as rows, one body per target headed by its name and rules."""
    zone = timeline.zone
    bodies, total = [], 0
    for group in timeline.groups:
        for row in group.rows:
            events = _events(row, zone)
            total += len(events)
            lines = "".join(f'<tr><td class="when">{_a(_when(at, zone))}</td><td class="when">{_a(_utc(at))}</td>'
                            f"<td>{_a(rule)}</td><td>{_a(action)}</td><td>{_a(result)}</td></tr>"
                            for at, rule, action, result in events)
            bodies.append(f'<tbody><tr><th scope="rowgroup" colspan="5">{_a(row.label)} '
                          f'<span class="muted">({_a(group.label)})</span></th></tr>{lines}</tbody>')
    return (f'<section id="table" tabindex="-1"><h2>Every action</h2><table><caption>{total} row(s): '
            f"planned actions, recorded outcomes and holds per target, times in "
            f"{_a(zone.key) + ' and UTC' if zone.key != 'UTC' else 'UTC'}</caption>"
            '<thead><tr><th scope="col">when</th><th scope="col">UTC</th><th scope="col">rule</th>'
            f'<th scope="col">action</th><th scope="col">outcome</th></tr></thead>{"".join(bodies)}</table></section>')


def _events(row: Row, zone: ZoneInfo) -> list[tuple[datetime, str, str, str]]:
    """(when, rule, action, outcome) per mark (with its recorded outcome), unplanned outcome and hold."""
    recorded = {(o.firing, o.rule): o for o in row.outcomes}
    events: list[tuple[datetime, str, str, str]] = []
    for mark in row.marks:
        outcome = recorded.pop((mark.at, mark.rule), None)
        result = (f"{RESULT_SYMBOL.get(outcome.result, '')} {describe_outcome(outcome, zone)}" if outcome
                  else "held: will be skipped" if mark.held else "")
        events.append((mark.at, mark.rule, f"{ACTION_SYMBOL.get(mark.action, '')} {mark.effect}", result))
    for outcome in recorded.values():
        events.append((outcome.firing, outcome.rule, f"{ACTION_SYMBOL.get(outcome.action, '')} {outcome.action}",
                       f"{RESULT_SYMBOL.get(outcome.result, '')} {describe_outcome(outcome, zone)}"))
    for hold in row.holds:
        events.append((hold.start, hold.source, "hold",
                       f"held until {_when(hold.until, zone)}" + (f": {hold.reason}" if hold.reason else "")))
    return sorted(events, key=lambda event: event[0])


def _utc(instant: datetime) -> str:
    return f"{instant.astimezone(ZoneInfo('UTC')):%Y-%m-%d %H:%M}Z"
