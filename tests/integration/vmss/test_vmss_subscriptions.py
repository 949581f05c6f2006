"""Scale sets in several subscriptions: full resource ids in the doors, one client per subscription."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from batchk8s import vmss
from batchk8s.cli import main
from batchk8s.errors import InputError
from batchk8s.settings import Settings, load_settings
from tests.fakes.aad import FakeAAD
from tests.fakes.arm import FakeARM, arm_env
from tests.integration.vmss.conftest import RG
from tests.integration.vmss.test_vmss_functions import post_action

SUB2 = "22222222-2222-4222-8222-222222222222"
SUB3 = "33333333-3333-4333-8333-333333333333"
ID = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachineScaleSets/{name}"


def set_id(sub: str, name: str, rg: str = "rg-other") -> str:
    return ID.format(sub=sub, rg=rg, name=name)


@pytest.fixture
def fleet(arm: FakeARM) -> FakeARM:
    arm.add_scale_set(RG, "home", {"0": "deallocated"})
    arm.add_scale_set("rg-other", "uni", {"0": "deallocated", "1": "running"}, subscription=SUB2)
    arm.add_scale_set("rg-other", "flex", {"flex_0": "deallocated"}, orchestration="Flexible", subscription=SUB3)
    return arm


def test_names_and_resource_ids_in_three_subscriptions_cost_what_one_does(fleet: FakeARM,
                                                                           make_settings: Callable[..., Settings]):
    settings = make_settings("home")
    targets = vmss.configured_targets(settings, ["home", set_id(SUB2, "uni"), set_id(SUB3.upper(), "flex")])

    reports = vmss.apply_action(settings, "start", targets)

    assert [(r.ref.subscription, r.outcome) for r in reports] == [(None, "accepted"), (SUB2, "accepted"),
                                                                  (SUB3, "accepted")]
    assert reports[1].to_dict()["subscription"] == SUB2 and "subscription" not in reports[0].to_dict()
    assert fleet.states("rg-other", "uni", subscription=SUB2) == {"0": "starting", "1": "running"}
    for sub in (fleet.subscription, SUB2, SUB3):  # per scale set: GET, one listing, the start(s)
        assert fleet.count("GET", rf"/subscriptions/{sub}/.*/virtualMachineScaleSets/[^/]+$") == 1
    assert fleet.count("POST") == 3
    assert fleet.count() == 9  # as for three scale sets in one subscription
    assert vmss.summary_line(reports[1]) == (f"start rg-other/uni (subscription {SUB2}): accepted; 1 skipped, "
                                             "1 started; operation InProgress")


def test_resource_ids_need_no_default_subscription_or_group(fleet: FakeARM, aad: FakeAAD):
    env = arm_env(aad, fleet, AZURE_VMSS_NAME=f"{set_id(SUB2, 'uni')},{set_id(SUB2, 'UNI')}")
    del env["AZURE_SUBSCRIPTION_ID"]
    settings = load_settings(env)

    [report] = vmss.power_states(settings, vmss.configured_targets(settings))  # the same set twice: once

    assert report.outcome == "reported" and report.ref == vmss.ScaleSetRef("rg-other", "uni", SUB2)


def test_a_subscription_arm_does_not_know_fails_that_set_only(fleet: FakeARM, make_settings: Callable[..., Settings]):
    unknown = "44444444-4444-4444-8444-444444444444"
    settings = make_settings("home")
    reports = vmss.power_states(settings, vmss.configured_targets(settings, ["home", set_id(unknown, "x")]))

    assert [r.outcome for r in reports] == ["reported", "not-found"]
    assert reports[1].error is not None and reports[1].error["code"] == "SubscriptionNotFound"


@pytest.mark.parametrize(("name", "words"), [
    ("/subscriptions/not-a-guid/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/a",
     "is not a GUID"),
    # matched as a whole: a GUID followed by more text, or a group ending in '.', is refused
    (f"/subscriptions/{SUB2}0/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/a",
     "is not a GUID"),
    (f"/subscriptions/{SUB2}/resourceGroups/rg./providers/Microsoft.Compute/virtualMachineScaleSets/a",
     "does not name a valid resource group"),
    (f"/subscriptions/{SUB2}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/a",
     "is not a scale set resource id"),
])
def test_bad_resource_ids_are_input_errors_naming_names(make_settings: Callable[..., Settings], name: str, words: str):
    with pytest.raises(InputError) as refused:
        vmss.configured_targets(make_settings(), [name])
    assert refused.value.details[0]["field"] == "names" and words in refused.value.message

    problems = {p.setting: p.message for p in load_settings({"AZURE_VMSS_NAME": f"ok,{name}"}).problems}
    assert words in problems["AZURE_VMSS_NAME"]


def test_http_and_cli_doors_take_resource_ids(fleet: FakeARM, app_env: Callable[..., None],
                                              capsys: pytest.CaptureFixture[str]):
    app_env("home")
    status, body, _ = post_action("start", {"names": [set_id(SUB2, "uni")], "dryRun": True})
    assert status == 200 and body["targets"][0]["subscription"] == SUB2
    assert body["targets"][0]["outcome"] == "dry-run"

    status, body, response = post_action("start", {"names": ["home", set_id(SUB2, "uni")]})
    assert status == 202 and response.headers["Location"].endswith(f"/api/vmss?name=home,{set_id(SUB2, 'uni')}")

    bad, error, _ = post_action("start", {"names": ["/subscriptions/x/resourceGroups/r"]})
    assert bad == 400 and error["error"]["details"][0]["field"] == "names"

    assert main(["vmss", "status", "--json", "--name", set_id(SUB3, "flex")]) == 0
    [scale_set] = json.loads(capsys.readouterr().out)["scaleSets"]
    assert (scale_set["subscription"], scale_set["orchestrationMode"]) == (SUB3, "Flexible")
