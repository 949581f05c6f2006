"""TES client figures against the fake TES over HTTPS.

Targets (issue 5):
- 200 submissions over `direct` open at most 4 TCP connections and add at most 2 ms of client
  overhead per call over the fake's own latency. Shown two ways: per-call time minus the injected
  latency (an upper bound: it includes the fake's own TLS and JSON work), and per-call time minus a
  bare http.client keep-alive round trip of the same request to the same fake (the client's share);
- `wait` on a task that runs 120 s (fake time) makes at most 15 status requests and notices the end
  within 10 s.
Medians of RUNS runs.
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from batchk8s.tes import TesClient  # noqa: E402
from batchk8s.tes.transports import DirectTransport  # noqa: E402
from tests.fakes.batch import FakeClock  # noqa: E402
from tests.fakes.tes import FakeTES  # noqa: E402

RUNS = 5
SUBMISSIONS = 200
THREADS = 8
LATENCY = 0.005
TASK = json.loads((ROOT / "tesk-tasks" / "hello.json").read_text())


def tls_context(folder: Path) -> ssl.SSLContext:
    import trustme

    ca = trustme.CA()
    bundle = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    os.environ["REQUESTS_CA_BUNDLE"] = str(bundle)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


def bare_round_trips(fake: FakeTES, path: str) -> list[float]:
    """The same POST over one raw keep-alive http.client connection: the fake's own time per call."""
    host, port = fake.url.removeprefix("https://").split(":")
    connection = http.client.HTTPSConnection(host, int(port), context=ssl.create_default_context(
        cafile=os.environ["REQUESTS_CA_BUNDLE"]))
    body = json.dumps(TASK).encode()
    times = []
    for _ in range(SUBMISSIONS):
        start = time.perf_counter()
        connection.request("POST", path, body, {"Content-Type": "application/json"})
        connection.getresponse().read()
        times.append(time.perf_counter() - start)
    connection.close()
    return times


def submissions(context: ssl.SSLContext) -> dict[str, float]:
    """Sequential calls for the per-call overhead, then a concurrent burst for the connection count."""
    with FakeTES(context, latency=LATENCY) as fake:
        client = TesClient(DirectTransport(fake.url))
        client.service_info()
        bare = statistics.median(bare_round_trips(fake, client.base + "/tasks"))
        times = []
        for _ in range(SUBMISSIONS):
            start = time.perf_counter()
            client.create(TASK)
            times.append(time.perf_counter() - start)
        sequential_connections = fake.connections - 1  # minus the bare connection
        fake.reset_log()
        burst = TesClient(DirectTransport(fake.url))
        burst.service_info()
        start = time.perf_counter()
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(lambda _: burst.create(TASK), range(SUBMISSIONS)))
        elapsed = time.perf_counter() - start
        median = statistics.median(times)
        return {"overhead_ms": (median - LATENCY) * 1000, "bare_ms": (bare - LATENCY) * 1000,
                "client_ms": (median - bare) * 1000, "sequential_connections": sequential_connections,
                "burst_connections": fake.connections, "burst_seconds": elapsed,
                "created": len(fake.tasks)}


def waiting(context: ssl.SSLContext) -> dict[str, float]:
    clock = FakeClock(speed=0)
    with FakeTES(context, clock=clock) as fake:
        fake.queue_seconds = fake.init_seconds = 0.0
        fake.run_seconds = 120.0
        client = TesClient(DirectTransport(fake.url), clock=clock.now, sleep=clock.advance)
        task_id = client.create(TASK)
        start = clock.now()
        state = client.wait(task_id, timeout=600)["state"]
        assert state == "COMPLETE", state
        return {"status_requests": fake.count("GET", r"/tasks/task-"), "detection_delay_s": clock.now() - start - 120}


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        context = tls_context(Path(folder))
        runs = [submissions(context) for _ in range(RUNS)]
        waits = [waiting(context) for _ in range(RUNS)]
    print(f"TES direct: {SUBMISSIONS} submissions, fake latency {LATENCY * 1000:.0f} ms, median of {RUNS} runs")
    print(f"  per call over the injected latency (sequential): {statistics.median(r['overhead_ms'] for r in runs):.2f}"
          " ms (target <= 2 ms); of which the fake itself (a bare http.client keep-alive round trip): "
          f"{statistics.median(r['bare_ms'] for r in runs):.2f} ms, the client: "
          f"{statistics.median(r['client_ms'] for r in runs):.2f} ms")
    print(f"  TCP connections, sequential: {max(r['sequential_connections'] for r in runs)};"
          f" {THREADS} threads: {max(r['burst_connections'] for r in runs)} (target <= 4)")
    print(f"  {THREADS}-thread burst: {statistics.median(r['burst_seconds'] for r in runs):.3f} s for "
          f"{SUBMISSIONS} submissions")
    print("TES wait on a 120 s task (fake time):")
    print(f"  status requests: {statistics.median(w['status_requests'] for w in waits):.0f} (target <= 15);"
          f" end noticed after {statistics.median(w['detection_delay_s'] for w in waits):.1f} s (target <= 10 s)")


if __name__ == "__main__":
    main()
