"""The TES client against the fake TES server over HTTPS: every call, discovery, paging, wait, retries.

Each test runs against both shapes of TES that matter (the `mode` fixture): TES 1.1 as the
specification says, and TESK as deployed (tesk-api 1.1.0, which speaks TES 1.0 and ignores list
filters); where the servers differ, the test states what each answers and what batchk8s makes of it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from batchk8s.errors import ConflictError, InputError, NotFoundError, UpstreamError, UpstreamTimeoutError
from batchk8s.tes import TaskAlreadyEnded, TaskWaitTimeout, TesClient
from batchk8s.tes.client import version_from_info
from batchk8s.tes.samples import SAMPLES_DIR
from batchk8s.tes.transports import DirectTransport
from tests.fakes.batch import FakeClock
from tests.fakes.tes import MODES, TESK_OUTCOMES, FakeTES

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


def builder(mode: str, fake_service: Callable[..., Any], clock: FakeClock,
            sleeps: Sleeps) -> Callable[..., tuple[FakeTES, TesClient]]:
    def build(*, version: str = "1.1", path: str = "", fake_kw: dict[str, Any] | None = None,
              **client_kw: Any) -> tuple[FakeTES, TesClient]:
        transport_kw = {key: client_kw.pop(key) for key in ("token", "basic") if key in client_kw}
        tes = fake_service(FakeTES, version=version, mode=mode, clock=clock, **(fake_kw or {}))
        client = TesClient(DirectTransport(tes.url + path, **transport_kw), clock=clock.now, sleep=sleeps,
                           **client_kw)
        return tes, client

    return build


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make(mode: str, fake_service: Callable[..., Any], clock: FakeClock,
         sleeps: Sleeps) -> Callable[..., tuple[FakeTES, TesClient]]:
    """A fake TES in the test's mode and a client of it."""
    return builder(mode, fake_service, clock, sleeps)


@pytest.fixture
def make_spec(fake_service: Callable[..., Any], clock: FakeClock, sleeps: Sleeps) -> Callable[..., Any]:
    """For what only the specification's servers do (TES 1.0 at /v1, CANCELING)."""
    return builder("spec", fake_service, clock, sleeps)


@pytest.fixture
def make_tesk(fake_service: Callable[..., Any], clock: FakeClock, sleeps: Sleeps) -> Callable[..., Any]:
    """For what only tesk-api does (a 400 for cancelling an ended task, expiring page tokens)."""
    return builder("tesk", fake_service, clock, sleeps)


def task(name: str = "t", **extra: Any) -> dict[str, Any]:
    return {"name": name, "executors": [{"image": "alpine", "command": ["true"]}], **extra}



# -- discovery -------------------------------------------------------------------------------


def test_discovers_the_root_once_and_reuses_the_probe_as_service_info(make: Callable[..., Any]) -> None:
    tes, client = make()
    info = client.service_info()
    # TESK serves /ga4gh/tes/v1 but says TES 1.0 (artifact "TES"): the version is what service-info says
    assert info["type"]["artifact"] == ("TES" if tes.tesk else "tes") and client.base == "/ga4gh/tes/v1"
    assert client.version == ("1.0" if tes.tesk else "1.1") and client.server_filters is not tes.tesk
    described = client.describe()
    assert described["versionFrom"] == "service-info" and described["tesVersion"] == client.version
    client.get(client.create(HELLO))
    assert tes.count("GET", r"service-info$") == 2  # the probe (reused once) + describe's own call
    assert tes.count("GET", r"^/v1/") == 0


def test_falls_back_to_tesk_04_at_v1_and_runs_every_call_there(make_spec: Callable[..., Any],
                                                               clock: FakeClock) -> None:
    tes, client = make_spec(version="1.0")
    assert client.version == "1.0" and client.base == "/v1"
    assert client.describe()["versionFrom"] == "path"  # its service-info has no type.version
    tes.reset_log()
    assert client.service_info()["name"] == "fake TES"
    assert [path for _, path, _ in tes.log] == ["/v1/tasks/service-info"]
    task_id = client.create(HELLO)
    assert client.get(task_id)["state"] == "QUEUED"
    assert client.cancel(task_id).requested
    assert client.get(task_id)["state"] == "CANCELED"
    assert [t["id"] for t in client.iter_tasks()] == [task_id]


