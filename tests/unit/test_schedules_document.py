"""The schedule document: every problem listed with its JSON path, conflicts found, valid shapes parsed."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from batchk8s.schedules.document import (
    DocumentError,
    PoolTarget,
    ScaleSetTarget,
    TagSelector,
    parse_cached,
    parse_document,
    parse_text,
)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
VMSS = {"resourceGroup": "rg", "name": "vmss-a"}


def rule(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {"schedule": "0 0 8 * * *", "action": "start", "targets": [VMSS]}
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


def problems(document: object, default_rg: str | None = None) -> dict[str, str]:
    with pytest.raises(DocumentError) as caught:
        parse_document(document, now=NOW, default_resource_group=default_rg)
    assert caught.value.status == 400
    return {p["field"]: p["message"] for p in caught.value.details}


# Each row: one rule (or document) with one mistake -> the path it is reported at and a word of the message.
TABLE = [
    (rule(schedule=None), "$.rules[0].schedule", "required"),
    (rule(schedule="0 0 25 * * *"), "$.rules[0].schedule", "hour"),
    (rule(schedule="0 0 8 * *  * *"), "$.rules[0].schedule", "expected 5 fields"),
    (rule(schedule="0 0 0 30 Feb *"), "$.rules[0].schedule", "never fires"),
    (rule(schedule=5), "$.rules[0].schedule", "NCRONTAB"),
    (rule(timeZone="Mars/Olympus"), "$.rules[0].timeZone", "IANA"),
    (rule(timeZone=""), "$.rules[0].timeZone", "IANA"),
    (rule(timeZone="../../etc/passwd"), "$.rules[0].timeZone", "IANA"),
    (rule(action="stop"), "$.rules[0].action", "start, deallocate, resize"),
    (rule(action=None), "$.rules[0].action", "must be one of"),
    (rule(targets=[]), "$.rules[0].targets", "non-empty"),
    (rule(targets=None), "$.rules[0].targets", "non-empty"),
    (rule(targets=["vmss-a"]), "$.rules[0].targets[0]", "must be an object"),
    (rule(targets=[{"resourceGroup": "rg"}]), "$.rules[0].targets[0]", "needs 'name'"),
    (rule(targets=[{"name": "bad name!", "resourceGroup": "rg"}]), "$.rules[0].targets[0].name", "scale set name"),
    (rule(targets=[{"name": "a"}]), "$.rules[0].targets[0].resourceGroup", "AZURE_RES_GROUP_NAME"),
    (rule(targets=[{"name": "a", "resourceGroup": "rg."}]), "$.rules[0].targets[0].resourceGroup", "resource group"),
    (rule(targets=[{"name": "a", "resourceGroup": "rg", "zone": "1"}]), "$.rules[0].targets[0].zone",
     "unknown field 'zone' (known: name, resourceGroup, subscription)"),
    (rule(targets=[{"name": "a", "resourceGroup": "rg", "subscription": "00000000-0000-0000-0000-000000000000x"}]),
     "$.rules[0].targets[0].subscription", "must be a subscription id (GUID), not '00000000-"),
    (rule(targets=[{"tag": "", "value": "x"}]), "$.rules[0].targets[0].tag", "tag name"),
    (rule(targets=[{"tag": "a/b", "value": "x"}]), "$.rules[0].targets[0].tag", "tag name"),
    (rule(targets=[{"tag": "team"}]), "$.rules[0].targets[0].value", "tag value"),
    (rule(targets=[{"pool": "k8s pool"}]), "$.rules[0].targets[0].pool", "pool id"),
    (rule(targets=[{"pool": "k8s-pool"}]), "$.rules[0].targets[0]", "use action 'resize'"),
    (rule(action="resize", dedicated=1), "$.rules[0].targets[0]", "targets Batch pools"),
    (rule(action="resize", targets=[{"pool": "p"}]), "$.rules[0].dedicated", "required for resize"),
    (rule(action="resize", dedicated=-1, targets=[{"pool": "p"}]), "$.rules[0].dedicated", "0 to 1000"),
    (rule(action="resize", dedicated=True, targets=[{"pool": "p"}]), "$.rules[0].dedicated", "whole number"),
    (rule(action="resize", dedicated=1, spot=1001, targets=[{"pool": "p"}]), "$.rules[0].spot", "0 to 1000"),
    (rule(dedicated=2), "$.rules[0].dedicated", "only 'resize'"),
    (rule(timezone="Europe/Berlin"), "$.rules[0].timezone", "did you mean 'timeZone'"),
    (rule(name=""), "$.rules[0].name", "non-empty"),
]


@pytest.mark.parametrize(("item", "path", "words"), TABLE, ids=[f"{row[1]}:{row[2]}" for row in TABLE])
def test_each_mistake_is_reported_at_its_path(item: dict[str, object], path: str, words: str):
    found = problems({"rules": [item]})
    assert path in found, found
    assert words in found[path]


def test_every_problem_of_a_document_is_listed_at_once():
    document = {
        "rules": [
            rule(schedule="0 0 8 * * Moon", timeZone="Nowhere/City", action="stop", targets=[]),
            rule(name="dup"),
            rule(name="DUP", schedule="0 0 9 * * *"),
            "not a rule",
        ],
        "holds": [{"name": "a", "resourceGroup": "rg", "until": "tomorrow"}, {"pool": "p"}],
        "extra": True,
    }
    found = problems(document)
    assert set(found) == {
        "$.extra", "$.rules[0].schedule", "$.rules[0].timeZone", "$.rules[0].action", "$.rules[0].targets",
        "$.rules[2].name", "$.rules[3]", "$.holds[0].until", "$.holds[1].until",
    }
    assert "day-of-week" in found["$.rules[0].schedule"]
    assert "also the name of $.rules[1]" in found["$.rules[2].name"]
    assert found["$.holds[0].until"].startswith("'tomorrow' is not an ISO 8601 time")
    assert found["$.holds[1].until"].startswith("is required: an ISO 8601 time")


def test_a_duplicate_name_is_reported_even_when_that_rule_has_other_errors():
    found = problems({"rules": [rule(name="nightly"), rule(name="Nightly", action="stop")]})

    assert set(found) == {"$.rules[1].name", "$.rules[1].action"}
    assert found["$.rules[1].name"] == "'Nightly' is also the name of $.rules[0]; names must be unique"


def test_an_until_that_is_not_a_string_says_so():
    found = problems({"rules": [rule()], "holds": [{"pool": "p", "until": 1735689600}]})

    assert found["$.holds[0].until"].startswith("must be a string, an ISO 8601 time")
    assert found["$.holds[0].until"].endswith("not int 1735689600")


def test_top_level_shapes():
    assert "list of rules" in problems("rules")["$"]
    assert "required" in problems({"holds": []})["$.rules"]
    assert "list of holds" in problems({"rules": [], "holds": {}})["$.holds"]
    bare = parse_document([rule()], now=NOW)
    assert bare.rules[0].path == "$[0]" and bare.rules[0].name == "rules[0]"
    assert "$[0].action" in problems([rule(action="go")])


def test_malformed_json_text_is_one_problem_with_its_position():
    with pytest.raises(DocumentError) as caught:
        parse_text('{"rules": [', now=NOW)
    assert caught.value.details[0]["field"] == "$"
    assert "line 1" in caught.value.details[0]["message"]


def test_a_valid_document_parses_into_typed_rules_targets_and_holds():
    document = parse_document({
        "rules": [
            rule(name="office", timeZone="Europe/Berlin",
                 targets=[{"name": "vmss-a"}, {"tag": "schedule", "value": "office-hours"}, {"name": "vmss-a"}]),
            rule(name="pool-night", schedule="0 0 20 * * *", action="resize", dedicated=0, targets=[{"pool": "k8s"}]),
        ],
        "holds": [{"pool": "k8s", "until": "2025-03-02T18:00:00+01:00", "reason": "demo"},
                  {"tag": "hold", "value": "yes", "until": "2025-03-02T00:00:00"}],
    }, now=NOW, default_resource_group="rg-default")
    office, night = document.rules
    assert office.zone.key == "Europe/Berlin" and office.effect.action == "start"
    assert office.targets == (ScaleSetTarget("rg-default", "vmss-a"), TagSelector("schedule", "office-hours"))
    assert night.effect.dedicated == 0 and night.effect.spot == 0
    assert night.targets == (PoolTarget("k8s"),)
    assert document.holds[0].until == datetime(2025, 3, 2, 17, 0, tzinfo=UTC)
    assert document.holds[1].until == datetime(2025, 3, 2, 0, 0, tzinfo=UTC)  # no offset: UTC
    assert [t.key for t in document.explicit_targets] == ["vmss/rg-default/vmss-a", "pool/k8s"]
    assert document.summary() == {"source": "document", "rules": 2, "explicitTargets": 2, "tagSelectors": 1,
                                  "holds": 2}


def test_tag_selector_matching_is_case_insensitive_on_names_only():
    selector = TagSelector("Schedule", "office-hours", "RG")
    assert selector.matches("rg", {"schedule": "office-hours"})
    assert not selector.matches("rg", {"schedule": "Office-Hours"})
    assert not selector.matches("other", {"schedule": "office-hours"})


# --- conflicts ---------------------------------------------------------------------------------


def test_same_zone_rules_firing_together_with_different_actions_conflict():
    found = problems({"rules": [rule(schedule="0 0 8 * * Mon-Fri"), rule(schedule="0 0 8 * * Fri,Sat",
                                                                          action="deallocate")]})
    message = found["$.rules[1]"]
    assert "$.rules[0]" in message and "scale set rg/vmss-a" in message and "deallocate vs start" in message
    assert "2025-03-07T08:00:00+00:00" in message  # the first Friday after NOW


def test_rules_that_never_coincide_or_agree_do_not_conflict():
    parse_document({"rules": [rule(schedule="0 0 8 * * Mon-Fri"), rule(schedule="0 0 8 * * Sat,Sun",
                                                                        action="deallocate")]}, now=NOW)
    parse_document({"rules": [rule(), rule(name="same-action-twice")]}, now=NOW)
    parse_document({"rules": [rule(), rule(action="deallocate", targets=[{"resourceGroup": "rg", "name": "b"}])]},
                   now=NOW)
    # 31 February does not exist: the intersection of "31st" and "February" never fires.
    parse_document({"rules": [rule(schedule="0 0 8 31 * *"), rule(schedule="0 0 8 * Feb *", action="deallocate")]},
                   now=NOW)


def test_rules_in_different_zones_conflict_when_their_instants_meet():
    # 09:00 London is 08:00 UTC in summer only: the conflict is found in the year scanned ahead.
    found = problems({"rules": [rule(schedule="0 0 8 * * *"),
                                rule(schedule="0 0 9 * * *", timeZone="Europe/London", action="deallocate")]})
    assert "2025-03-30T08:00:00+00:00" in found["$.rules[1]"]
    # Kolkata is UTC+05:30: 13:30 there is always 08:00 UTC, 13:00 never is.
    assert "$.rules[1]" in problems({"rules": [rule(), rule(schedule="0 30 13 * * *", timeZone="Asia/Kolkata",
                                                           action="deallocate")]})
    parse_document({"rules": [rule(), rule(schedule="0 0 13 * * *", timeZone="Asia/Kolkata", action="deallocate")]},
                   now=NOW)


def test_a_firing_moved_by_spring_forward_onto_another_rules_firing_is_a_conflict():
    # 02:30 does not exist in Berlin on 30 March 2025: it fires at 03:30 CEST, with the 03:30 rule.
    found = problems({"rules": [rule(schedule="0 30 2 * * *", timeZone="Europe/Berlin"),
                                rule(schedule="0 30 3 * * *", timeZone="Europe/Berlin", action="deallocate")]})
    assert "2025-03-30T01:30:00+00:00" in found["$.rules[1]"]
    # 03:00 stays 03:00; and a zone without daylight saving time never moves a firing.
    parse_document({"rules": [rule(schedule="0 30 2 * * *", timeZone="Europe/Berlin"),
                              rule(schedule="0 0 3 * * *", timeZone="Europe/Berlin", action="deallocate")]}, now=NOW)
    parse_document({"rules": [rule(schedule="0 30 2 * * *", timeZone="Asia/Kolkata"),
                              rule(schedule="0 30 3 * * *", timeZone="Asia/Kolkata", action="deallocate")]}, now=NOW)


def test_identical_tag_selectors_and_resize_counts_are_compared_too():
    selector = [{"tag": "schedule", "value": "nightly"}]
    assert "$.rules[1]" in problems({"rules": [rule(targets=selector),
                                               rule(action="deallocate", targets=selector)]})
    pool = [{"pool": "k8s"}]
    found = problems({"rules": [rule(action="resize", dedicated=0, targets=pool),
                                rule(action="resize", dedicated=2, spot=1, targets=pool)]})
    assert "resize to 2 dedicated + 1 spot vs resize to 0 dedicated + 0 spot" in found["$.rules[1]"]


def test_parse_cached_reuses_a_valid_parse_and_never_caches_a_failure():
    text = json.dumps({"rules": [rule()]})
    first = parse_cached(text, now=NOW)
    assert parse_cached(text, now=NOW.replace(hour=23)) is first
    assert parse_cached(text, now=NOW.replace(day=2)) is not first  # re-checked once a UTC day
    bad = json.dumps({"rules": [rule(action="stop")]})
    for _ in range(2):
        with pytest.raises(DocumentError):
            parse_cached(bad, now=NOW)
