"""Fan-out of scale set start: 1 scale set vs 50, against the ARM fake with 100 ms per request.

Everything real but the services: azure-identity and azure-mgmt-compute talk HTTPS to the fake Entra ID
and the fake ARM. Prints the median wall time of several runs for each size, their ratio (target: 50
scale sets take at most 3x one), and ARM requests per scale set (target: at most 3 plus LRO polls).
Asserts nothing. Run from the repository root: python bench/bench_vmss_fanout.py
"""

from __future__ import annotations

import os
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from batchk8s import vmss
from batchk8s.settings import load_settings
from tests.fakes.aad import FakeAAD
from tests.fakes.arm import FakeARM, arm_env

LATENCY = 0.1
INSTANCES = 4
RUNS = 5
RG = "rg-bench"


def tls_context(directory: str) -> ssl.SSLContext:
    import trustme

    ca = trustme.CA()
    bundle = os.path.join(directory, "ca.pem")
    ca.cert_pem.write_to_path(bundle)
    os.environ["REQUESTS_CA_BUNDLE"] = os.environ["SSL_CERT_FILE"] = bundle
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


def run(arm: FakeARM, aad: FakeAAD, count: int) -> tuple[float, float]:
    """Seconds to start `count` deallocated scale sets, and ARM requests per scale set."""
    names = [f"vmss-{index:03d}" for index in range(count)]
    for name in names:
        arm.add_scale_set(RG, name, {str(i): "deallocated" for i in range(INSTANCES)})
    settings = load_settings(arm_env(aad, arm, AZURE_RES_GROUP_NAME=RG, AZURE_VMSS_NAME=",".join(names)))
    arm.reset_log()
    started = time.perf_counter()
    reports = vmss.apply_action(settings, "start", vmss.configured_targets(settings))
    elapsed = time.perf_counter() - started
    outcomes = {report.outcome for report in reports}
    if outcomes != {"accepted"}:
        raise SystemExit(f"unexpected outcomes {outcomes}: {[vmss.summary_line(r) for r in reports][:3]}")
    return elapsed, arm.count() / count


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        context = tls_context(directory)
        with FakeAAD(context) as aad, FakeARM(context, aad=aad, latency=LATENCY, operation_delay=3600) as arm:
            run(arm, aad, 1)  # warm: token, imports
            figures = {}
            for count in (1, 50):
                samples = [run(arm, aad, count) for _ in range(RUNS)]
                figures[count] = (statistics.median(s[0] for s in samples), samples[-1][1])
    one, fifty = figures[1][0], figures[50][0]
    print(f"ARM latency {LATENCY * 1000:.0f} ms per request, {INSTANCES} instances per scale set, "
          f"median of {RUNS} runs, up to {vmss.MAX_WORKERS} scale sets at once")
    print(f"  1 scale set : {one:.3f} s, {figures[1][1]:.1f} ARM requests per scale set")
    print(f"  50 scale sets: {fifty:.3f} s, {figures[50][1]:.1f} ARM requests per scale set")
    print(f"  ratio 50/1   : {fifty / one:.2f}x (target <= 3x)")


if __name__ == "__main__":
    main()
