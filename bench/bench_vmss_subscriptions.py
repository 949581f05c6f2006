"""Scale sets spread over subscriptions: 3 subscriptions x 20 scale sets vs 60 in one, against the ARM fake
with 100 ms per request.

Everything real but the services: azure-identity and azure-mgmt-compute talk HTTPS to the fake Entra ID
and the fake ARM, which serves every subscription from one endpoint as ARM does. The 60 scale sets are
named by full resource id (the `vmss` doors) and started at once; prints the median wall time of several
runs for each layout, ARM requests per scale set, and the token requests of the whole benchmark (one
credential for all subscriptions: one token, reused by every run). Asserts nothing.
Run from the repository root: python bench/bench_vmss_subscriptions.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from batchk8s import vmss
from batchk8s.settings import load_settings
from bench.bench_vmss_fanout import LATENCY, RUNS, tls_context
from tests.fakes.aad import FakeAAD
from tests.fakes.arm import FakeARM, arm_env

SUBSCRIPTIONS = ("5ca1ab1e-0000-4000-8000-00000000c0de", "22222222-2222-4222-8222-222222222222",
                 "33333333-3333-4333-8333-333333333333")
PER_SUBSCRIPTION = 20
INSTANCES = 4
ID = "/subscriptions/{}/resourceGroups/rg-bench/providers/Microsoft.Compute/virtualMachineScaleSets/{}"


def run(arm: FakeARM, aad: FakeAAD, subscriptions: tuple[str, ...], per: int, tag: str) -> tuple[float, float]:
    """Seconds to start every scale set and ARM requests per scale set, for one layout."""
    ids = []
    for sub in subscriptions:
        for index in range(per):
            name = f"{tag}-{index:03d}"
            arm.add_scale_set("rg-bench", name, {str(i): "deallocated" for i in range(INSTANCES)}, subscription=sub)
            ids.append(ID.format(sub, name))
    settings = load_settings(arm_env(aad, arm, AZURE_VMSS_NAME=",".join(ids)))
    arm.reset_log()
    started = time.perf_counter()
    reports = vmss.apply_action(settings, "start", vmss.configured_targets(settings))
    elapsed = time.perf_counter() - started
    if {report.outcome for report in reports} != {"accepted"}:
        raise SystemExit(f"unexpected: {[vmss.summary_line(r) for r in reports if r.outcome != 'accepted'][:3]}")
    return elapsed, arm.count() / len(ids)


def main() -> None:
    layouts = {"3 subscriptions x 20": (SUBSCRIPTIONS, PER_SUBSCRIPTION), "1 subscription x 60": (SUBSCRIPTIONS[:1],
                                                                                                3 * PER_SUBSCRIPTION)}
    figures = {}
    with tempfile.TemporaryDirectory() as directory:
        context = tls_context(directory)
        with FakeAAD(context) as aad, FakeARM(context, aad=aad, latency=LATENCY, operation_delay=3600) as arm:
            run(arm, aad, SUBSCRIPTIONS[:1], 1, "warm")  # token, imports
            for label, (subscriptions, per) in layouts.items():
                samples = [run(arm, aad, subscriptions, per, f"r{n}{label[0]}") for n in range(RUNS)]
                figures[label] = (statistics.median(s[0] for s in samples), samples[-1][1])
            tokens = aad.count("POST")
    print(f"ARM latency {LATENCY * 1000:.0f} ms per request, {INSTANCES} instances per Uniform scale set, "
          f"median of {RUNS} runs, up to {vmss.MAX_WORKERS} scale sets at once")
    for label, (seconds, per_set) in figures.items():
        print(f"  {label}: {seconds:.3f} s, {per_set:.1f} ARM requests per scale set")
    print(f"  token requests in all {2 * RUNS + 1} runs: {tokens}")


if __name__ == "__main__":
    main()
