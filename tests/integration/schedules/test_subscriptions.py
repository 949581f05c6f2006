"""Schedule document targets in several subscriptions: names with a subscription, tag selectors spanning
the subscriptions they list, one listing per subscription in scope."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from batchk8s.schedules.document import DocumentError, parse_document
from batchk8s.schedules.reconcile import reconcile
from batchk8s.settings import Settings
from tests.fakes.arm import FakeARM
from tests.integration.schedules.conftest import RG
from tests.integration.schedules.test_reconcile import MON_1900, history, results

pytestmark = pytest.mark.azurite
SUB2 = "22222222-2222-4222-8222-222222222222"
SUB3 = "33333333-3333-4333-8333-333333333333"


def test_names_and_tag_selection_across_subscriptions(arm: FakeARM, make_settings: Callable[..., Settings]):
    arm.add_scale_set(RG, "home", {"0": "running"}, tags={"shift": "day"})
    arm.add_scale_set("rg-b", "tagged-b", {"0": "running"}, tags={"Shift": "day"}, subscription=SUB2)
    arm.add_scale_set("rg-b", "untagged-b", {"0": "running"}, subscription=SUB2)
    arm.add_scale_set("rg-c", "tagged-c", {"c_0": "running"}, tags={"shift": "day"}, orchestration="Flexible",
                      subscription=SUB3)
    arm.add_scale_set("rg-c", "named-c", {"0": "running"}, subscription=SUB3)
    document = [{"name": "evening", "schedule": "0 0 19 * * *", "timeZone": "Europe/Berlin", "action": "deallocate",
                 "targets": [{"tag": "shift", "value": "day", "subscription": [arm.subscription, SUB2, SUB3]},
                             {"name": "named-c", "resourceGroup": "rg-c", "subscription": SUB3.upper()}]}]
    settings = make_settings(document)

    report = reconcile(settings, now=MON_1900)

    keys = {f"vmss/{arm.subscription}/rg-hpc/home", f"vmss/{SUB2}/rg-b/tagged-b", f"vmss/{SUB3}/rg-c/tagged-c",
            f"vmss/{SUB3}/rg-c/named-c"}
    assert results(report) == dict.fromkeys(keys, "applied")
    assert report.requests["armListings"] == 3  # one subscription-wide listing per subscription
    assert sorted((a[1], a[2]) for a in arm.actions) == [("rg-b", "tagged-b"), ("rg-c", "named-c"),
                                                          ("rg-c", "tagged-c"), ("rg-hpc", "home")]
    assert arm.states("rg-b", "untagged-b", subscription=SUB2) == {"0": "running"}
    [entry] = history(settings, f"vmss/{SUB2}/rg-b/tagged-b")
    assert entry["target"] == {"kind": "vmss", "resourceGroup": "rg-b", "name": "tagged-b", "subscription": SUB2}
    assert entry["reason"] == "completed"


def test_a_selector_without_subscriptions_stays_in_the_default_one(arm: FakeARM,
                                                                   make_settings: Callable[..., Settings]):
    arm.add_scale_set(RG, "home", {"0": "running"}, tags={"shift": "day"})
    arm.add_scale_set("rg-b", "elsewhere", {"0": "running"}, tags={"shift": "day"}, subscription=SUB2)
    settings = make_settings([{"schedule": "0 0 19 * * *", "timeZone": "Europe/Berlin", "action": "deallocate",
                               "targets": [{"tag": "shift", "value": "day"}]}])

    assert results(reconcile(settings, now=MON_1900)) == {"vmss/rg-hpc/home": "applied"}


def test_a_subscription_that_is_not_a_guid_names_its_path():
    document = {"rules": [{"schedule": "0 0 19 * * *", "action": "deallocate", "targets": [
        {"name": "a", "resourceGroup": "rg", "subscription": "prod"},
        {"name": "b", "resourceGroup": "rg", "subscription": [SUB2]},
        {"tag": "t", "value": "v", "subscription": [SUB2, "nope"]}]}]}

    with pytest.raises(DocumentError) as refused:
        parse_document(document, now=MON_1900)

    problems = {d["field"]: d["message"] for d in refused.value.details}
    assert problems == {
        "$.rules[0].targets[0].subscription": "must be a subscription id (GUID), not 'prod'",
        "$.rules[0].targets[1].subscription": "must be a subscription id (GUID), not a list",
        "$.rules[0].targets[2].subscription": "must be a subscription id (GUID) or a list of them, not 'nope'"}
