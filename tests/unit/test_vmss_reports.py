"""Scale set targets, report shapes and request bodies: the parts that need no ARM."""

from __future__ import annotations

import pytest

from batchk8s import vmss
from batchk8s.errors import ConfigError, InputError
from batchk8s.functions.vmss import parse_action_body
from batchk8s.settings import load_settings

SUB = "5ca1ab1e-0000-4000-8000-00000000c0de"


def settings(**env: str):
    return load_settings({"AZURE_SUBSCRIPTION_ID": SUB, "AZURE_RES_GROUP_NAME": "rg", **env})


def test_configured_targets_default_to_the_setting_and_dedupe_case_insensitively():
    targets = vmss.configured_targets(settings(AZURE_VMSS_NAME="vmss-a, VMSS-A ,vmss-b"))
    assert targets == [vmss.ScaleSetRef("rg", "vmss-a"), vmss.ScaleSetRef("rg", "vmss-b")]


def test_configured_targets_by_name_need_no_vmss_setting():
    assert vmss.configured_targets(settings(), ["x1"]) == [vmss.ScaleSetRef("rg", "x1")]


@pytest.mark.parametrize("names", [[], ["ok", "not ok"], ["-leading"], ["a" * 65], ["n"] * 101, [7]])
def test_configured_targets_reject_bad_names_naming_names(names: list):
    with pytest.raises(InputError) as caught:
        vmss.configured_targets(settings(), names)
    assert caught.value.details[0]["field"] == "names"


def test_configured_targets_without_configuration_list_every_gap():
    with pytest.raises(ConfigError) as caught:
        vmss.configured_targets(load_settings({}))
    assert [d["field"] for d in caught.value.details] == [
        "AZURE_SUBSCRIPTION_ID", "AZURE_RES_GROUP_NAME", "AZURE_VMSS_NAME"]


def test_report_to_dict_is_camel_case_and_summary_is_one_line():
    report = vmss.TargetReport(
        vmss.ScaleSetRef("rg", "vmss-a"), "start", "failed",
        [vmss.InstanceReport("0", "deallocated", "failed"), vmss.InstanceReport("1", "running", "skipped")],
        warnings=[vmss.AKS_WARNING],
        error={"code": "OperationNotAllowed", "message": "scale set rg/vmss-a: OperationNotAllowed",
               "upstreamStatus": 409})

    assert report.to_dict() == {
        "resourceGroup": "rg", "name": "vmss-a", "action": "start", "outcome": "failed",
        "instances": [{"instanceId": "0", "powerState": "deallocated", "outcome": "failed"},
                      {"instanceId": "1", "powerState": "running", "outcome": "skipped"}],
        "warnings": [vmss.AKS_WARNING],
        "error": {"code": "OperationNotAllowed", "message": "scale set rg/vmss-a: OperationNotAllowed",
                  "upstreamStatus": 409}}
    line = vmss.summary_line(report)
    assert "\n" not in line
    assert line.startswith("start rg/vmss-a: failed; 1 failed, 1 skipped; OperationNotAllowed: ")
    assert report.failed


def test_status_report_has_no_instance_outcomes():
    report = vmss.TargetReport(vmss.ScaleSetRef("rg", "s"), None, "reported", [vmss.InstanceReport("3", "stopped")])
    assert report.to_dict()["instances"] == [{"instanceId": "3", "powerState": "stopped"}]
    assert vmss.summary_line(report) == "rg/s: reported; 1 stopped"


def test_parse_action_body_defaults_and_values():
    assert parse_action_body({}) == (None, False, 0)
    assert parse_action_body({"names": ["a", "b"], "dryRun": True, "waitSeconds": 200}) == (["a", "b"], True, 200)