def test_the_probe_follows_tesk_04_at_v1(make_spec: Callable[..., Any]) -> None:
    tes, client = make_spec(version="1.0")
    client.service_info()
    assert [path for _, path, _ in tes.log] == ["/ga4gh/tes/v1/service-info", "/v1/tasks/service-info"]


@pytest.mark.parametrize(("info", "version"), [
    ({"type": {"group": "org.ga4gh", "artifact": "TES", "version": "1.0"}}, "1.0"),
    ({"type": {"artifact": "tes", "version": "1.1.0"}}, "1.1"),
    ({"type": {"version": "v1.2"}}, "1.2"),
    ({"type": {"version": 1.0}}, "1.0"),
    ({"type": {"version": "latest"}}, None),
    ({"type": {"version": True}}, None),
    ({"type": "tes"}, None),
    ({"name": "TES 1.0 server"}, None),
    ([], None),
])
def test_version_from_service_info(info: Any, version: str | None) -> None:
    assert version_from_info(info) == version


def test_a_silent_service_info_at_ga4gh_path_means_1_1(make_spec: Callable[..., Any]) -> None:
    tes, client = make_spec()
    tes.inject(method="GET", path=r"service-info$", status=200, body={"name": "no type here"})
    assert client.version == "1.1" and client.describe()["versionFrom"] == "path"


def test_tes_10_list_filters_are_applied_by_the_client(make_spec: Callable[..., Any], clock: FakeClock) -> None:
    tes, client = make_spec(version="1.0")
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
    # the version is still read from service-info, once, when a call needs it (and the answer is reused)
    assert client.version == ("1.0" if tes.tesk else "1.1")
    assert client.service_info()["type"]["version"].startswith(client.version)
    assert tes.count("GET", r"service-info$") == 1


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
    # TESK keeps stdout "" in BASIC (for py-tes); the spec leaves it out: either way no output is shown
    assert not basic["logs"][0]["logs"][0].get("stdout") and full["logs"][0]["logs"][0]["stdout"] == "hello\n"
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
    expected = tes.in_list_order([tes.add_task(task(f"bulk-{i}")) for i in range(1000)])
    client.service_info()
    tes.reset_log()
    assert [t["id"] for t in client.iter_tasks(page_size=100)] == expected
    assert tes.count("GET", r"/tasks$") == 10
    first = client.list()
    if tes.tesk:  # tesk-api passes no limit to Kubernetes unless asked: one page holds everything
        assert len(first["tasks"]) == 1000 and "next_page_token" not in first
    else:
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

    assert ids(name_prefix="align") == tes.in_list_order([a, b])
    assert ids(state="canceled") == [b] and ids(state="COMPLETE") == tes.in_list_order([a, c])
    assert ids(tags={"project": "alice"}) == tes.in_list_order([a, c])
    assert ids(tags={"project": ""}) == tes.in_list_order([a, b, c])
    assert ids(tags={"project": "alice", "stage": "qc"}) == [a]
    assert ids(name_prefix="call", tags={"project": "bob"}) == []
    wire = tes.log[-1][2]
    if tes.tesk:  # TESK would ignore them: the client filters the BASIC pages itself and sends no tag filter
        assert "tag_key" not in wire and wire["view"] == ["BASIC"]
    else:
        assert wire["tag_key"] == ["project"] and wire["tag_value"] == ["bob"]
    assert client.list(state="COMPLETE", view="MINIMAL")["tasks"] == [{"id": i, "state": "COMPLETE"}
                                                                       for i in tes.in_list_order([a, c])]
    with pytest.raises(InputError):
        client.list(state="DONE")


