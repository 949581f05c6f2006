"""The node-state classification and the pool verdict that ends every wait on a pool."""

from __future__ import annotations

import json

import pytest

from batchk8s.batch.node_states import (
    FAILED,
    GONE,
    NODE_STATES,
    READY,
    TRANSITIONAL,
    can_run_tasks,
    judge_pool,
    meaning,
    node_class,
)
from tests.conftest import DATA

SPEC_STATES = json.loads((DATA / "batch-service-2025-06-01.excerpt.json").read_text())[
    "definitions"]["BatchNodeState"]["enum"]
EXPECTED = {
    "idle": READY, "running": READY,
    "creating": TRANSITIONAL, "starting": TRANSITIONAL, "waitingforstarttask": TRANSITIONAL,
    "rebooting": TRANSITIONAL, "reimaging": TRANSITIONAL, "upgradingos": TRANSITIONAL,
    "starttaskfailed": FAILED, "unusable": FAILED, "unknown": FAILED, "offline": FAILED,
    "preempted": GONE, "leavingpool": GONE, "deallocating": GONE, "deallocated": GONE,
}


def test_every_state_of_the_batch_definition_is_classified_and_nothing_else():
    assert len(SPEC_STATES) == 16
    assert set(NODE_STATES) == set(SPEC_STATES)


@pytest.mark.parametrize("state", SPEC_STATES)
def test_each_state_has_its_class_and_a_meaning(state: str):
    assert node_class(state) == EXPECTED[state]
    assert node_class(state.upper()) == EXPECTED[state]  # the SDK's enum text may come in any case
    assert can_run_tasks(state) == (EXPECTED[state] == READY)
    assert meaning(state) and "does not know" not in meaning(state)


def test_a_state_newer_than_the_table_is_waited_on_and_named():
    assert node_class("hibernating") == TRANSITIONAL
    verdict = judge_pool("active", "steady", ["idle", "hibernating"])
    assert not verdict.settled and "1 hibernating (a state this version of batchk8s does not know)" in verdict.reason


@pytest.mark.parametrize("state", SPEC_STATES)
def test_one_node_in_each_state_of_a_steady_pool(state: str):
    """Ready and transitional states keep a wait going or end it ready; failed and gone ones end it at once."""
    verdict = judge_pool("active", "steady", ["idle", state])
    expected = EXPECTED[state]
    assert verdict.ready == (expected == READY)
    if expected == READY:
        assert (verdict.settled, verdict.failed) == (True, False)
    elif expected == TRANSITIONAL or state in ("leavingpool", "deallocating"):
        assert (verdict.settled, verdict.failed) == (False, False)
        assert verdict.reason.startswith("waiting: ") and state in verdict.reason
    else:
        assert (verdict.settled, verdict.failed) == (True, True)
        assert verdict.reason.startswith("cannot get better without an action: 1 of 2 node(s) ready")
        assert f"1 {state} ({meaning(state)})" in verdict.reason
    assert verdict.classes[expected] == 1 + (expected == READY)


def test_a_preempted_spot_node_ends_the_wait_while_a_resize_keeps_it_going():
    assert judge_pool("active", "steady", ["idle", "preempted"]).settled
    resizing = judge_pool("active", "resizing", ["idle", "preempted"])
    assert not resizing.settled and resizing.reason.startswith("waiting: allocation resizing")


def test_resize_errors_fail_a_pool_whose_nodes_are_all_ready():
    verdict = judge_pool("active", "steady", ["idle", "running"], ["AccountCoreQuotaReached"])
    assert (verdict.ready, verdict.settled, verdict.failed) == (True, True, True)
    assert verdict.reason == "ready: 2 node(s) ready; resize errors: AccountCoreQuotaReached"


def test_a_pool_being_deleted_cannot_get_better():
    verdict = judge_pool("deleting", "steady", ["idle"])
    assert (verdict.ready, verdict.settled, verdict.failed) == (False, True, True)
    assert verdict.reason == "the pool is being deleted"


def test_an_empty_steady_pool_is_settled_not_failed():
    verdict = judge_pool("active", "steady", [])
    assert (verdict.ready, verdict.settled, verdict.failed) == (False, True, False)
    assert "no nodes" in verdict.reason
    assert judge_pool("active", "steady", [], ["AllocationFailed"]).failed


def test_the_verdict_reads_as_a_dict_for_the_doors():
    verdict = judge_pool("active", "steady", ["idle", "unusable", "preempted"])
    assert verdict.to_dict() == {
        "ready": False, "settled": True, "failed": True,
        "reason": "cannot get better without an action: 1 of 3 node(s) ready; 1 preempted (its spot VM was "
                  "reclaimed by Azure), 1 unusable (Batch cannot run tasks on it (node errors))",
        "nodeClasses": {"ready": 1, "transitional": 0, "failed": 1, "gone": 1}}
    assert verdict.usable_nodes == 1
