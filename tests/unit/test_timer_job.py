"""`timer_job`, what every timer shares: the firing's deadline and budget, the past-due warning, our errors
logged and not raised, anything else logged with its traceback and raised, and a signature the worker
indexes as the trigger's binding."""

from __future__ import annotations

import inspect
import logging
import time
import typing
from typing import Any

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest

from batchk8s import deadline as deadline_module
from batchk8s.deadline import Deadline
from batchk8s.errors import BatchK8sError, ConfigError, UpstreamError
from batchk8s.functions.timers import timer_job
from batchk8s.settings import Settings, current_settings
from tests.app_index import indexed_functions

BUDGET_SECONDS = 12.5


def budget() -> Deadline:
    return Deadline.after(BUDGET_SECONDS)


def make(work: Any, **options: Any) -> Any:
    """A timer whose body is `work(timer, settings, deadline, budget)`, wrapped as the app's timers are."""

    @timer_job(budget=budget, **options)
    def sample_timer(timer: func.TimerRequest, settings: Settings, deadline: Deadline, budget: Deadline) -> None:
        """A sample timer."""
        work(timer, settings, deadline, budget)

    return sample_timer


def test_the_job_gets_the_settings_the_firings_deadline_and_its_budget() -> None:
    seen: dict[str, Any] = {}
    timer = make(lambda t, settings, deadline, run_budget: seen.update(
        timer=t, settings=settings, deadline=deadline, budget=run_budget, left=deadline.remaining()))
    firing = TimerRequest(past_due=False)
    before = time.monotonic()
    timer(firing)
    after = time.monotonic()
    assert seen["timer"] is firing and seen["settings"] is current_settings()
    assert seen["deadline"].seconds == deadline_module.TIMER_SECONDS  # functionTimeout less the margin
    # ...counted from the moment the firing arrived, not from when the job asked for it
    assert before + deadline_module.TIMER_SECONDS <= seen["deadline"].at <= after + deadline_module.TIMER_SECONDS
    assert seen["budget"].seconds == BUDGET_SECONDS and before + BUDGET_SECONDS <= seen["budget"].at
    assert 0 < seen["left"] <= deadline_module.TIMER_SECONDS


def test_a_past_due_firing_is_a_warning_naming_the_timer_and_the_job_still_runs(
        caplog: pytest.LogCaptureFixture) -> None:
    runs = []
    timer = make(lambda *args: runs.append(args))
    caplog.set_level(logging.INFO, logger="batchk8s")
    timer(TimerRequest(past_due=True))
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.getMessage() == ("sample_timer: this firing is past due "
                                    "(the host was down or busy at the scheduled time)")
    assert warning.name == "batchk8s.timers" and len(runs) == 1
    caplog.clear()
    timer(TimerRequest(past_due=False))
    assert caplog.records == [] and len(runs) == 2


def test_our_error_is_logged_with_every_detail_handed_on_and_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    error = ConfigError("the scale-set timer is not configured", details=[
        {"field": "AZURE_VMSS_NAME", "message": "is not set"}, {"field": "AZURE_VMSS_ACTION", "message": "is not set"},
        {"service": "Azure Resource Manager"}])
    failures: list[tuple[Settings, str, BatchK8sError]] = []

    def fail(*_: Any) -> None:
        raise error

    timer = make(fail, on_failure=lambda *args: failures.append(args), logger=logging.getLogger("batchk8s.vmss"))
    caplog.set_level(logging.INFO, logger="batchk8s")
    assert timer(TimerRequest(past_due=False)) is None
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("batchk8s.vmss", logging.ERROR,
         "sample_timer: not run: the scale-set timer is not configured; nothing was done"),
        ("batchk8s.vmss", logging.ERROR, "sample_timer:   AZURE_VMSS_NAME: is not set"),
        ("batchk8s.vmss", logging.ERROR, "sample_timer:   AZURE_VMSS_ACTION: is not set"),
        ("batchk8s.vmss", logging.ERROR, "sample_timer:   ?: ")]  # a detail without field or message
    assert not any(r.exc_info for r in caplog.records)  # what to fix, not a traceback every firing
    assert failures == [(current_settings(), "sample_timer", error)]


