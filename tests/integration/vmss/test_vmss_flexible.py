"""Flexible scale sets through the real azure-mgmt-compute client against the fake ARM.

A Flexible set has no set-level start, deallocate or instance view: its members are ordinary VMs,
listed with VirtualMachines_List filtered by `virtualMachineScaleSet/id` and acted on one by one.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from batchk8s import vmss
from batchk8s.settings import COMPUTE_API_VERSION, Settings
from tests.fakes.arm import FakeARM
from tests.integration.vmss.conftest import RG

SET_GET = r"/virtualMachineScaleSets/[^/]+$"
VM_LIST = r"/resourceGroups/[^/]+/providers/Microsoft.Compute/virtualMachines$"
VM_ACTION = r"/virtualMachines/[^/]+/(start|deallocate)$"
SET_LEVEL = r"/virtualMachineScaleSets/[^/]+/(start|deallocate|instanceView|virtualMachines)$"
FLEX = {"flex-a_0f1e": "deallocated", "flex-a_2b3c": "running", "flex-a_4d5e": "stopped", "flex-a_6f70": "starting"}


def outcomes(report: vmss.TargetReport) -> dict[str, str | None]:
    return {instance.instance_id: instance.outcome for instance in report.instances}


def by_name(reports: list[vmss.TargetReport]) -> dict[str, vmss.TargetReport]:
    return {report.ref.name: report for report in reports}


def set_id(arm: FakeARM, name: str) -> str:
    return (f"/subscriptions/{arm.subscription}/resourceGroups/{RG}/providers/Microsoft.Compute"
            f"/virtualMachineScaleSets/{name}")


def test_start_acts_only_on_member_vms_not_running(arm: FakeARM, make_settings: Callable[..., Settings]):
    arm.add_scale_set(RG, "flex-a", FLEX, orchestration="Flexible")
    settings = make_settings("flex-a")

    [report] = vmss.apply_action(settings, "start", vmss.configured_targets(settings))

    assert (report.outcome, report.orchestration, report.operation) == ("accepted", "Flexible",
                                                                        {"status": "InProgress"})
    assert outcomes(report) == {"flex-a_0f1e": "started", "flex-a_2b3c": "skipped", "flex-a_4d5e": "started",
                                "flex-a_6f70": "skipped"}
    assert sorted(arm.actions) == [("start", RG, "flex-a", ["flex-a_0f1e"]), ("start", RG, "flex-a", ["flex-a_4d5e"])]
    # Budget: the scale set, one filtered VM list carrying the power states, one start per VM that needs it.
    assert (arm.count("GET", SET_GET), arm.count("GET", VM_LIST), arm.count("POST", VM_ACTION)) == (1, 1, 2)
    assert arm.count(path=SET_LEVEL) == 0 and arm.count() == 4
    [query] = [q for _, path, q in arm.log if path.endswith("/virtualMachines")]
    assert query["$filter"] == [f"'virtualMachineScaleSet/id' eq '{set_id(arm, 'flex-a')}'"]
    assert query["$expand"] == ["instanceView"]
    assert report.to_dict()["orchestrationMode"] == "Flexible"


def test_running_it_again_is_a_no_op(arm: FakeARM, make_settings: Callable[..., Settings]):
    arm.operation_delay = 30
    arm.add_scale_set(RG, "flex-a", {"flex-a_0": "deallocated", "flex-a_1": "running"}, orchestration="Flexible")
    settings = make_settings("flex-a")

    [first] = vmss.apply_action(settings, "start", vmss.configured_targets(settings))
    [second] = vmss.apply_action(settings, "start", vmss.configured_targets(settings))

    assert (first.outcome, second.outcome) == ("accepted", "nothing-to-do")
    assert [(i.instance_id, i.power_state) for i in second.instances] == [("flex-a_0", "starting"),
                                                                         ("flex-a_1", "running")]
    assert arm.count("POST") == 1


def test_deallocate_waits_for_every_vm_operation(arm: FakeARM, make_settings: Callable[..., Settings]):
    members = {f"flex-a_{i}": "running" for i in range(5)}
    arm.add_scale_set(RG, "flex-a", members, orchestration="Flexible")
    settings = make_settings("flex-a")

    [report] = vmss.apply_action(settings, "deallocate", vmss.configured_targets(settings), wait_seconds=10)

    assert report.outcome == "completed"
    assert report.operation == {"status": "Succeeded"}
    assert set(outcomes(report).values()) == {"deallocated"}
    assert arm.states(RG, "flex-a") == dict.fromkeys(members, "deallocated")
    assert arm.count("GET", r"/operations/") >= 5  # each VM's operation polled


def test_uniform_and_flexible_side_by_side(arm: FakeARM, make_settings: Callable[..., Settings]):
    arm.add_scale_set(RG, "uni-a", {"0": "running", "1": "deallocated"})
    arm.add_scale_set(RG, "flex-a", {"flex-a_0": "running", "flex-a_1": "deallocated"}, orchestration="Flexible")
    settings = make_settings("uni-a,flex-a")

    reports = by_name(vmss.apply_action(settings, "deallocate", vmss.configured_targets(settings)))

    assert {name: (r.orchestration, r.outcome) for name, r in reports.items()} == {
        "uni-a": ("Uniform", "accepted"), "flex-a": ("Flexible", "accepted")}
    assert sorted(arm.actions) == [("deallocate", RG, "flex-a", ["flex-a_0"]), ("deallocate", RG, "uni-a", ["0"])]
    assert arm.count("POST", r"/virtualMachineScaleSets/uni-a/deallocate$") == 1
    assert arm.count("POST", r"/virtualMachines/flex-a_0/deallocate$") == 1


def test_one_refused_vm_fails_the_report_but_not_the_other_vms(arm: FakeARM, make_settings: Callable[..., Settings]):
    arm.add_scale_set(RG, "flex-a", {"flex-a_0": "deallocated", "flex-a_1": "deallocated", "flex-a_2": "running"},
                      orchestration="Flexible")
    arm.inject(method="POST", path=r"/virtualMachines/flex-a_1/start$", status=409, body={"error": {
        "code": "OperationNotAllowed", "message": "Operation 'start' is not allowed on VM 'flex-a_1'."}})
    settings = make_settings("flex-a")

    [report] = vmss.apply_action(settings, "start", vmss.configured_targets(settings))

    assert report.outcome == "failed"
    assert report.error is not None
    assert (report.error["code"], report.error["upstreamStatus"]) == ("OperationNotAllowed", 409)
    assert outcomes(report) == {"flex-a_0": "started", "flex-a_1": "failed", "flex-a_2": "skipped"}
    assert arm.actions == [("start", RG, "flex-a", ["flex-a_0"])]
    assert arm.states(RG, "flex-a")["flex-a_0"] in ("starting", "running")


def test_a_vm_operation_ending_failed_is_reported(arm: FakeARM, make_settings: Callable[..., Settings]):
    arm.add_scale_set(RG, "flex-a", {"flex-a_0": "deallocated"}, orchestration="Flexible")
    arm.fail_next_operation(RG, "flex-a", "AllocationFailed", "Allocation failed. We do not have sufficient capacity.")
    settings = make_settings("flex-a")

    [report] = vmss.apply_action(settings, "start", vmss.configured_targets(settings), wait_seconds=10)

    assert report.outcome == "failed"
    assert report.operation == {"status": "Failed"}
    assert report.error == {"code": "AllocationFailed", "upstreamStatus": None,
                            "message": "Allocation failed. We do not have sufficient capacity."}
    assert outcomes(report) == {"flex-a_0": "failed"}


def test_power_states_follow_every_page_of_the_filtered_list(arm: FakeARM, make_settings: Callable[..., Settings]):
    arm.page_size = 2
    members = {"flex-a_a": "running", "flex-a_b": "deallocated", "flex-a_c": "stopped", "flex-a_d": "starting",
               "flex-a_e": "deallocating"}
    arm.add_scale_set(RG, "flex-a", members, orchestration="Flexible")
    arm.add_scale_set(RG, "flex-b", {"flex-b_a": "running"}, orchestration="Flexible")  # same group, not listed
    settings = make_settings("flex-a")

    [report] = vmss.power_states(settings, vmss.configured_targets(settings))

    assert report.outcome == "reported"
    assert [(i.instance_id, i.power_state) for i in report.instances] == list(members.items())
    assert arm.count("GET", VM_LIST) == 3


def test_a_vm_listed_without_instance_view_is_read_on_its_own(arm: FakeARM, make_settings: Callable[..., Settings]):
    arm.add_scale_set(RG, "flex-a", {"flex-a_0": "deallocated", "flex-a_1": "running"}, orchestration="Flexible")
    vm_id = f"/subscriptions/{arm.subscription}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachines"
    # A VM still being created is listed before it has an instance view.
    arm.inject(method="GET", path=VM_LIST, status=200, body={"value": [
        {"id": f"{vm_id}/flex-a_0", "name": "flex-a_0", "location": "westeurope", "properties": {
            "provisioningState": "Creating", "virtualMachineScaleSet": {"id": set_id(arm, "flex-a")}}},
        {"id": f"{vm_id}/flex-a_1", "name": "flex-a_1", "location": "westeurope", "properties": {
            "virtualMachineScaleSet": {"id": set_id(arm, "flex-a")},
            "instanceView": {"statuses": [{"code": "PowerState/running"}]}}}]})
    settings = make_settings("flex-a")

    [report] = vmss.apply_action(settings, "start", vmss.configured_targets(settings))

    assert [(i.instance_id, i.power_state, i.outcome) for i in report.instances] == [
        ("flex-a_0", "deallocated", "started"), ("flex-a_1", "running", "skipped")]
    assert arm.count("GET", r"/virtualMachines/flex-a_0/instanceView$") == 1
    assert arm.count("GET", r"/virtualMachines/flex-a_1/instanceView$") == 0


def test_empty_flexible_set_has_nothing_to_do(arm: FakeARM, make_settings: Callable[..., Settings]):
    arm.add_scale_set(RG, "flex-a", {}, orchestration="Flexible")
    settings = make_settings("flex-a")

    [report] = vmss.apply_action(settings, "deallocate", vmss.configured_targets(settings))

    assert (report.outcome, report.instances) == ("nothing-to-do", [])
    assert arm.count("POST") == 0


def test_list_scale_sets_reports_the_orchestration_mode(arm: FakeARM, make_settings: Callable[..., Settings]):
    arm.add_scale_set(RG, "flex-a", {}, orchestration="Flexible")
    arm.add_scale_set(RG, "uni-a", {})

    found = {s.ref.name: s.orchestration for s in vmss.list_scale_sets(make_settings(), RG)}

    assert found == {"flex-a": "Flexible", "uni-a": "Uniform"}


def test_members_are_started_concurrently(fake_service, aad, make_settings: Callable[..., Settings]):
    del make_settings  # the fake below, with latency, replaces the fixture's
    from batchk8s.settings import load_settings
    from tests.fakes.arm import arm_env

    slow: FakeARM = fake_service(FakeARM, aad=aad, latency=0.3, operation_delay=30)  # type: ignore[assignment]
    slow.add_scale_set(RG, "flex-a", {f"flex-a_{i}": "deallocated" for i in range(8)}, orchestration="Flexible")
    settings = load_settings(arm_env(aad, slow, AZURE_RES_GROUP_NAME=RG, AZURE_VMSS_NAME="flex-a"))

    started = time.monotonic()
    [report] = vmss.apply_action(settings, "start", vmss.configured_targets(settings))
    elapsed = time.monotonic() - started

    assert report.outcome == "accepted" and len(slow.actions) == 8
    # Sequential would be 2 reads + 8 starts = 3 s of latency alone; concurrent starts overlap.
    assert elapsed < 2.4, elapsed


# --- api-version --------------------------------------------------------------------------------


def test_the_pinned_api_version_is_sent_on_every_call(arm: FakeARM, make_settings: Callable[..., Settings]):
    arm.add_scale_set(RG, "uni-a", {"0": "deallocated"})
    arm.add_scale_set(RG, "flex-a", {"flex-a_0": "deallocated"}, orchestration="Flexible")
    settings = make_settings("uni-a,flex-a")

    reports = vmss.apply_action(settings, "start", vmss.configured_targets(settings), wait_seconds=5)
    vmss.list_scale_sets(settings)

    assert settings.vmss_api_version == COMPUTE_API_VERSION == "2025-04-01"
    assert [r.outcome for r in reports] == ["completed", "completed"]
    assert arm.api_versions() == {COMPUTE_API_VERSION}


@pytest.mark.parametrize("orchestration", ["Uniform", "Flexible"])
def test_an_api_version_compute_does_not_serve_is_refused(arm: FakeARM, make_settings: Callable[..., Settings],
                                                          orchestration: str):
    arm.add_scale_set(RG, "vmss-a", {"vmss-a_0": "deallocated"}, orchestration=orchestration)
    settings = make_settings(AZURE_VMSS_API_VER="2019-13-01")

    [report] = vmss.apply_action(settings, "start", vmss.configured_targets(settings))

    assert report.outcome == "failed"
    assert report.error is not None
    assert (report.error["code"], report.error["upstreamStatus"]) == ("NoRegisteredProviderFound", 400)
    assert "API version '2019-13-01' for type 'virtualMachineScaleSets'" in report.error["message"]
    assert arm.count("POST") == 0


# --- the doors: CLI, HTTP, timer ----------------------------------------------------------------


def test_cli_status_and_start_on_a_flexible_set(arm: FakeARM, app_env: Callable[..., None],
                                                capsys: pytest.CaptureFixture[str]):
    import json

    from batchk8s.cli import main

    arm.add_scale_set(RG, "flex-a", {"flex-a_0": "deallocated", "flex-a_1": "running"}, orchestration="Flexible")
    app_env("flex-a")

    assert main(["vmss", "status"]) == 0
    status = capsys.readouterr().out
    assert main(["vmss", "start", "--wait", "10", "--json"]) == 0
    started = json.loads(capsys.readouterr().out)

    assert status.splitlines() == [f"{RG}/flex-a (Flexible): reported; 1 deallocated, 1 running",
                                   "  flex-a_0  deallocated", "  flex-a_1  running"]
    [target] = started["targets"]
    assert (target["outcome"], target["orchestrationMode"]) == ("completed", "Flexible")
    assert target["instances"] == [
        {"instanceId": "flex-a_0", "powerState": "deallocated", "outcome": "started"},
        {"instanceId": "flex-a_1", "powerState": "running", "outcome": "skipped"}]
    assert arm.states(RG, "flex-a") == {"flex-a_0": "running", "flex-a_1": "running"}


def test_cli_exit_code_when_a_vm_is_refused(arm: FakeARM, app_env: Callable[..., None],
                                            capsys: pytest.CaptureFixture[str]):
    from batchk8s.cli import main

    arm.add_scale_set(RG, "flex-a", {"flex-a_0": "running"}, orchestration="Flexible")
    arm.inject(method="POST", path=r"/virtualMachines/flex-a_0/deallocate$", status=409, body={"error": {
        "code": "OperationNotAllowed", "message": "Operation 'deallocate' is not allowed on VM 'flex-a_0'."}})
    app_env("flex-a")

    assert main(["vmss", "deallocate"]) == 3
    out = capsys.readouterr()
    assert out.out.splitlines()[0].startswith(f"deallocate {RG}/flex-a (Flexible): failed; 1 failed; "
                                              "OperationNotAllowed")
    assert "Traceback" not in out.err


def test_http_start_and_status_on_a_flexible_set(arm: FakeARM, app_env: Callable[..., None]):
    from tests.integration.vmss.test_vmss_functions import call, post_action

    arm.add_scale_set(RG, "flex-a", {"flex-a_0": "deallocated", "flex-a_1": "running"}, orchestration="Flexible")
    arm.add_scale_set(RG, "uni-a", {"0": "deallocated"})
    app_env("flex-a,uni-a")

    status, body, response = post_action("start")
    read_status, read, _ = call("vmss_status", "GET", "/api/vmss?name=flex-a", params={"name": "flex-a"})

    assert status == 202
    assert response.headers["Location"] == "https://app.example.net/api/vmss?name=flex-a,uni-a"
    assert body["summary"] == {"accepted": 2}
    flex = next(t for t in body["targets"] if t["name"] == "flex-a")
    assert flex["orchestrationMode"] == "Flexible"
    assert flex["instances"] == [{"instanceId": "flex-a_0", "powerState": "deallocated", "outcome": "started"},
                                 {"instanceId": "flex-a_1", "powerState": "running", "outcome": "skipped"}]
    assert read_status == 200
    assert [(i["instanceId"], i["powerState"]) for i in read["scaleSets"][0]["instances"]] == [
        ("flex-a_0", "starting"), ("flex-a_1", "running")]
    assert arm.count(path=SET_LEVEL + "|/uni-a/virtualMachines$") == 2  # Uniform: list + start; Flexible: none


@pytest.mark.clock
def test_timer_deallocates_a_flexible_set(arm: FakeARM, app_env: Callable[..., None],
                                          caplog: pytest.LogCaptureFixture):
    import logging

    from azure.functions.timer import TimerRequest

    from tests.integration.vmss.test_vmss_functions import SCHEDULE, function

    arm.add_scale_set(RG, "flex-a", {"flex-a_0": "running", "flex-a_1": "deallocated"}, orchestration="Flexible")
    app_env("flex-a", VmssTriggerSchedule=SCHEDULE, AZURE_VMSS_ACTION="deallocate")
    caplog.set_level(logging.INFO, logger="batchk8s")

    function("vmss_schedule")(TimerRequest(past_due=False))

    summaries = [r.getMessage() for r in caplog.records if r.name == "batchk8s.vmss"]
    assert summaries == [f"vmss_schedule: deallocate {RG}/flex-a (Flexible): completed; 1 deallocated, 1 skipped; "
                         "operation Succeeded"]
    assert arm.actions == [("deallocate", RG, "flex-a", ["flex-a_0"])]
