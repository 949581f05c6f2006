"""batchk8s.vmss through the real azure-mgmt-compute client and azure-identity against the fakes."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from batchk8s import vmss
from batchk8s.errors import InputError
from batchk8s.settings import COMPUTE_API_VERSION, Settings
from tests.fakes.aad import FakeAAD
from tests.fakes.arm import FakeARM
from tests.integration.vmss.conftest import RG

VMSS_PATH = r"/virtualMachineScaleSets/[^/]+$"
LIST_PATH = r"/virtualMachines$"
ACTION_PATH = r"/(start|deallocate)$"


def by_name(reports: list[vmss.TargetReport]) -> dict[str, vmss.TargetReport]:
    return {report.ref.name: report for report in reports}


def start_and_time(make_settings: Callable[..., Settings], wait_seconds: float) -> tuple[vmss.TargetReport, float]:
    """Start the configured scale set, waiting up to `wait_seconds`; the report and the seconds it took."""
    settings = make_settings()
    started = time.monotonic()
    [report] = vmss.apply_action(settings, "start", vmss.configured_targets(settings), wait_seconds=wait_seconds)
    return report, time.monotonic() - started


def outcomes(report: vmss.TargetReport) -> dict[str, str | None]:
    return {instance.instance_id: instance.outcome for instance in report.instances}


def test_start_acts_only_on_instances_not_running(arm: FakeARM, make_settings: Callable[..., Settings]):
    arm.add_scale_set(RG, "vmss-a", {"0": "deallocated", "1": "running", "2": "stopped", "3": "starting"})
    settings = make_settings()

    [report] = vmss.apply_action(settings, "start", vmss.configured_targets(settings))

    assert report.outcome == "accepted"
    assert report.operation == {"status": "InProgress"}
    assert outcomes(report) == {"0": "started", "1": "skipped", "2": "started", "3": "skipped"}
    assert arm.actions == [("start", RG, "vmss-a", ["0", "2"])]
    # Budget: GET scale set, one instance list, one action; nothing else reached ARM.
    assert (arm.count("GET", VMSS_PATH), arm.count("GET", LIST_PATH), arm.count("POST")) == (1, 1, 1)
    assert arm.log[1][2]["$expand"] == ["instanceView"]


def test_already_running_sends_no_start(arm: FakeARM, make_settings: Callable[..., Settings]):
    arm.add_scale_set(RG, "vmss-a", {"0": "running", "1": "running"})
    settings = make_settings()

    [first] = vmss.apply_action(settings, "start", vmss.configured_targets(settings))
    [again] = vmss.apply_action(settings, "start", vmss.configured_targets(settings))

    assert first.outcome == again.outcome == "nothing-to-do"
    assert arm.count("POST") == 0
    assert vmss.summary_line(first) == f"start {RG}/vmss-a: nothing-to-do; 2 skipped"


def test_second_run_while_starting_is_a_no_op(arm: FakeARM, make_settings: Callable[..., Settings]):
    arm.operation_delay = 30
    arm.add_scale_set(RG, "vmss-a", {"0": "deallocated"})
    settings = make_settings()

    [first] = vmss.apply_action(settings, "start", vmss.configured_targets(settings))
    [second] = vmss.apply_action(settings, "start", vmss.configured_targets(settings))

    assert (first.outcome, second.outcome) == ("accepted", "nothing-to-do")
    assert second.instances[0].power_state == "starting"
    assert arm.count("POST") == 1


def test_deallocate_several_targets_concurrently(arm: FakeARM, make_settings: Callable[..., Settings]):
    arm.add_scale_set(RG, "vmss-a", {"0": "running", "1": "stopped", "2": "deallocated"})
    arm.add_scale_set(RG, "vmss-b", {"0": "running", "1": "running"})
    arm.add_scale_set(RG, "vmss-c", {"0": "deallocated"})
    settings = make_settings("vmss-a,vmss-b,vmss-c")

    reports = by_name(vmss.apply_action(settings, "deallocate", vmss.configured_targets(settings)))

    assert {name: r.outcome for name, r in reports.items()} == {
        "vmss-a": "accepted", "vmss-b": "accepted", "vmss-c": "nothing-to-do"}
    assert outcomes(reports["vmss-a"]) == {"0": "deallocated", "1": "deallocated", "2": "skipped"}
    assert sorted(arm.actions) == [("deallocate", RG, "vmss-a", ["0", "1"]), ("deallocate", RG, "vmss-b", ["0", "1"])]
    assert arm.states(RG, "vmss-b") == {"0": "deallocating", "1": "deallocating"}


def test_partial_failure_never_stops_the_others(arm: FakeARM, make_settings: Callable[..., Settings]):
    arm.add_scale_set(RG, "vmss-a", {"0": "deallocated"})
    arm.add_scale_set(RG, "vmss-b", {"0": "deallocated", "1": "running"})
    arm.inject(method="POST", path=r"/vmss-b/start$", status=409, body={"error": {
        "code": "OperationNotAllowed", "message": "Operation 'start' is not allowed on VM 'vmss-b_0'."}})
    settings = make_settings("vmss-a,vmss-b,vmss-missing")

    reports = by_name(vmss.apply_action(settings, "start", vmss.configured_targets(settings)))

    assert reports["vmss-a"].outcome == "accepted"
    failed = reports["vmss-b"]
    assert failed.outcome == "failed"
    assert failed.error is not None and failed.error["code"] == "OperationNotAllowed"
    assert failed.error["upstreamStatus"] == 409
    assert outcomes(failed) == {"0": "failed", "1": "skipped"}
    missing = reports["vmss-missing"]
    assert missing.outcome == "not-found"
    assert missing.error == {"code": "ResourceNotFound", "message": f"scale set {RG}/vmss-missing not found",
                             "upstreamStatus": 404}
    assert [a[2] for a in arm.actions] == ["vmss-a"]


def test_conflicting_operation_in_progress_is_a_409(arm: FakeARM, make_settings: Callable[..., Settings]):
    arm.operation_delay = 30
    arm.add_scale_set(RG, "vmss-a", {"0": "running"})
    settings = make_settings()
    [deallocating] = vmss.apply_action(settings, "deallocate", vmss.configured_targets(settings))
    arm.states(RG, "vmss-a")  # deallocating now; a start for the same instance conflicts
    arm.scale_sets[(RG.lower(), "vmss-a")].instances["0"] = "stopped"

    [report] = vmss.apply_action(settings, "start", vmss.configured_targets(settings))

    assert deallocating.outcome == "accepted"
    assert report.outcome == "failed"
    assert report.error is not None and report.error["code"] == "OperationNotAllowed"
    assert report.problem is not None and report.problem.status == 409
    # Named for what ARM said, with its reason; never "already exists".
    assert report.error["message"] == (f"scale set {RG}/vmss-a: Azure does not allow this operation now "
                                       "(OperationNotAllowed): Operation 'start' is not allowed on scale set "
                                       "'vmss-a' since an operation 'deallocate' is in progress on it.")


def test_unknown_resource_group_is_not_found(arm: FakeARM, make_settings: Callable[..., Settings]):
    settings = make_settings()

    [report] = vmss.power_states(settings, vmss.configured_targets(settings))

    assert report.outcome == "not-found"
    assert report.error is not None and report.error["code"] == "ResourceGroupNotFound"
    assert report.problem is not None and report.problem.status == 404


def test_429_with_retry_after_then_success(arm: FakeARM, make_settings: Callable[..., Settings]):
    arm.add_scale_set(RG, "vmss-a", {"0": "deallocated"})
    arm.inject(method="GET", path=LIST_PATH, status=429, headers={"Retry-After": "1"}, body={"error": {
        "code": "TooManyRequests", "message": "The request is being throttled."}})
    settings = make_settings()

    started = time.monotonic()
    [report] = vmss.apply_action(settings, "start", vmss.configured_targets(settings))

    assert report.outcome == "accepted"
    assert arm.count("GET", LIST_PATH) == 2
    assert time.monotonic() - started >= 1.0  # Retry-After honoured by azure-core's RetryPolicy


def test_503_twice_then_success(arm: FakeARM, make_settings: Callable[..., Settings]):
    arm.add_scale_set(RG, "vmss-a", {"0": "deallocated"})
    arm.inject(method="POST", path=ACTION_PATH, status=503, times=2, body={"error": {
        "code": "ServiceUnavailable", "message": "The service is temporarily unavailable."}})
    settings = make_settings()

    [report] = vmss.apply_action(settings, "start", vmss.configured_targets(settings))

    assert report.outcome == "accepted"
    assert arm.count("POST") == 3
    assert len(arm.actions) == 1


def test_throttling_that_never_ends_fails_that_target_only(arm: FakeARM, make_settings: Callable[..., Settings]):
    arm.add_scale_set(RG, "vmss-a", {"0": "deallocated"})
    arm.add_scale_set(RG, "vmss-b", {"0": "deallocated"})
    arm.inject(method="GET", path=r"/vmss-b$", status=429, headers={"Retry-After": "1"}, times=10, body={
        "error": {"code": "TooManyRequests", "message": "The request is being throttled."}})
    settings = make_settings("vmss-a,vmss-b")

    reports = by_name(vmss.apply_action(settings, "start", vmss.configured_targets(settings)))

    assert reports["vmss-a"].outcome == "accepted"
    assert reports["vmss-b"].outcome == "failed"
    assert reports["vmss-b"].error == {"code": "TooManyRequests", "upstreamStatus": 429,
                                       "message": f"scale set {RG}/vmss-b: the service answered 429 TooManyRequests: "
                                                  "The request is being throttled."}


def test_token_endpoint_failure_is_one_clear_error(aad: FakeAAD, arm: FakeARM,
                                                   make_settings: Callable[..., Settings]):
    arm.add_scale_set(RG, "vmss-a", {"0": "deallocated"})
    arm.add_scale_set(RG, "vmss-b", {"0": "deallocated"})
    wrong = "wrong-secret-Zq8vX1"
    settings = make_settings("vmss-a,vmss-b", AZURE_SP_CLIENT_SECRET=wrong)

    reports = vmss.apply_action(settings, "start", vmss.configured_targets(settings))

    assert [r.outcome for r in reports] == ["failed", "failed"]
    for report in reports:
        assert report.error is not None and report.error["code"] == "AuthenticationFailed"
        assert "service principal" in report.error["message"]
        assert wrong not in str(report.to_dict()) and aad.client_secret not in str(report.to_dict())
    assert arm.log == []  # nothing reached ARM without a token
    assert aad.count("POST") == 1  # one token attempt for the batch, not one per scale set


def test_token_for_another_audience_is_refused(arm: FakeARM, make_settings: Callable[..., Settings]):
    arm.add_scale_set(RG, "vmss-a", {"0": "deallocated"})
    arm.audience = "https://management.example.invalid"
    settings = make_settings()

    [report] = vmss.apply_action(settings, "start", vmss.configured_targets(settings))

    assert report.outcome == "failed"
    assert report.error is not None
    assert (report.error["code"], report.error["upstreamStatus"]) == ("InvalidAuthenticationToken", 401)


def test_api_version_override_is_sent_on_every_request(arm: FakeARM, make_settings: Callable[..., Settings]):
    arm.add_scale_set(RG, "vmss-a", {"0": "deallocated", "1": "running"})
    settings = make_settings(AZURE_VMSS_API_VER="2019-12-01")

    [report] = vmss.apply_action(settings, "start", vmss.configured_targets(settings), wait_seconds=5)
    vmss.power_states(settings, vmss.configured_targets(settings))
    vmss.list_scale_sets(settings, RG)

    assert report.outcome == "completed"
    assert arm.count("GET", r"/operations/") >= 1  # the operation polls carry it too
    assert arm.api_versions() == {"2019-12-01"}


def test_pinned_api_version_without_override(arm: FakeARM, make_settings: Callable[..., Settings]):
    arm.add_scale_set(RG, "vmss-a", {"0": "running"})
    settings = make_settings()

    vmss.power_states(settings, vmss.configured_targets(settings))

    assert arm.api_versions() == {COMPUTE_API_VERSION}


def test_aks_managed_scale_set_is_acted_on_with_a_warning(arm: FakeARM, make_settings: Callable[..., Settings]):
    arm.add_scale_set(RG, "aks-nodepool1-123-vmss", {"0": "running"},
                      tags={"aks-managed-poolName": "nodepool1", "aks-managed-createOperationID": "x"})
    settings = make_settings("aks-nodepool1-123-vmss")

    [report] = vmss.apply_action(settings, "deallocate", vmss.configured_targets(settings))
    [status] = vmss.power_states(settings, vmss.configured_targets(settings))

    assert report.outcome == "accepted"
    assert report.warnings == [vmss.AKS_WARNING] == status.warnings
    assert "az aks stop" in vmss.summary_line(report)


def test_dry_run_sends_no_action(arm: FakeARM, make_settings: Callable[..., Settings]):
    arm.add_scale_set(RG, "vmss-a", {"0": "deallocated", "1": "running"})
    settings = make_settings()

    [report] = vmss.apply_action(settings, "start", vmss.configured_targets(settings), dry_run=True)

    assert report.outcome == "dry-run"
    assert outcomes(report) == {"0": "would-start", "1": "skipped"}
    assert arm.count("POST") == 0
    assert arm.states(RG, "vmss-a") == {"0": "deallocated", "1": "running"}


def test_wait_reports_completed(arm: FakeARM, make_settings: Callable[..., Settings]):
    arm.add_scale_set(RG, "vmss-a", {"0": "deallocated", "1": "deallocated"})
    settings = make_settings()

    [report] = vmss.apply_action(settings, "start", vmss.configured_targets(settings), wait_seconds=10)

    assert report.outcome == "completed"
    assert report.operation == {"status": "Succeeded"}
    assert arm.states(RG, "vmss-a") == {"0": "running", "1": "running"}
    assert report.warnings == []


def test_operation_poll_waits_as_long_as_retry_after_asks(arm: FakeARM, make_settings: Callable[..., Settings]):
    """ARM's Retry-After (2 s here) overrides the first poll delay (1 s): polling sooner only adds load."""
    arm.retry_after = "2"
    arm.add_scale_set(RG, "vmss-a", {"0": "deallocated"})

    report, elapsed = start_and_time(make_settings, wait_seconds=10)

    assert report.outcome == "completed"
    assert arm.count("GET", r"/operations/") == 1  # the operation (0.2 s) had ended by the one poll
    assert 2.0 <= elapsed < 4