def test_filtered_pages_against_tesk_give_the_same_tasks_as_a_filtering_server(
        make: Callable[..., Any], clock: FakeClock) -> None:
    tes, client = make()
    made = [tes.add_task(task(f"{'keep' if i % 3 == 0 else 'drop'}-{i}", tags={"n": str(i % 2)})) for i in range(30)]
    clock.advance(100)
    wanted = [made[i] for i in range(30) if i % 3 == 0 and i % 2 == 0]
    pages = []
    token = None
    while True:
        page = client.list(name_prefix="keep", tags={"n": "0"}, page_size=4, page_token=token)
        pages.append(page["tasks"])
        token = page.get("next_page_token")
        if not token:
            break
    assert [t["id"] for page in pages for t in page] == tes.in_list_order(wanted)
    assert all(len(page) <= 4 for page in pages)
    assert len(pages) == (8 if tes.tesk else 2)  # TESK: 30 tasks in pages of 4, each filtered here


def test_cancel_is_idempotent(make: Callable[..., Any], clock: FakeClock) -> None:
    tes, client = make()
    task_id = client.create(HELLO)
    tes.reset_log()
    first = client.cancel(task_id)
    assert first.requested and first.to_dict() == {"id": task_id, "canceling": True, "state": "QUEUED"}
    assert [(method, path) for method, path, _ in tes.log] == [  # a MINIMAL read, then the cancel
        ("GET", f"/ga4gh/tes/v1/tasks/{task_id}"), ("POST", f"/ga4gh/tes/v1/tasks/{task_id}:cancel")]
    if tes.tesk:  # TES 1.0 has no CANCELING: TESK labels the job and the task is CANCELED at once
        assert client.get(task_id)["state"] == "CANCELED"
    else:
        assert client.get(task_id)["state"] == "CANCELING"
        assert client.cancel(task_id).to_dict() == {"id": task_id, "canceling": False, "state": "CANCELING"}
        clock.advance(tes.cancel_seconds)
        assert client.get(task_id)["state"] == "CANCELED"
    again = client.cancel(task_id)  # TESK would answer 400 to a second cancel: nothing is sent
    assert again.to_dict() == {"id": task_id, "canceling": False, "state": "CANCELED"}
    assert tes.count("POST", r":cancel$") == 1
    with pytest.raises(NotFoundError):
        client.cancel("task-gone")


@pytest.mark.parametrize("outcome", ["COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR"])
def test_cancelling_a_task_that_ended_is_a_409_naming_its_state(make: Callable[..., Any], clock: FakeClock,
                                                              outcome: str) -> None:
    tes, client = make()
    task_id = client.create(task(tags={"fake-outcome": outcome}))
    clock.advance(60)
    with pytest.raises(TaskAlreadyEnded) as caught:
        client.cancel(task_id)
    error = caught.value
    assert error.status == 409 and error.exit_code == 2 and error.code == "TaskAlreadyEnded"
    assert error.details == [{"field": "state", "message": outcome}] and outcome in error.message
    assert tes.count("POST", r":cancel$") == 0


def test_tesk_400_for_a_task_that_ended_meanwhile_is_recognised(make_tesk: Callable[..., Any],
                                                                clock: FakeClock) -> None:
    tes, client = make_tesk()
    ended = client.create(task(tags={"fake-seconds": "1"}))
    canceled = client.create(task(tags={"fake-seconds": "600"}))
    running = client.create(task(tags={"fake-seconds": "600"}))
    clock.advance(30)
    client.cancel(canceled)
    # our read says RUNNING; by the time TESK looks, the task has ended and it answers 400
    for task_id in (ended, canceled):
        tes.inject(method="GET", path=f"/tasks/{task_id}$", status=200, body={"id": task_id, "state": "RUNNING"})
    with pytest.raises(TaskAlreadyEnded) as caught:
        client.cancel(ended)
    assert caught.value.state == "COMPLETE"
    assert client.cancel(canceled).to_dict() == {"id": canceled, "canceling": False, "state": "CANCELED"}
    assert tes.count("POST", r":cancel$") == 3  # the first cancel of `canceled`, then one refused each
    # a 400 for a task still running is TES's own refusal, reported as such
    tes.inject(method="POST", path=r":cancel$", status=400, body={"status": 400, "message": "no"})
    with pytest.raises(UpstreamError) as refused:
        client.cancel(running)
    assert refused.value.code == "TesBadRequest" and refused.value.upstream_status == 400