def test_an_upstream_error_without_details_is_one_line(caplog: pytest.LogCaptureFixture) -> None:
    def fail(*_: Any) -> None:
        raise UpstreamError("Azure Batch did not answer in time")

    caplog.set_level(logging.INFO, logger="batchk8s")
    make(fail)(TimerRequest(past_due=False))
    assert [r.getMessage() for r in caplog.records] == [
        "sample_timer: not run: Azure Batch did not answer in time; nothing was done"]


def test_an_unexpected_exception_is_logged_with_its_traceback_and_raised(caplog: pytest.LogCaptureFixture) -> None:
    """The host marks the invocation Failed (what failure alerts read) and does not retry a timer
    without a retry policy: it runs again at its next scheduled time (functions/timers.py)."""
    failures: list[Any] = []

    def bug(*_: Any) -> None:
        raise KeyError("rules")

    timer = make(bug, on_failure=lambda *args: failures.append(args))
    caplog.set_level(logging.INFO, logger="batchk8s")
    with pytest.raises(KeyError, match="rules"):
        timer(TimerRequest(past_due=False))
    [record] = caplog.records
    assert (record.levelno, record.getMessage()) == (logging.ERROR, "sample_timer: failed unexpectedly")
    assert record.exc_info and record.exc_info[0] is KeyError and "bug" in caplog.text  # the traceback
    assert failures == []  # on_failure is for our errors, which say what to fix


def test_an_unconfigured_job_is_not_run_and_says_nothing(caplog: pytest.LogCaptureFixture) -> None:
    runs = []
    asked: list[Settings] = []

    def configured(settings: Settings) -> bool:
        asked.append(settings)
        return False

    caplog.set_level(logging.DEBUG, logger="batchk8s")
    make(lambda *args: runs.append(args), configured=configured)(TimerRequest(past_due=True))
    assert runs == [] and caplog.records == [] and asked == [current_settings()]


def test_the_wrapper_keeps_the_jobs_identity_and_shows_the_binding_alone() -> None:
    timer = make(lambda *args: None)
    assert (timer.__name__, timer.__doc__) == ("sample_timer", "A sample timer.")
    assert list(inspect.signature(timer).parameters) == ["timer"]
    assert typing.get_type_hints(timer) == {"timer": func.TimerRequest, "return": type(None)}


# -- the app as the Functions worker indexes it --------------------------------------------------------


EXPECTED_TYPES = {"timerTrigger": func.TimerRequest, "httpTrigger": func.HttpRequest}


@pytest.mark.parametrize("name", sorted(indexed_functions()))
def test_every_function_takes_exactly_its_bindings_with_their_types(name: str) -> None:
    """What the Python worker checks when it loads an indexed function: the parameters of
    `inspect.signature` are the bindings' names (`$return` aside), and `typing.get_type_hints` gives the
    trigger's parameter its binding's type. `endpoint` and `timer_job` both inject more than that."""
    function = indexed_functions()[name]
    user_function = function.get_user_function()
    bindings = [b for b in function.get_bindings() if b.name != "$return"]
    assert list(inspect.signature(user_function).parameters) == [b.name for b in bindings]
    trigger = bindings[0]
    assert typing.get_type_hints(user_function)[trigger.name] is EXPECTED_TYPES[trigger.type]


def test_the_timers_declare_no_retry_policy() -> None:
    """Raising an unexpected exception is safe only because no retry policy (`@app.retry`, the function's
    `retry_policy` setting) re-runs a failed timer."""
    timers = {name: function for name, function in indexed_functions().items()
              if function.get_bindings()[0].type == "timerTrigger"}
    assert sorted(timers) == ["schedules_reconcile", "vmss_schedule"]
    assert {name: function.get_setting("retry_policy") for name, function in timers.items()} == dict.fromkeys(timers)
