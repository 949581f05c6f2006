"""One reconcile tick of the schedule document: 1,000 rules over 200 scale sets.

Figures: CPU time (process time, median of RUNS) of the pure part of a tick - every rule's latest
firing in its own zone and the per-target decision - with the state already loaded; the one-off
document parse (cached per text afterwards); and the storage side of real `reconcile` ticks over 200
targets against a real Azurite, cold (a new storage client: new connections) and warm, with nothing
due and with every target due: state reads (the issue's budget: at most one request per target; the
design: one listing), writes (claim + outcome per due target), history appends, and wall time. Acting
is replaced by an instant "accepted" and the hold-tag lookup by "no tags", so only storage is timed.
Target (issue 6): <= 100 ms CPU per tick beyond storage, <= one state request per target.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from batchk8s.schedules.document import parse_text  # noqa: E402
from batchk8s.schedules.planner import TargetState, decide, latest_by_rule  # noqa: E402

RUNS = 15
TARGETS = 200
RULES_PER_TARGET = 5
ZONES = ("Europe/Berlin", "America/New_York", "Asia/Kolkata", "UTC", "Asia/Tokyo", "Australia/Sydney")
NOW = datetime(2025, 10, 26, 9, 17, 0, tzinfo=UTC)  # a fall-back day in Europe: DST paths are exercised


def document() -> str:
    """200 scale sets, five rules each (alternating start/deallocate at distinct times), in six zones."""
    rules = []
    for target in range(TARGETS):
        for k in range(RULES_PER_TARGET):
            rules.append({"name": f"r{target}-{k}", "schedule": f"0 {k * 10} {6 + 3 * k} * * Mon-Fri",
                          "timeZone": ZONES[target % len(ZONES)], "action": ("start", "deallocate")[k % 2],
                          "targets": [{"resourceGroup": "rg-bench", "name": f"vmss-{target:03d}"}]})
    return json.dumps({"rules": rules})


def cpu(work) -> float:
    start = time.process_time()
    work()
    return time.process_time() - start


def planner_figures() -> dict[str, object]:
    text = document()
    parse_seconds = cpu(lambda: parse_text(text, now=NOW))
    doc = parse_text(text, now=NOW)
    targets = [(key, rules) for key, rules in doc.by_key.items()]
    # Preloaded state: half the targets are up to date, half have an old firing (due: catch-up path).
    latest = latest_by_rule(doc.rules, NOW)
    states = {}
    for index, (key, rules) in enumerate(targets):
        newest = max(t for r in rules if (t := latest[r.index]) is not None).astimezone(UTC)
        states[key] = TargetState(firing=newest if index % 2 else newest - timedelta(days=2))
    targets_by_key = {key: doc.explicit_targets[i] for i, (key, _) in enumerate(targets)}
    outcome: dict[str, int] = {}

    def tick() -> None:
        latest_now = latest_by_rule(doc.rules, NOW)
        outcome.clear()
        for key, rules in targets:
            decision = decide(targets_by_key[key], rules, latest_now, states[key], NOW)
            outcome[decision.kind] = outcome.get(decision.kind, 0) + 1

    samples = [cpu(tick) for _ in range(RUNS)]
    return {"rules": len(doc.rules), "targets": len(targets), "decisions": dict(outcome),
            "tick_cpu_ms_median": round(statistics.median(samples) * 1000, 2),
            "tick_cpu_ms_min": round(min(samples) * 1000, 2), "tick_cpu_ms_max": round(max(samples) * 1000, 2),
            "document_parse_cpu_ms_once": round(parse_seconds * 1000, 2)}


@contextmanager
def azurite():
    """A real Azurite blob endpoint (as the test session starts it); yields its connection string."""
    import socket

    from tests.conftest import AZURITE_ACCOUNT, AZURITE_KEY, _free_port, azurite_binary

    port = _free_port()
    process = subprocess.Popen([str(azurite_binary()), "--blobHost", "127.0.0.1", "--blobPort", str(port),
                                "--inMemoryPersistence", "--skipApiVersionCheck", "--loose", "--silent"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SystemExit("Azurite did not start") from None
                time.sleep(0.1)
        yield (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
               f"BlobEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};")
    finally:
        process.terminate()
        try:
            process.wait(2)
        except subprocess.TimeoutExpired:  # Azurite can ignore SIGTERM for a while
            process.kill()
            process.wait()


def state_figures() -> dict[str, object]:
    import requests

    from batchk8s import storage
    from batchk8s.schedules import reconcile as reconcile_module
    from batchk8s.settings import load_settings

    gets: list[str] = []
    send = requests.Session.send

    def counting(session, request, **kwargs):  # every GET the storage SDK sends, to check the counters
        if request.method == "GET":
            gets.append("list" if "comp=list" in request.url else "read")
        return send(session, request, **kwargs)

    requests.Session.send = counting
    # Storage only: acting answers "accepted" at once, and no hold tags are looked up in ARM.
    reconcile_module._Tick._act = lambda self, decisions: {
        d.target.key: reconcile_module.Outcome(d, "applied", "accepted") for d in decisions}
    reconcile_module._fill_tags = lambda settings, resolved, targets: {}
    every_minute = json.dumps({"rules": [{"name": "bench", "schedule": "0 * * * * *", "action": "start", "targets": [
        {"resourceGroup": "rg-bench", "name": f"vmss-{target:03d}"} for target in range(TARGETS)]}]})
    with azurite() as connection:
        settings = load_settings({"AzureWebJobsStorage": connection, "BATCHK8S_STATE_CONTAINER": "bench-state"})
        minute = NOW.replace(second=0)
        reconcile_module.reconcile(settings, now=minute, document_text=every_minute)  # every target has state
        figures: dict[str, object] = {}

        def measure(label: str, cold: bool, due: bool, runs: int = 5) -> None:
            nonlocal minute
            samples, requests_, http = [], {}, []
            for _ in range(runs):
                if due:
                    minute += timedelta(minutes=1)
                if cold:
                    storage.clear_cache()
                gets.clear()
                started = time.perf_counter()
                report = reconcile_module.reconcile(settings, now=minute + timedelta(seconds=0 if due else 30),
                                                    document_text=every_minute)
                samples.append(time.perf_counter() - started)
                requests_ = {k: v for k, v in report.requests.items() if k != "armListings"}
                http = sorted(gets)
                assert report.counts() == ({"applied": TARGETS} if due else {"up-to-date": TARGETS}), report.counts()
            reads = requests_.get("list", 0) + requests_.get("read", 0)
            figures[label] = {"state_reads": reads, "http_gets": len(http), "reads_per_target": reads / TARGETS,
                              "requests": requests_, "wall_ms_median": round(statistics.median(samples) * 1000, 1)}

        measure("cold, nothing due", cold=True, due=False)
        measure("warm, nothing due", cold=False, due=False)
        measure("cold, all 200 due", cold=True, due=True)
        measure("warm, all 200 due", cold=False, due=True)
        storage.clear_cache()
        return figures


def main() -> None:
    planner = planner_figures()
    print(json.dumps({"planner": planner}, indent=2))
    state = state_figures()
    print(json.dumps({"ticks_against_azurite": state}, indent=2))
    verdict = "OK" if planner["tick_cpu_ms_median"] <= 100 else "OVER BUDGET"
    print(f"tick CPU median {planner['tick_cpu_ms_median']} ms for {planner['rules']} rules / "
          f"{planner['targets']} targets (budget 100 ms): {verdict}")
    worst = max(figures["state_reads"] for figures in state.values())
    print(f"state reads per tick: at most {worst} request(s) for {TARGETS} targets (budget {TARGETS}): "
          f"{'OK' if worst <= TARGETS else 'OVER BUDGET'}")


if __name__ == "__main__":
    main()