def test_wait_is_bounded_and_reports_still_running(arm: FakeARM, make_settings: Callable[..., Settings]):
    arm.operation_delay = 60
    arm.add_scale_set(RG, "vmss-a", {"0": "deallocated"})

    report, elapsed = start_and_time(make_settings, wait_seconds=1.5)

    assert report.outcome == "accepted"
    assert report.operation == {"status": "InProgress"}
    assert report.warnings == ["still running after waiting 1.5 s"]
    assert 1.5 <= elapsed < 4


def test_operation_ending_failed_is_reported(arm: FakeARM, make_settings: Callable[..., Settings]):
    arm.add_scale_set(RG, "vmss-a", {"0": "deallocated"})
    arm.fail_next_operation(RG, "vmss-a", "AllocationFailed", "Allocation failed. We do not have sufficient capacity.")
    settings = make_settings()

    [report] = vmss.apply_action(settings, "start", vmss.configured_targets(settings), wait_seconds=10)

    assert report.outcome == "failed"
    assert report.error == {"code": "AllocationFailed", "upstreamStatus": None,
                            "message": "Allocation failed. We do not have sufficient capacity."}
    assert outcomes(report) == {"0": "failed"}
    assert arm.states(RG, "vmss-a") == {"0": "deallocated"}


def test_power_states_reads_every_page_in_one_paged_call(arm: FakeARM, make_settings: Callable[..., Settings]):
    arm.page_size = 2
    states = {"0": "running", "1": "deallocated", "2": "stopped", "3": "starting", "10": "deallocating"}
    arm.add_scale_set(RG, "vmss-a", states)
    settings = make_settings()

    [report] = vmss.power_states(settings, vmss.configured_targets(settings))

    assert report.outcome == "reported"
    assert [(i.instance_id, i.power_state) for i in report.instances] == list(states.items())
    assert arm.count("GET", LIST_PATH) == 3  # three pages, followed through nextLink
    assert all(query.get("$expand") == ["instanceView"] for _, path, query in arm.log if path.endswith("Machines"))


