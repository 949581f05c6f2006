"""What every timer function shares, as `endpoint` (functions/http.py) is for HTTP routes.

A timer is written as `def job(timer, settings, deadline, budget) -> None` and wrapped with
`@timer_job(budget=...)` under `@bp.timer_trigger`. For each firing the wrapper

* starts the firing's `Deadline` (the host's functionTimeout less a margin, `Deadline.for_timer`) and
  the job's `budget` (how long it follows the operations it started, `batchk8s.timer_budget`), both
  from the moment the firing arrives;
* loads the settings, and returns at once when `configured` says the job has nothing to work on;
* logs a past-due firing as a warning (`<name>: this firing is past due ...`);
* logs a `BatchK8sError` as `<name>: not run: <message>; nothing was done` with one
  `<name>:   <field>: <message>` line per detail, hands it to `on_failure` (the webhook, say) and
  returns: the log line says what to fix, where a traceback every firing would not;
* logs anything else with its traceback (`<name>: failed unexpectedly`) and raises it again.

Why raise the unexpected: Microsoft's timer trigger reference ("Retry behavior",
articles/azure-functions/functions-bindings-timer.md) says a timer that fails is not retried; it runs
again at its next scheduled time. Only a retry policy (`@app.retry`) re-runs a failed timer, and no
batchk8s function declares one (tests/unit/test_timer_job.py checks the indexed app). So raising
costs no extra run, and it marks the invocation Failed in Application Insights and the portal's
invocation list, where alerts on failed executions look; swallowing a bug would report it as
Succeeded. Our own errors are the firing's expected outcome (a bad configuration, Azure refusing)
and are already reported in full, so they do not raise.

The Functions worker matches the wrapper's parameters to the bindings (`inspect.signature` and
`typing.get_type_hints` on the indexed function): the wrapper shows the job's first parameter alone,
with its name (the trigger's `arg_name`) and its `func.TimerRequest` annotation.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable

import azure.functions as func

from batchk8s.deadline import Deadline
from batchk8s.errors import BatchK8sError
from batchk8s.settings import Settings, current_settings

log = logging.getLogger("batchk8s.timers")

Job = Callable[[func.TimerRequest, Settings, Deadline, Deadline], None]


def timer_job(*, budget: Callable[[], Deadline], configured: Callable[[Settings], bool] | None = None,
              on_failure: Callable[[Settings, str, BatchK8sError], None] | None = None,
              logger: logging.Logger = log) -> Callable[[Job], Callable[[func.TimerRequest], None]]:
    """Wrap a timer job (see the module's docstring). `budget` makes the job's budget at the firing;
    `configured` (default: always) says whether there is anything to do; `on_failure(settings, name,
    error)` runs after a BatchK8sError is logged; `logger` is where the job's lines go."""

    def decorate(job: Job) -> Callable[[func.TimerRequest], None]:
        name = job.__name__
        binding = next(iter(inspect.signature(job).parameters.values()))

        @functools.wraps(job)
        def wrapper(timer: func.TimerRequest) -> None:
            deadline = Deadline.for_timer()  # from the moment the firing arrives
            run_budget = budget()
            settings: Settings | None = None
            try:
                settings = current_settings()
                if configured is not None and not configured(settings):
                    return
                if timer.past_due:
                    logger.warning("%s: this firing is past due (the host was down or busy at the scheduled time)",
                                   name)
                job(timer, settings, deadline, run_budget)
            except BatchK8sError as error:
                logger.error("%s: not run: %s; nothing was done", name, error.message)
                for detail in error.details:
                    logger.error("%s:   %s: %s", name, detail.get("field", "?"), detail.get("message", ""))
                if on_failure is not None and settings is not None:
                    on_failure(settings, name, error)
            except Exception:
                logger.exception("%s: failed unexpectedly", name)
                raise

        # What the worker indexes: the binding's parameter alone (functools.wraps would otherwise lead
        # inspect.signature and get_type_hints through __wrapped__ to the job's injected parameters).
        wrapper.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [binding.replace(annotation=func.TimerRequest)], return_annotation=None)
        wrapper.__annotations__ = {binding.name: func.TimerRequest, "return": None}
        return wrapper

    return decorate
