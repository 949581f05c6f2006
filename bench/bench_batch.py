"""Batch: adding 1,000 tasks, and monitoring a job to completion, against the fake Batch account.

Everything real but the services: azure-identity and azure-batch talk HTTPS to the fake Entra ID
and the fake Batch data plane.

1. Adding tasks with 100 ms per request: the median time of adding 1 task (one request) and of
   adding 1,000 (target: at most 10 create requests and at most 3x one request).
2. Monitoring a job whose tasks finish 120 s (fake time) after they start: list requests used and
   how long after the real end the monitor noticed it (targets: at most 20 requests, within 15 s).
   Service time is a frozen fake clock that the monitor's sleeps advance, so this takes milliseconds.

Prints medians of several runs and request counts; asserts nothing. Run from the repository root:
python bench/bench_batch.py
"""

from __future__ import annotations

import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from batchk8s.batch import jobs, submission
from batchk8s.batch.client import clear_cache
from batchk8s.batch.polling import Waiter
from batchk8s.batch.tasks import TaskSpec, to_task_options
from batchk8s.settings import Settings, load_settings
from bench.bench_vmss_fanout import tls_context
from tests.fakes.aad import FakeAAD
from tests.fakes.batch import FakeBatch, FakeClock, TaskOutcome

LATENCY = 0.1
RUNS = 5
TASKS = 1000
TASK_SECONDS = 120.0
ADD = r"/addtaskcollection$"


def settings_for(aad: FakeAAD, batch: FakeBatch) -> Settings:
    return load_settings({"AZURE_AD_TENANT_ID": aad.tenant, "AZURE_AD_TOKEN_EP": aad.url,
                          "AZURE_SP_CLIENT_ID": aad.client_id, "AZURE_SP_CLIENT_SECRET": aad.client_secret,
                          "AZURE_BATCH_ACCOUNT_URL": batch.url})


def options(count: int) -> list[Any]:
    return [to_task_options(TaskSpec(f"task-{i:05d}", "/bin/bash -c true"), str) for i in range(count)]


def add(settings: Settings, batch: FakeBatch, job_id: str, count: int) -> tuple[float, int]:
    """Seconds to add `count` tasks to a new job, and the create requests that took."""
    batch.latency = 0.0
    jobs.create_job(settings, job_id, "bench-pool")
    tasks = options(count)
    batch.latency = LATENCY
    before = batch.count("POST", ADD)
    started = time.perf_counter()
    result = jobs.add_tasks(settings, job_id, tasks)
    elapsed = time.perf_counter() - started
    if result["added"] != count:
        raise SystemExit(f"added {result['added']} of {count}")
    return elapsed, batch.count("POST", ADD) - before


def adding(context: ssl.SSLContext) -> dict[int, tuple[float, int]]:
    with FakeAAD(context) as aad, FakeBatch(context, aad=aad) as batch:
        settings = settings_for(aad, batch)
        add(settings, batch, "warm", 1)  # token, connections, imports
        figures = {}
        for count in (1, TASKS):
            samples = [add(settings, batch, f"add-{count}-{run}", count) for run in range(RUNS)]
            figures[count] = (statistics.median(s[0] for s in samples), max(s[1] for s in samples))
        clear_cache()
        return figures


def monitoring(context: ssl.SSLContext, offset: float) -> tuple[int, float]:
    """List requests and detection delay (fake seconds) for a job whose tasks end 120 s after they start;
    the monitor starts `offset` fake seconds after the tasks were added."""
    clock = FakeClock(speed=0)
    with FakeAAD(context) as aad, FakeBatch(context, aad=aad, clock=clock) as batch:
        settings = settings_for(aad, batch)
        batch.default_task = TaskOutcome(seconds=TASK_SECONDS)
        # 7 nodes x 8 slots (Batch's limit for 2 cores): the 50 tasks run side by side, as the timing assumes.
        client_pool = {"id": "bench-pool", "vmSize": "standard_d2_v3", "targetDedicatedNodes": 7,
                       "taskSlotsPerNode": 8,
                       "virtualMachineConfiguration": {"imageReference": {"publisher": "canonical",
                                                                          "offer": "ubuntu-24_04-lts",
                                                                          "sku": "server"},
                                                       "nodeAgentSKUId": "batch.node.ubuntu 24.04"}}
        from azure.batch import models as m

        from batchk8s.batch.client import batch_client

        batch_client(settings).create_pool(m.BatchPoolCreateOptions(client_pool))
        clock.advance(600)  # nodes ready
        jobs.create_job(settings, "watch", "bench-pool")
        jobs.add_tasks(settings, "watch", options(50))
        end = clock.now() + TASK_SECONDS
        clock.advance(offset)
        before = batch.count("GET", r"/jobs/watch/tasks$")
        report = jobs.monitor(settings, "watch", timeout=3600, waiter=Waiter(clock=clock.now, sleep=clock.advance),
                              outputs=False)
        if not report.succeeded:
            raise SystemExit("the job did not succeed")
        requests = batch.count("GET", r"/jobs/watch/tasks$") - before
        noticed = clock.now() - end
        clear_cache()
        return requests, noticed


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        context = tls_context(directory)
        added = adding(context)
        watched = [monitoring(context, offset) for offset in (0.0, 0.5, 1.5, 3.0, 7.5)]
    one, many = added[1][0], added[TASKS][0]
    print(f"adding tasks: {LATENCY * 1000:.0f} ms per request, median of {RUNS} runs, "
          f"{submission.TASKS_PER_REQUEST} tasks per request, up to {submission.MAX_CONCURRENT_REQUESTS} at once")
    print(f"  1 task     : {one:.3f} s, {added[1][1]} create request(s)")
    print(f"  {TASKS} tasks : {many:.3f} s, {added[TASKS][1]} create requests (target <= 10)")
    print(f"  ratio      : {many / one:.2f}x one request (target <= 3x)")
    requests = [w[0] for w in watched]
    delays = [w[1] for w in watched]
    print(f"monitoring a job whose tasks finish after {TASK_SECONDS:.0f} s (fake time), {len(watched)} runs "
          "with the monitor starting 0-7.5 s after the tasks")
    print(f"  list requests     : median {statistics.median(requests):.0f}, max {max(requests)} (target <= 20)")
    print(f"  noticed completion: median {statistics.median(delays):.1f} s, max {max(delays):.1f} s after the end "
          "(target <= 15 s)")


if __name__ == "__main__":
    main()