def test_parse_action_body_reports_every_problem():
    with pytest.raises(InputError) as caught:
        parse_action_body({"names": ["ok", "no good"], "dryRun": 1, "waitSeconds": 2.5, "extra": None})
    assert [d["field"] for d in caught.value.details] == ["extra", "dryRun", "waitSeconds", "names"]
    assert [d["message"] for d in caught.value.details[:3]] == [
        "unknown field 'extra' (known: dryRun, names, waitSeconds)",
        "must be true or false, not a number",
        "must be a whole number from 0 to 200, not 2.5"]


def test_a_misspelt_action_body_field_is_named_with_the_one_it_meant():
    with pytest.raises(InputError) as caught:
        parse_action_body({"name": ["vmss-a"], "dryrun": True})
    assert caught.value.details == [{"field": "name", "message": "unknown field 'name' (did you mean 'names'?)"},
                                    {"field": "dryrun", "message": "unknown field 'dryrun' (did you mean 'dryRun'?)"}]


def test_resource_group_from_ids_any_case():
    assert vmss._resource_group_of("/subscriptions/s/resourceGroups/RG-1/providers/x/y/z") == "RG-1"
    assert vmss._resource_group_of("/subscriptions/s/RESOURCEGROUPS/rg2/providers/x") == "rg2"
    assert vmss._resource_group_of(None) is None


@pytest.mark.parametrize("statuses,overall", [
    (["InProgress", "InProgress"], "InProgress"),
    (["Succeeded", "InProgress"], "InProgress"),
    (["Succeeded", "Succeeded"], "Succeeded"),
    (["Succeeded", "Failed", "InProgress"], "Failed"),
    (["Canceled", "Failed"], "Canceled"),
])
def test_one_status_for_the_operations_of_a_flexible_set(statuses: list[str], overall: str):
    assert vmss._overall(statuses) == overall


@pytest.mark.parametrize("mode,expected", [("Flexible", "Flexible"), ("flexible", "Flexible"), ("Uniform", "Uniform"),
                                           (None, "Uniform")])
def test_orchestration_mode_from_the_sdk_model(mode: str | None, expected: str):
    from azure.mgmt.compute import models

    body = {"location": "westeurope", "properties": {"orchestrationMode": mode} if mode else {}}
    scale_set = models.VirtualMachineScaleSet(body)
    info = vmss._info(scale_set, vmss.ScaleSetRef("rg", "s"))
    assert (info.orchestration, info.flexible) == (expected, expected == "Flexible")


def test_flexible_filter_names_the_scale_set_id():
    ref = vmss.ScaleSetRef("rg", "flex-a")
    info = vmss.ScaleSetInfo(ref, {}, "westeurope", vmss.FLEXIBLE, f"/subscriptions/{SUB}/resourceGroups/rg/"
                             "providers/Microsoft.Compute/virtualMachineScaleSets/flex-a")
    assert vmss.flexible_filter(info) == (f"'virtualMachineScaleSet/id' eq '/subscriptions/{SUB}/resourceGroups/rg/"
                                          "providers/Microsoft.Compute/virtualMachineScaleSets/flex-a'")


def test_flexible_report_names_its_mode():
    report = vmss.TargetReport(vmss.ScaleSetRef("rg", "flex-a"), "start", "accepted",
                               [vmss.InstanceReport("flex-a_0", "deallocated", "started")],
                               operation={"status": "InProgress"}, orchestration=vmss.FLEXIBLE)
    assert report.to_dict()["orchestrationMode"] == "Flexible"
    assert vmss.summary_line(report) == "start rg/flex-a (Flexible): accepted; 1 started; operation InProgress"


def test_the_compute_api_version_is_pinned_and_overridable():
    from batchk8s.settings import COMPUTE_API_VERSION

    assert settings().vmss_api_version == COMPUTE_API_VERSION == "2025-04-01"
    assert settings(AZURE_VMSS_API_VER="2024-11-01").vmss_api_version == "2024-11-01"
    assert settings(AZURE_VMSS_API_VER="").vmss_api_version == COMPUTE_API_VERSION