def test_list_scale_sets_in_group_and_subscription(arm: FakeARM, make_settings: Callable[..., Settings]):
    arm.page_size = 1
    arm.add_scale_set(RG, "vmss-a", {"0": "running"}, tags={"schedule": "office-hours"})
    arm.add_scale_set(RG, "vmss-b", {})
    arm.add_scale_set("rg-other", "vmss-c", {}, tags={"aks-managed-poolName": "p"})
    settings = make_settings()

    in_group = vmss.list_scale_sets(settings, RG)
    everywhere = vmss.list_scale_sets(settings)

    assert [(s.ref, s.tags) for s in in_group] == [
        (vmss.ScaleSetRef(RG, "vmss-a"), {"schedule": "office-hours"}), (vmss.ScaleSetRef(RG, "vmss-b"), {})]
    assert {s.ref for s in everywhere} == {vmss.ScaleSetRef(RG, "vmss-a"), vmss.ScaleSetRef(RG, "vmss-b"),
                                          vmss.ScaleSetRef("rg-other", "vmss-c")}
    assert [s.aks_managed for s in everywhere if s.ref.name == "vmss-c"] == [True]


def test_list_scale_sets_unknown_group_raises_not_found(arm: FakeARM, make_settings: Callable[..., Settings]):
    with pytest.raises(vmss.BatchK8sError) as caught:
        vmss.list_scale_sets(make_settings(), "rg-nowhere")
    assert caught.value.status == 404 and caught.value.code == "ResourceGroupNotFound"


def test_bad_action_and_wait_are_input_errors(make_settings: Callable[..., Settings]):
    settings = make_settings()
    targets = vmss.configured_targets(settings)
    with pytest.raises(InputError, match="action"):
        vmss.apply_action(settings, "restart", targets)
    with pytest.raises(InputError, match="waitSeconds"):
        vmss.apply_action(settings, "start", targets, wait_seconds=201)
