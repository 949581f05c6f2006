"""Debian's Chromium driven by Playwright, a loopback server for pages, and a 200-target fleet document.

The browser is the system package (/usr/bin/chromium, installed by `make test`); Playwright never
downloads one. The server answers on 127.0.0.1 with whatever status, headers and body a test gives a
path, so a page arrives in the browser exactly as the route produced it (Content-Security-Policy
included). The bench uses the same pieces, so its figures and the tests measure the same thing.
"""

from __future__ import annotations

import json
import shutil
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1500, "height": 900}


def chromium_path() -> Path | None:
    return CHROMIUM if CHROMIUM.exists() else (Path(found) if (found := shutil.which("chromium")) else None)


@contextmanager
def browser(user_data_dir: Path) -> Iterator[Any]:
    """A headless Chromium context with a fresh profile in `user_data_dir`."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    if executable is None:
        raise FileNotFoundError(f"{CHROMIUM} is missing: run `make test` (it installs Debian's chromium)")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(user_data_dir), executable_path=str(executable), headless=True, args=FLAGS, viewport=VIEWPORT)
        try:
            yield context
        finally:
            context.close()


class PageServer:
    """Serves fixed responses on 127.0.0.1: `pages[path] = (status, headers, body)`."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.requests: list[str] = []
        pages, requests = self.pages, self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                requests.append(self.path)
                status, headers, body = pages.get(self.path.split("?")[0], (404, {}, b"not found"))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> PageServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    return struct.unpack(">II", data[16:24])


# --- a fleet of 200 targets --------------------------------------------------------------------

FLEET_ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata")
FLEET_GROUPS = 20
FLEET_MONDAY = datetime(2026, 11, 30, tzinfo=UTC)
FLEET_NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)  # Wednesday noon UTC
HOSTILE_REASON = "<script>document.title='pwned'</script> maintenance"


def fleet_document(targets: int = 200) -> dict[str, Any]:
    """`targets` scale sets in FLEET_GROUPS groups, each group in one of four zones with an opening rule
    (08:00 Mon-Fri) and a closing rule (18:00 daily): in any UTC Monday-to-Monday week every target has
    exactly 5 + 7 firings (18:00 New York is 23:00 UTC, 08:00 Kolkata 02:30 UTC). Target 0 is held."""
    rules = []
    for group in range(FLEET_GROUPS):
        members = [{"resourceGroup": f"rg-{group:02d}", "name": f"vmss-{n:03d}"}
                   for n in range(targets) if n % FLEET_GROUPS == group]
        if not members:
            continue
        zone = FLEET_ZONES[group % len(FLEET_ZONES)]
        rules += [{"name": f"open-{group:02d}", "schedule": "0 0 8 * * Mon-Fri", "timeZone": zone,
                   "action": "start", "targets": members},
                  {"name": f"close-{group:02d}", "schedule": "0 0 18 * * *", "timeZone": zone,
                   "action": "deallocate", "targets": members}]
    holds = [{"resourceGroup": "rg-00", "name": "vmss-000", "until": "2026-12-03T18:00:00Z",
              "reason": HOSTILE_REASON}]
    return {"rules": rules, "holds": holds}


FLEET_MARKS_PER_TARGET = 5 + 7


def fleet_history(document: dict[str, Any], now: datetime = FLEET_NOW) -> list[dict[str, Any]]:
    """What a reconciler would have recorded from FLEET_MONDAY to `now`: every firing once, applied,
    skipped or failed in turn (a failed one with its error code)."""
    results = [("applied", None), ("applied", None), ("skipped", "hold"), ("failed", "AllocationFailed")]
    entries = []
    for rule in document["rules"]:
        zone = ZoneInfo(rule["timeZone"])
        hour = 8 if rule["action"] == "start" else 18
        weekdays = range(5) if rule["action"] == "start" else range(7)
        for offset in range(-1, 8):
            local = (FLEET_MONDAY + timedelta(days=offset)).astimezone(zone).replace(hour=hour, minute=0)
            firing = local.astimezone(UTC)
            if local.weekday() not in weekdays or not FLEET_MONDAY <= firing <= now:
                continue
            for target in rule["targets"]:
                number = int(target["name"].split("-")[1])
                result, reason = results[(number + offset) % len(results)]
                entry = {"key": f"vmss/{target['resourceGroup']}/{target['name']}",
                         "target": {"kind": "vmss", **target}, "at": (firing + timedelta(seconds=3)).isoformat(),
                         "firing": firing.isoformat(), "local": local.isoformat(), "rule": rule["name"],
                         "action": rule["action"], "result": result}
                if reason:
                    entry["reason"] = reason
                entries.append(entry)
    return entries


def fleet_text(targets: int = 200) -> str:
    return json.dumps(fleet_document(targets))
