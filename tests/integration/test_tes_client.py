"""The TES client against the fake TES server over HTTPS: every call, discovery, paging, wait, retries."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from batchk8s.errors import ConflictError, InputError, NotFoundError, UpstreamError, UpstreamTimeoutError
from batchk8s.tes import TaskWaitTimeout, TesClient
from batchk8s.tes.samples import SAMPLES_DIR
from batchk8s.tes.transports import DirectTransport
from tests.fakes.batch import FakeClock
from tests.fakes.tes import FakeTES

HELLO = json.loads((SAMPLES_DIR / "hello.json").read_text())


class Sleeps:
    """A sleep that advances the fake clock and remembers each pause."""

    def __init__(self, clock: FakeClock):
        self.clock = clock
        self.pauses: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.clock.advance(seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(speed=0)


@pytest.fixture
def sleeps(clock: FakeClock) -> Sleeps:
    return Sleeps(clock)


@pytest.fixture
def make(fake_service: Callable[..., Any], clock: FakeClock,
         sleeps: Sleeps) -> Callable[..., tuple[FakeTES, TesClient]]:
    def build(*, version: str = "1.1", path: str = "", fake_kw: dict[str, Any] | None = None,
              **client_kw: Any) -> tuple[FakeTES, TesClient]:
        transport_kw = {key: client_kw.pop(key) for key in ("token", "basic") if key in client_kw}
        tes = fake_service(FakeTES, version=version, clock=clock, **(fake_kw or {}))
        client = TesClient(DirectTransport(tes.url + path, **transport_kw), clock=clock.now, sleep=sleeps,
                           **client_kw)
        return tes, client

    return build


def task(name: str = "t", **extra: Any) -> dict[str, Any]:
    return {"name": name, "executors": [{"image": "alpine", "command": ["true"]}], **extra}


# -- discovery -------------------------------------------------------------------------------


def test_discovers_tes_11_once_and_reuses_the_probe_as_service_info(make: Callable[..., Any]) -> None:
    tes, client = make()
    info = client.service_info()
    assert info["type"]["artifact"] == "tes" and client.version == "1.1" and client.base == "/ga4gh/tes/v1"
    client.service_info()
    client.get(client.create(HELLO))
    assert tes.count("GET", r"service-info$") == 2  # the probe (reused once) + one real call
    assert tes.count("GET", r"^/v1/") == 0


def test_falls_back_to_tesk_04_at_v1_and_runs_every_call_there(make: Callable[..., Any], clock: FakeClock) -> None:
    tes, client = make(version="1.0")
    assert client.version == "1.0" and client.base == "/v1"
    assert [path for _, path, _ in tes.log] == ["/ga4gh/tes/v1/service-info", "/v1/tasks/service-info"]
    assert client.service_info()["name"] == "fake TES"
    task_id = client.create(HELLO)
    assert client.get(task_id)["state"] == "QUEUED"
    client.cancel(task_id)
    assert client.get(task_id)["state"] == "CANCELED"
    assert [t["id"] for t in client.iter_tasks()] == [task_id]


def test_tes_10_list_filters_are_applied_by_the_client(make: Callable[..., Any], clock: FakeClock) -> None:
    tes, client = make(version="1.0")
    ids = {name: tes.add_task(task(name, tags={"team": name[:1]})) for name in ("a1", "a2", "b1")}
    client.cancel(ids["a2"])
    clock.advance(100)
    listed = client.list(tags={"team": "a"}, state="COMPLETE")
    assert listed["tasks"] == [{"id": ids["a1"], "state": "COMPLETE"}]  # MINIMAL asked, MINIMAL returned
    wire = tes.log[-1][2]
    assert wire["view"] == ["BASIC"] and "tag_key" not in wire and "state" not in wire


def test_an_url_naming_the_api_root_skips_discovery(make: Callable[..., Any]) -> None:
    tes, client = make(path="/ga4gh/tes/v1")
    client.create(HELLO)
    assert [path for _, path, _ in tes.log] == ["/ga4gh/tes/v1/tasks"]


def test_no_tes_at_the_url_names_both_paths_tried(make: Callable[..., Any]) -> None:
    _, client = make(path="/elsewhere")
    with pytest.raises(UpstreamError) as caught:
        client.service_info()
    assert caught.value.status == 502 and caught.value.code == "TesNotFound"
    assert "/elsewhere/ga4gh/tes/v1 and /elsewhere/v1" in caught.value.message


# -- create, get, list, cancel ---------------------------------------------------------------


def test_create_validates_first_and_sends_nothing_when_invalid(make: Callable[..., Any]) -> None:
    tes, client = make()
    with pytest.raises(InputError) as caught:
        client.create({"executors": [{"image": "alpine", "command": "echo"}], "volume": []})
    assert {d["field"] for d in caught.value.details} == {"executors[0].command", "volume"}
    assert tes.count("POST") == 0
    task_id = client.create(HELLO)
    assert tes.tasks[task_id]["doc"] == HELLO


def test_get_shapes_the_task_by_view(make: Callable[..., Any], clock: FakeClock) -> None:
    tes, client = make()
    task_id = client.create(task(inputs=[{"path": "/in", "content": "inline"}]))
    clock.advance(60)
    assert client.get(task_id) == {"id": task_id, "state": "COMPLETE"}
    basic, full = client.get(task_id, "basic"), client.get(task_id, "FULL")
    assert "content" not in basic["inputs"][0] and full["inputs"][0]["content"] == "inline"
    assert "stdout" not in basic["logs"][0]["logs"][0] and full["logs"][0]["logs"][0]["stdout"] == "hello\n"
    assert full["logs"][0]["system_logs"] and "system_logs" not in basic["logs"][0]
    assert tes.log[-1][2]["view"] == ["FULL"]


def test_get_unknown_or_malformed_ids(make: Callable[..., Any]) -> None:
    tes, client = make()
    with pytest.raises(NotFoundError) as caught:
        client.get("task-missing")
    assert caught.value.status == 404 and "task-missing" in caught.value.message
    tes.reset_log()
    for bad in ("", "../tasks", "a b", "x" * 200, "a/b"):
        with pytest.raises(InputError):
            client.get(bad)
    with pytest.raises(InputError):
        client.get("task-1", view="EVERYTHING")
    assert tes.count("GET", "/tasks/") == 0


def test_paging_through_1000_tasks(make: Callable[..., Any]) -> None:
    tes, client = make()
    expected = [tes.add_task(task(f"bulk-{i}")) for i in range(1000)]
    client.service_info()
    tes.reset_log()
    assert [t["id"] for t in client.iter_tasks(page_size=100)] == expected
    assert tes.count("GET", r"/tasks$") == 10
    first = client.list()
    assert len(first["tasks"]) == 256 and first["next_page_token"]
    assert len([t["id"] for t in client.iter_tasks()]) == 1000
    with pytest.raises(InputError):
        client.list(page_size=2048)


def test_list_filters_follow_the_spec(make: Callable[..., Any], clock: FakeClock) -> None:
    tes, client = make()
    a = tes.add_task(task("align-1", tags={"project": "alice", "stage": "qc"}))
    b = tes.add_task(task("align-2", tags={"project": "bob"}))
    c = tes.add_task(task("call-1", tags={"project": "alice"}))
    client.cancel(b)
    clock.advance(100)

    def ids(**filters: Any) -> list[str]:
        return [t["id"] for t in client.iter_tasks(**filters)]

    assert ids(name_prefix="align") == [a, b]
    assert ids(state="canceled") == [b] and ids(state="COMPLETE") == [a, c]
    assert ids(tags={"project": "alice"}) == [a, c]
    assert ids(tags={"project": ""}) == [a, b, c]
    assert ids(tags={"project": "alice", "stage": "qc"}) == [a]
    assert ids(name_prefix="call", tags={"project": "bob"}) == []
    assert tes.log[-1][2]["tag_key"] == ["project"] and tes.log[-1][2]["tag_value"] == ["bob"]
    with pytest.raises(InputError):
        client.list(state="DONE")


def test_cancel_moves_through_canceling_to_canceled(make: Callable[..., Any], clock: FakeClock) -> None:
    tes, client = make()
    task_id = client.create(HELLO)
    client.cancel(task_id)
    assert client.get(task_id)["state"] == "CANCELING"
    clock.advance(tes.cancel_seconds)
    assert client.get(task_id)["state"] == "CANCELED"
    client.cancel(task_id)  # idempotent
    with pytest.raises(NotFoundError):
        client.cancel("task-gone")


def test_conflict_from_tes_is_a_409(make: Callable[..., Any]) -> None:
    tes, client = make()
    tes.inject(method="POST", path=r":cancel$", status=409, body={"code": 409, "message": "already done"})
    with pytest.raises(ConflictError) as caught:
        client.cancel("task-1")
    assert caught.value.status == 409 and "already done" in caught.value.message


# -- wait ------------------------------------------------------------------------------------


@pytest.mark.parametrize("outcome", ["COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "PREEMPTED"])
def test_wait_returns_on_each_terminal_state(make: Callable[..., Any], outcome: str) -> None:
    _, client = make()
    task_id = client.create(task(tags={"fake-outcome": outcome, "fake-seconds": "30"}))
    assert client.wait(task_id, timeout=600)["state"] == outcome


def test_wait_returns_on_canceled_after_canceling(make: Callable[..., Any]) -> None:
    _, client = make()
    task_id = client.create(HELLO)
    client.cancel(task_id)
    seen: list[str] = []
    final = client.wait(task_id, timeout=60, on_poll=lambda t: seen.append(t["state"]))
    assert final["state"] == "CANCELED" and seen[0] == "CANCELING"


def test_wait_times_out_on_a_task_that_stays_paused(make: Callable[..., Any], clock: FakeClock,
                                                    sleeps: Sleeps) -> None:
    _, client = make()
    task_id = client.create(task(tags={"fake-outcome": "PAUSED"}))
    start = clock.now()
    with pytest.raises(TaskWaitTimeout) as caught:
        client.wait(task_id, timeout=45)
    assert caught.value.task["state"] == "PAUSED" and caught.value.status == 504
    assert clock.now() - start == pytest.approx(45)  # the last pause is cut to the deadline
    assert "still PAUSED after 45 s" in caught.value.message


def test_wait_on_a_120_s_task_polls_sparingly_and_notices_the_end_soon(make: Callable[..., Any],
                                                                       clock: FakeClock) -> None:
    tes, client = make()
    tes.queue_seconds = tes.init_seconds = 0
    task_id = client.create(task(tags={"fake-seconds": "120"}))
    start = clock.now()
    assert client.wait(task_id, timeout=600)["state"] == "COMPLETE"
    assert tes.count("GET", r"/tasks/task-") <= 15
    assert clock.now() - (start + 120) <= 10


# -- retries, faults, credentials ------------------------------------------------------------


def test_get_is_retried_on_503_then_succeeds(make: Callable[..., Any], sleeps: Sleeps) -> None:
    tes, client = make()
    task_id = client.create(HELLO)
    tes.inject(method="GET", path=r"/tasks/", status=503, times=2)
    assert client.get(task_id)["id"] == task_id
    assert tes.count("GET", r"/tasks/") == 3 and len(sleeps.pauses) == 2
    assert sleeps.pauses[0] <= 0.25 <= sleeps.pauses[1]  # exponential backoff with jitter


def test_5xx_after_retries_is_a_502_naming_the_upstream_status(make: Callable[..., Any]) -> None:
    tes, client = make()
    client.service_info()
    tes.inject(method="GET", path=r"/tasks$", status=503, times=10, body={"message": "down for maintenance"})
    with pytest.raises(UpstreamError) as caught:
        client.list()
    assert caught.value.status == 502 and caught.value.upstream_status == 503
    assert "503" in caught.value.message and "down for maintenance" in caught.value.message
    assert tes.count("GET", r"/tasks$") == 4


def test_429_honours_retry_after(make: Callable[..., Any], sleeps: Sleeps) -> None:
    tes, client = make()
    client.service_info()
    tes.inject(method="POST", path=r"/tasks$", status=429, headers={"Retry-After": "3"})
    client.create(HELLO)
    assert sleeps.pauses == [3.0] and tes.count("POST") == 2


def test_create_is_not_retried_on_5xx_or_a_lost_answer(make: Callable[..., Any]) -> None:
    tes, client = make()
    client.service_info()
    tes.inject(method="POST", status=503)
    with pytest.raises(UpstreamError) as caught:
        client.create(HELLO)
    assert caught.value.upstream_status == 503 and tes.count("POST") == 1
    tes.inject(method="POST", reset=True)
    with pytest.raises(UpstreamError) as caught:
        client.create(HELLO)
    assert "may or may not have been created" in caught.value.message and tes.count("POST") == 2
    assert not tes.tasks


def test_get_survives_a_connection_reset(make: Callable[..., Any]) -> None:
    tes, client = make()
    task_id = client.create(HELLO)
    tes.inject(method="GET", path=r"/tasks/", reset=True)
    assert client.get(task_id)["id"] == task_id


def test_refused_connections_are_retried_then_reported(make: Callable[..., Any], sleeps: Sleeps) -> None:
    tes, _ = make()
    url = tes.url
    tes.stop()
    client = TesClient(DirectTransport(url + "/ga4gh/tes/v1"), sleep=sleeps)
    with pytest.raises(UpstreamError) as caught:
        client.create(HELLO)  # never connected, so even create may retry
    assert caught.value.code == "TesUnreachable" and "connection refused" in caught.value.message
    assert len(sleeps.pauses) == 3


def test_slow_tes_is_a_504(make: Callable[..., Any]) -> None:
    tes, client = make(timeout=0.2)
    task_id = client.create(HELLO)
    tes.inject(method="GET", path=r"/tasks/", delay=0.4, times=4)
    with pytest.raises(UpstreamTimeoutError) as caught:
        client.get(task_id)
    assert caught.value.status == 504 and tes.count("GET", r"/tasks/") == 4
    tes.inject(method="POST", delay=0.4)
    with pytest.raises(UpstreamTimeoutError) as caught:
        client.create(HELLO)
    assert "may or may not" in caught.value.message and tes.count("POST") == 2


def test_a_400_from_tes_is_its_failure_and_never_echoes_a_sas_signature(make: Callable[..., Any]) -> None:
    tes, client = make()
    client.service_info()
    tes.inject(method="POST", status=400,
               body={"code": 400, "message": "cannot fetch https://a.blob.core.windows.net/c/b?sv=1&sig=SECRETSIG"})
    with pytest.raises(UpstreamError) as caught:
        client.create(HELLO)
    error = caught.value
    assert error.status == 502 and error.upstream_status == 400 and error.code == "TesBadRequest"
    assert "SECRETSIG" not in json.dumps(error.to_dict()) and "sig=***" in error.message


@pytest.mark.parametrize("auth", ["token", "basic"])
def test_credentials_are_sent_and_a_refusal_never_shows_them(make: Callable[..., Any], auth: str) -> None:
    secret = "s3cret-value-0123456789"
    fake_kw = {"token": secret} if auth == "token" else {"basic": ("tes-user", secret)}
    client_kw = {"token": secret} if auth == "token" else {"basic": ("tes-user", secret)}
    tes, client = make(fake_kw=fake_kw, **client_kw)
    assert client.get(client.create(HELLO))["state"] == "QUEUED"
    wrong_kw = {"token": "wrong"} if auth == "token" else {"basic": ("tes-user", "wrong")}
    wrong = TesClient(DirectTransport(tes.url, **wrong_kw))
    with pytest.raises(UpstreamError) as caught:
        wrong.service_info()
    assert caught.value.code == "TesUnauthorized" and caught.value.upstream_status == 401
    assert "wrong" not in json.dumps(caught.value.to_dict()) and secret not in json.dumps(caught.value.to_dict())


def test_sequential_calls_reuse_one_connection(make: Callable[..., Any]) -> None:
    tes, client = make()
    for _ in range(30):
        client.get(client.create(HELLO))
    assert tes.connections == 1
