"""The `plan` section for the schedule document: the next day of firings, offline."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from batchk8s.plan import SECTIONS
from batchk8s.plan.schedules import schedules_section
from batchk8s.settings import load_settings

NOW = datetime(2025, 3, 29, 12, 0, tzinfo=UTC)  # the day before Europe springs forward
DOCUMENT = [{"name": "night", "schedule": "0 30 2 * * *", "timeZone": "Europe/Berlin", "action": "deallocate",
             "targets": [{"resourceGroup": "rg", "name": "vmss-a"}]},
            {"name": "pool", "schedule": "0 0 20 * * *", "action": "resize", "dedicated": 0,
             "targets": [{"pool": "k8s-pool"}]}]


def test_inline_document_shows_the_next_day_of_firings_in_both_clocks():
    section = schedules_section(load_settings({"BATCHK8S_SCHEDULES": json.dumps(DOCUMENT)}), now=NOW)
    vmss, pool = section.data["targets"]
    # 02:30 does not exist on 30 March in Berlin: it fires at 03:30 CEST, 01:30 UTC.
    assert [(f["utc"], f["local"]) for f in vmss["firings"]] == [
        ("2025-03-30T01:30:00+00:00", "2025-03-30T03:30:00+02:00")]
    assert [f["utc"] for f in pool["firings"]] == ["2025-03-29T20:00:00+00:00"]
    assert "  2025-03-29T20:00:00+00:00  2025-03-29T20:00:00+00:00 (UTC)  resize 0 dedicated + 0 spot  [pool]" \
        in section.lines


def test_the_section_is_in_the_plan_and_says_when_there_is_nothing_to_show():
    assert schedules_section in SECTIONS
    assert "is not set" in schedules_section(load_settings({}), now=NOW).lines[0]
    blob = schedules_section(load_settings({"BATCHK8S_SCHEDULES_BLOB": "config/schedules.json"}), now=NOW)
    assert "schedules plan" in blob.lines[0] and blob.data == {"source": "blob config/schedules.json"}


def test_an_invalid_document_lists_its_problems_instead_of_firings():
    section = schedules_section(load_settings({"BATCHK8S_SCHEDULES": json.dumps([{**DOCUMENT[0],
                                                                                  "timeZone": "CET/Nowhere"}])}),
                                now=NOW)
    assert section.lines == ["PROBLEM $[0].timeZone: 'CET/Nowhere' is not an IANA time zone name "
                             "(e.g. Europe/Berlin, America/New_York)"]


def test_active_holds_are_listed_like_targets_and_ended_ones_are_not():
    document = {"rules": DOCUMENT, "holds": [
        {"resourceGroup": "rg", "name": "vmss-a", "until": "2025-03-30T08:00:00+02:00", "reason": "month-end run"},
        {"pool": "k8s-pool", "until": "2025-03-29T11:00:00Z"}]}
    section = schedules_section(load_settings({"BATCHK8S_SCHEDULES": json.dumps(document)}), now=NOW)
    assert section.lines[-1] == "scale set rg/vmss-a held until 2025-03-30T06:00:00+00:00 (month-end run)"
    assert [hold["label"] for hold in section.data["holds"]] == ["scale set rg/vmss-a"]