def test_conflict_from_tes_is_a_409(make: Callable[..., Any]) -> None:
    tes, client = make()
    task_id = client.create(task(tags={"fake-seconds": "600"}))
    tes.inject(method="POST", path=r":cancel$", status=409, body={"code": 409, "message": "already done"})
    with pytest.raises(ConflictError) as caught:
        client.cancel(task_id)
    assert caught.value.status == 409 and "already done" in caught.value.message


def test_an_expired_page_token_is_the_callers_400(make: Callable[..., Any], clock: FakeClock) -> None:
    tes, client = make()
    for i in range(5):
        tes.add_task(task(f"t{i}"))
    token = client.list(page_size=2)["next_page_token"]
    assert len(client.list(page_size=2, page_token=token)["tasks"]) == 2  # fresh: accepted
    tes.add_task(task("newer"))
    clock.advance(tes.continue_ttl)
    if tes.tesk:  # Kubernetes compacted the token's revision: 410 inside, tesk-api's 500 outside
        with pytest.raises(InputError) as caught:
            client.list(page_size=2, page_token=token)
        assert caught.value.details[0]["field"] == "page_token" and "first page" in caught.value.message
        assert tes.log[-1][2] == {"view": ["MINIMAL"], "page_size": ["1"]}  # the check was the cheapest listing
    else:  # the spec's fake keeps its tokens; a forged one is refused with a 400
        assert client.list(page_size=2, page_token=token)["tasks"]
    with pytest.raises(InputError) as forged:
        client.list(page_token="bm90LWEtdG9rZW4=")
    assert forged.value.details[0]["field"] == "page_token"


def test_a_failing_tesk_is_not_blamed_on_the_page_token(make: Callable[..., Any]) -> None:
    tes, client = make()
    for i in range(3):
        tes.add_task(task(f"t{i}"))
    token = client.list(page_size=1)["next_page_token"]
    tes.inject(method="GET", path=r"/tasks$", status=500, times=2, body={"status": 500, "message": "etcd down"})
    with pytest.raises(UpstreamError) as caught:
        client.list(page_size=1, page_token=token)
    assert caught.value.status == 502 and caught.value.upstream_status == 500 and "etcd down" in caught.value.message


# -- wait ------------------------------------------------------------------------------------


@pytest.mark.parametrize("outcome", ["COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "PREEMPTED"])
def test_wait_returns_on_each_terminal_state(make: Callable[..., Any], outcome: str) -> None:
    tes, client = make()
    task_id = client.create(task(tags={"fake-outcome": outcome, "fake-seconds": "30"}))
    # TESK has no PREEMPTED: a pod lost to the node ends the task SYSTEM_ERROR
    expected = outcome if not tes.tesk or outcome in TESK_OUTCOMES else "SYSTEM_ERROR"
    assert client.wait(task_id, timeout=600)["state"] == expected


def test_wait_returns_on_canceled(make: Callable[..., Any]) -> None:
    tes, client = make()
    task_id = client.create(HELLO)
    client.cancel(task_id)
    seen: list[str] = []
    final = client.wait(task_id, timeout=60, on_poll=lambda t: seen.append(t["state"]))
    assert final["state"] == "CANCELED" and seen[0] == ("CANCELED" if tes.tesk else "CANCELING")


def test_wait_times_out_on_a_task_that_never_ends(make: Callable[..., Any], clock: FakeClock,
                                                  sleeps: Sleeps) -> None:
    tes, client = make()
    tags, state = tes.never_ending()
    task_id = client.create(task(tags=tags))
    start = clock.now()
    with pytest.raises(TaskWaitTimeout) as caught:
        client.wait(task_id, timeout=45)
    assert caught.value.task["state"] == state and caught.value.status == 504
    assert clock.now() - start == pytest.approx(45)  # the last pause is cut to the deadline
    assert f"still {state} after 45 s" in caught.value.message


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
