"""Fan-out of scale set start: 1 scale set vs 50, Uniform and Flexible, against the ARM fake with 100 ms per request.

Everything real but the services: azure-identity and azure-mgmt-compute talk HTTPS to the fake Entra ID
and the fake ARM. For each orchestration mode prints the median wall time of several runs for 1 and 50
scale sets of 4 deallocated instances, their ratio (target: 50 scale sets take at most 3x one), and ARM
requests per scale set and per VM. A Uniform set costs 3 requests (get, list instances, one set-level
start); a Flexible set has no set-level start, so it costs get + filtered VM list + one start per VM
(2 + 4 = 6, 1.5 per VM). Asserts nothing. Run from the repository root: python bench/bench_vmss_fanout.py
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
MODES = ("Uniform", "Flexible")


def tls_context(directory: str) -> ssl.SSLContext:
    import trustme

    ca = trustme.CA()
    bundle = os.path.join(directory, "ca.pem")
    ca.cert_pem.write_to_path(bundle)
    os.environ["REQUESTS_CA_BUNDLE"] = os.environ["SSL_CERT_FILE"] = bundle
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


def run(arm: FakeARM, aad: FakeAAD, mode: str, count: int) -> tuple[float, float]:
    """Seconds to start `count` deallocated scale sets in `mode`, and ARM requests per scale set."""
    prefix = mode[:4].lower()
    names = [f"{prefix}-{index:03d}" for index in range(count)]
    for name in names:  # a Flexible set's members are VMs named after it; a Uniform set's are instance ids
        members = {(f"{name}_{i}" if mode == "Flexible" else str(i)): "deallocated" for i in range(INSTANCES)}
        arm.add_scale_set(RG, name, members, orchestration=mode)
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
    figures: dict[tuple[str, int], tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as directory:
        context = tls_context(directory)
        for mode in MODES:  # a fresh fake per mode: the VM list of a resource group holds only this mode's sets
            with FakeAAD(context) as aad, FakeARM(context, aad=aad, latency=LATENCY, operation_delay=3600) as arm:
                run(arm, aad, mode, 1)  # warm: token, imports
                for count in (1, 50):
                    samples = [run(arm, aad, mode, count) for _ in range(RUNS)]
                    figures[(mode, count)] = (statistics.median(s[0] for s in samples), samples[-1][1])
    print(f"ARM latency {LATENCY * 1000:.0f} ms per request, {INSTANCES} instances per scale set, median of "
          f"{RUNS} runs, up to {vmss.MAX_WORKERS} scale sets and {vmss.MAX_VM_WORKERS} single-VM calls at once")
    for mode in MODES:
        one, fifty = figures[(mode, 1)][0], figures[(mode, 50)][0]
        per_set = figures[(mode, 50)][1]
        print(f"  {mode:<8}  1 scale set : {one:.3f} s, {figures[(mode, 1)][1]:.1f} ARM requests per scale set")
        print(f"  {mode:<8} 50 scale sets: {fifty:.3f} s, {per_set:.1f} ARM requests per scale set, "
              f"{per_set / INSTANCES:.2f} per VM")
        print(f"  {mode:<8} ratio 50/1   : {fifty / one:.2f}x (target <= 3x)")


if __name__ == "__main__":
    main()
