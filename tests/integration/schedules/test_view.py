"""GET /api/schedules/view as the host indexes it, and `schedules plan --html`: parameters, headers, history."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from html import escape
from pathlib import Path

import azure.functions as func
import pytest

from batchk8s import clock
from batchk8s import settings as settings_module
from batchk8s.cli import main
from batchk8s.schedules.history import HistoryLog
from batchk8s.schedules.timeline_html import CONTENT_SECURITY_POLICY, PAGE_POLICY
from batchk8s.settings import current_settings
from tests.app_index import indexed_functions

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "schedules.json"
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)  # Wednesday noon: Monday and Tuesday are past
MONDAY = "2026-11-30T00:00:00Z"


def view(**params: str) -> func.HttpResponse:
    function = indexed_functions()["schedules_view"]
    request = func.HttpRequest("GET", "http://localhost:7071/api/schedules/view", params=params, body=b"",
                               headers={})
    return function.get_user_function()(request)


@pytest.fixture
def fixed_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "now", lambda: NOW)


@pytest.fixture
def bare_env(monkeypatch: pytest.MonkeyPatch, fixed_now: None) -> Iterator[Callable[..., None]]:
    """No Azure at all: only what a test sets (the page needs no account to plan)."""

    def apply(**values: str) -> None:
        for name in ("BATCHK8S_SCHEDULES", "BATCHK8S_SCHEDULES_BLOB", "AzureWebJobsStorage",
                     "AZURE_STORAGE_ACCOUNT_NAME"):
            monkeypatch.delenv(name, raising=False)
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        settings_module.clear_cache()

    yield apply


def marks(page: str, kind: str = "mark") -> int:
    return page.count(f'<g class="{kind} ')


@pytest.mark.parametrize(("params", "field"), [
    ({"days": "0"}, "days"), ({"days": "32"}, "days"), ({"days": "week"}, "days"), ({"days": "1.5"}, "days"),
    ({"tz": "Mars/Olympus_Mons"}, "tz"), ({"tz": "../../etc/passwd"}, "tz"), ({"tz": "Europe/Berlin "}, None),
    ({"after": "yesterday"}, "after"), ({"after": "2026-13-01"}, "after"), ({"after": "2026-11-30"}, None),
    ({"after": "9999-12-31T00:00:00Z"}, "after"), ({"after": "0001-01-01"}, "after"),
])
def test_bad_parameters_are_a_400_naming_the_parameter(bare_env: Callable[..., None], params: dict[str, str],
                                                       field: str | None):
    bare_env(BATCHK8S_SCHEDULES=EXAMPLE.read_text())
    response = view(**params)
    if field is None:
        assert response.status_code == 200
        return
    body = json.loads(response.get_body())
    assert response.status_code == 400
    assert [detail["field"] for detail in body["error"]["details"]] == [field]
    assert body["error"]["code"] == "InvalidInput" and body["error"]["message"].startswith(f"{field}: ")


def test_no_document_configured_is_a_200_page_saying_so(bare_env: Callable[..., None]):
    bare_env()
    response = view()
    page = response.get_body().decode()
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert "No schedule document is configured" in page and 'href="docs/timeline.md"' in page
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


def test_the_example_week_from_monday_with_the_policy_headers(bare_env: Callable[..., None]):
    bare_env(BATCHK8S_SCHEDULES=EXAMPLE.read_text())
    response = view(after=MONDAY, tz="Europe/Berlin")
    page = response.get_body().decode()
    assert response.status_code == 200 and response.charset == "utf-8"
    headers = response.headers
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert (headers["X-Content-Type-Options"], headers["Referrer-Policy"]) == ("nosniff", "no-referrer")
    # Monday 00:00 to Monday 00:00 UTC: eu-open/eu-close/us-open/us-close 5 weekdays each, weekend-off once
    # (held until January), pool-night every evening, pool-day 5 weekdays.
    assert marks(page) == 5 * 4 + 1 + 7 + 5
    assert page.count('<g class="mark deallocate held"') == 1
    assert page.count('role="listitem"') == 4
    # The past part of the window wants the history, which needs storage: the page says so and plans anyway.
    assert "the history could not be read" in page


def test_a_history_slower_than_the_deadline_leaves_the_plan_and_a_note(bare_env: Callable[..., None],
                                                                       monkeypatch: pytest.MonkeyPatch):
    from batchk8s.schedules import service

    release = threading.Event()
    monkeypatch.setattr(service, "history", lambda *args, **kwargs: release.wait(10) and {"entries": []})
    monkeypatch.setattr(service, "HISTORY_DEADLINE", 0.2)
    bare_env(BATCHK8S_SCHEDULES=EXAMPLE.read_text())
    started = time.monotonic()
    page = view(after=MONDAY).get_body().decode()
    release.set()
    assert time.monotonic() - started < 5
    assert "the history could not be read, so only the plan is shown: the history did not answer within 0.2 s" in page
    assert marks(page) == 33


@pytest.mark.azurite
def test_the_past_part_shows_what_the_history_recorded(azurite: str, bare_env: Callable[..., None]):
    bare_env(BATCHK8S_SCHEDULES=EXAMPLE.read_text(), AzureWebJobsStorage=azurite,
             BATCHK8S_STATE_CONTAINER="state-view")
    history = HistoryLog(current_settings(), lambda _: None)
    us = {"kind": "vmss", "resourceGroup": "rg-us", "name": "vmss-us"}
    tagged = {"kind": "vmss", "resourceGroup": "rg-eu", "name": "vmss-eu-1"}
    history.append("vmss/rg-us/vmss-us", us, [
        {"at": "2026-11-30T13:00:03+00:00", "firing": "2026-11-30T13:00:00+00:00", "rule": "us-open",
         "action": "start", "result": "failed", "reason": "OperationNotAllowed", "detail": "quota <exceeded>"}],
                   datetime(2026, 11, 30, 13, tzinfo=UTC))
    history.append("vmss/rg-us/vmss-us", us, [
        {"at": "2026-12-01T13:00:02+00:00", "firing": "2026-12-01T13:00:00+00:00", "rule": "us-open",
         "action": "start", "result": "applied"}], datetime(2026, 12, 1, 13, tzinfo=UTC))
    history.append("vmss/rg-eu/vmss-eu-1", tagged, [
        {"at": "2026-11-30T07:00:01+00:00", "firing": "2026-11-30T07:00:00+00:00", "rule": "eu-open",
         "action": "start", "result": "applied"}], datetime(2026, 11, 30, 7, tzinfo=UTC))
    history.append("vmss/rg-us/vmss-us", us, [
        {"at": "2026-10-30T12:00:03+00:00", "firing": "2026-10-30T12:00:00+00:00", "rule": "us-open",
         "action": "start", "result": "applied"}], datetime(2026, 10, 30, 12, tzinfo=UTC))
    # The reader skips the months before the window's: October's blob is never read.
    from batchk8s.schedules.service import history as read_history

    since = read_history(current_settings(), 1000, since=datetime(2026, 11, 30, tzinfo=UTC))
    assert since["requests"] == {"list": 1, "read": 3}  # vmss-us: December and November; vmss-eu-1: November
    assert sorted(e["firing"][:10] for e in since["entries"]) == ["2026-11-30", "2026-11-30", "2026-12-01"]
    assert len(read_history(current_settings(), 1000)["entries"]) == 4
    page = view(after=MONDAY).get_body().decode()
    assert "the history could not be read" not in page
    assert marks(page, "outcome") == 3
    assert page.count('<g class="outcome failed"') == 1 and "OperationNotAllowed</text>" in page
    assert "quota &lt;exceeded&gt;" in page
    # The scale set the tag selector matched has a row of its own, next to the selector's.
    assert page.count('role="listitem"') == 5 and "scale set rg-eu/vmss-eu-1" in page


def test_cli_writes_the_page_and_refuses_bad_options(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     bare_env: Callable[..., None]):
    bare_env()
    out = tmp_path / "week.html"
    code = main(["schedules", "plan", "--file", str(EXAMPLE), "--html", str(out), "--after", MONDAY, "--tz",
                 "America/New_York", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["file"] == str(out) and result["marks"] == 33 and result["rows"] == 4
    page = out.read_text()
    assert marks(page) == 33 and "(America/New_York)</title>" in page
    assert f'http-equiv="Content-Security-Policy" content="{escape(PAGE_POLICY)}"' in page

    assert main(["schedules", "plan", "--file", str(EXAMPLE), "--html", str(out), "--tz", "Nowhere/City"]) == 2
    assert "tz: 'Nowhere/City' is not an IANA time zone name" in capsys.readouterr().err
    assert main(["schedules", "plan", "--html", str(out), "--days", "32"]) == 2
    assert "--days: must be a whole number from 1 to 31" in capsys.readouterr().err
    assert main(["schedules", "plan", "--html", str(tmp_path / "missing" / "x.html"), "--file", str(EXAMPLE)]) == 2
    assert "--html: cannot write" in capsys.readouterr().err
    # Nothing configured and no --file: the page that says so, not an error.
    assert main(["schedules", "plan", "--html", str(out)]) == 0
    assert "no schedule document is configured" in capsys.readouterr().out
