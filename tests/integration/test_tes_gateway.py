"""The TES 1.1 endpoint (/api/ga4gh/tes/v1) as workflow engines use it: py-tes over HTTP, in-process.

The indexed functions run behind the host adapter (tests/fuzz/adapter.py) served by a loopback WSGI
server on 127.0.0.1, with the fake TES behind the app in both of its shapes (TES 1.1 as specified,
TESK as deployed). py-tes, the client Snakemake's TES executor is built on, drives the lifecycle;
every answer the endpoint gives with 200 is checked against the vendored TES 1.1 document's response
schema for its operation (tests/contract/test_fake_tes.py's check, with no difference allowed).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
import requests
import tes
from tes.client import send_request
from tes.models import ListTasksResponse
from tes.utils import unmarshal

from batchk8s import settings as settings_module
from batchk8s import storage
from batchk8s import tes as batchk8s_tes
from batchk8s.functions.http import MAX_BODY
from tests.app_index import indexed_functions
from tests.contract.test_fake_tes import differences
from tests.fakes.batch import FakeClock
from tests.fakes.tes import STATES_11, FakeTES
from tests.fuzz.adapter import FunctionsWsgi

TOKEN = "gw-token-" + "0123456789abcdef" * 3
OLD_TOKEN = "gw-rotated-" + "fedcba9876543210" * 3
USER, PASSWORD = "nextflow", "gw-password-" + "5a" * 16
ROOT = "/api/ga4gh/tes/v1"
OPERATIONS = (("GET", "/service-info", "GET /service-info"), ("POST", "/tasks", "POST /tasks"),
              ("GET", "/tasks", "GET /tasks"), ("POST", ":cancel", "POST /tasks/{id}:cancel"),
              ("GET", "/tasks/", "GET /tasks/{id}"))


@dataclass
class Exchange:
    method: str
    path: str
    query: dict[str, list[str]]
    status: int
    body: bytes


class Recorder:
    """WSGI middleware keeping every exchange with the app, to hold each answer to the TES 1.1 document."""

    def __init__(self, app: FunctionsWsgi):
        self.app = app
        self.exchanges: list[Exchange] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        status: list[str] = []

        def keep(line: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            status.append(line)
            return start_response(line, headers, *rest)

        body = b"".join(self.app(environ, keep))
        self.exchanges.append(Exchange(environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""),
                                       parse_qs(environ.get("QUERY_STRING", "")), int(status[0].split()[0]), body))
        return [body]


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """The access log would go to stderr on every request."""


GATEWAY = {"TES_GATEWAY_TOKENS": f"{TOKEN}, {OLD_TOKEN}", "TES_GATEWAY_USERNAME": USER,
           "TES_GATEWAY_PASSWORD": PASSWORD}


@pytest.fixture
def gateway_env(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """TES behind the app as for the /api/tes doors (tests/integration/conftest.py), plus the gateway's
    credentials."""
    for name, value in GATEWAY.items():
        monkeypatch.setenv(name, value)
    settings_module.clear_cache()
    return {**env, **GATEWAY}


@pytest.fixture
def recorder(gateway_env: dict[str, str]) -> Recorder:
    return Recorder(FunctionsWsgi(indexed_functions(), "a-function-key-the-gateway-never-needs"))


@pytest.fixture
def base(recorder: Recorder) -> Iterator[str]:
    """The app's /api on a loopback WSGI server: what engines are configured with (py-tes adds /ga4gh/tes/v1)."""
    server: WSGIServer = make_server("127.0.0.1", 0, recorder, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/api"
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def engine(base: str) -> tes.HTTPClient:
    return tes.HTTPClient(base, token=TOKEN, timeout=30)


def task(name: str, **tags: str) -> tes.Task:
    return tes.Task(name=name, tags=tags or None,
                    executors=[tes.Executor(image="alpine", command=["echo", name])])


def filtered(engine: tes.HTTPClient, **params: Any) -> ListTasksResponse:
    """GET /tasks with the TES 1.1 filters py-tes's list_tasks does not expose, through py-tes's own request
    machinery (its URLs, credentials and models), as the engines built on it send them."""
    paths = [url + "/tasks" for url in engine.urls]
    response = send_request(paths=paths, kwargs_requests=engine._request_params(params=params))
    return unmarshal(response.json(), ListTasksResponse)


def operation_of(exchange: Exchange) -> str:
    path = exchange.path[len(ROOT):]
    return next(name for method, fragment, name in OPERATIONS
                if exchange.method == method and (path == fragment or (fragment != "/tasks" and fragment in path)))


def assert_every_answer_is_tes_1_1(recorder: Recorder) -> set[str]:
    """Each 200 from the endpoint validates against the document's response schema; returns the operations seen."""
    seen = set()
    for exchange in recorder.exchanges:
        if exchange.status != 200 or not exchange.path.startswith(ROOT):
            continue
        operation = operation_of(exchange)
        minimal = exchange.query.get("view", ["MINIMAL"])[0] == "MINIMAL"
        assert differences(operation, exchange.body, minimal) == set(), (operation, exchange.body[:500])
        seen.add(operation)
    return seen


def ids(page: ListTasksResponse) -> list[str]:
    return [entry.id for entry in page.tasks or []]


def test_py_tes_drives_the_whole_lifecycle(engine: tes.HTTPClient, fake: FakeTES, clock: FakeClock,
                                           recorder: Recorder) -> None:
    info = engine.get_service_info()
    assert (info.type["artifact"], info.type["version"]) == ("tes", "1.1.0")  # py-tes keeps `type` as a dict
    backend = "TESK (TES 1.0" if fake.tesk else "fake TES (TES 1.1"
    assert backend in info.description and info.storage[-1] == "azureblob://"
    created = [engine.create_task(task("gw-align-1", project="p1", stage="align")),
               engine.create_task(task("gw-align-2", project="p1")),
               engine.create_task(task("other-3", project="p2"))]
    assert len(set(created)) == 3 and all(isinstance(task_id, str) and task_id for task_id in created)

    # get, in each view
    minimal = engine.get_task(created[0], "MINIMAL")
    assert (minimal.id, minimal.state, minimal.executors, minimal.name) == (created[0], "QUEUED", None, None)
    basic = engine.get_task(created[0], "BASIC")
    assert (basic.name, basic.tags, basic.executors[0].command) == ("gw-align-1", {"project": "p1", "stage": "align"},
                                                                   ["echo", "gw-align-1"])
    clock.advance(3)  # every task RUNNING
    full = engine.get_task(created[0], "FULL")
    assert full.state == "RUNNING" and full.logs and full.logs[0].outputs == []

    # list: paging walks every task once, in the server's order
    listed, token, pages = [], None, 0
    while True:
        page = engine.list_tasks(view="MINIMAL", page_size=1, page_token=token)
        listed += ids(page)
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert listed == fake.in_list_order(created) and pages == 3
    assert {entry.state for entry in engine.list_tasks(view="BASIC").tasks} == {"RUNNING"}

    # list: each filter, whether or not TESK applies it (tesk-api 1.1.0 ignores them all)
    assert set(ids(filtered(engine, name_prefix="gw-align"))) == set(created[:2])
    assert set(ids(filtered(engine, tag_key="project", tag_value="p1"))) == set(created[:2])
    assert set(ids(filtered(engine, tag_key="stage"))) == {created[0]}
    assert set(ids(filtered(engine, tag_key=["project", "stage"], tag_value=["p1", "align"]))) == {created[0]}
    assert set(ids(filtered(engine, state="RUNNING", view="BASIC"))) == set(created)
    assert ids(filtered(engine, state="COMPLETE")) == []

    # cancel: {} and the state moves on; a second cancel is no error
    assert engine.cancel_task(created[2]) is None
    canceled = engine.get_task(created[2], "MINIMAL").state
    assert canceled == ("CANCELED" if fake.tesk else "CANCELING")
    engine.cancel_task(created[2])
    assert set(ids(filtered(engine, state=canceled))) == {created[2]}

    # wait: the others end as the server says
    clock.set_speed(50.0)
    ended = engine.wait(created[0], timeout=30)
    assert ended.state == "COMPLETE"
    clock.set_speed(0)
    engine.cancel_task(created[0])  # nothing left to cancel: still {} (GET keeps saying COMPLETE)
    assert engine.get_task(created[0], "MINIMAL").state == "COMPLETE"
    clock.advance(10)
    assert engine.get_task(created[2], "MINIMAL").state == "CANCELED"
    states = {entry.state for entry in engine.list_tasks(view="FULL").tasks}
    assert states <= set(STATES_11) and "COMPLETE" in states

    assert assert_every_answer_is_tes_1_1(recorder) == {name for _, _, name in OPERATIONS}


def test_basic_credentials_and_a_rotated_token_are_accepted(base: str, fake: FakeTES,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for engine in (tes.HTTPClient(base, user=USER, password=PASSWORD), tes.HTTPClient(base, token=OLD_TOKEN)):
        task_id = engine.create_task(task("gw-basic"))
        assert engine.get_task(task_id, "MINIMAL").id == task_id
    assert fake.count("POST") == 2
    for secret in (TOKEN, OLD_TOKEN, PASSWORD, base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()):
        assert secret not in caplog.text


@pytest.mark.azurite
def test_an_azureblob_input_reaches_tes_as_a_read_only_sas(base: str, fake: FakeTES, azurite: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AzureWebJobsStorage", azurite)
    monkeypatch.setenv("AZURE_STORAGE_TESK_DIRECTORY", "gw-tes-inputs")
    settings_module.clear_cache()
    container = storage.blob_service(settings_module.current_settings()).get_container_client("gw-tes-inputs")
    if not container.exists():
        container.create_container()
    container.upload_blob("reads.fq", b"@r1\nACGT\n+\n!!!!\n", overwrite=True)
    engine = tes.HTTPClient(base, token=TOKEN)
    submitted = task("gw-blob")
    submitted.inputs = [tes.Input(path="/data/reads.fq", url="azureblob:///reads.fq")]
    task_id = engine.create_task(submitted)
    url = fake.tasks[task_id]["doc"]["inputs"][0]["url"]
    assert "/gw-tes-inputs/reads.fq?" in url and "sp=r&" in url
    assert requests.get(url, timeout=10).content == b"@r1\nACGT\n+\n!!!!\n"


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


WRONG = {
    "none": None,
    "empty bearer": "Bearer ",
    "wrong token": "Bearer " + TOKEN[:-1] + "x",
    "token prefix": "Bearer " + TOKEN[:20],
    "both tokens": f"Bearer {TOKEN},{OLD_TOKEN}",
    "wrong password": _basic(USER, PASSWORD + "x"),
    "wrong user": _basic("someone", PASSWORD),
    "password as token": "Bearer " + PASSWORD,
    "token as password": _basic(USER, TOKEN),
    "malformed basic": "Basic %%%not-base64",
    "no colon": "Basic " + base64.b64encode(USER.encode()).decode(),
    "function key scheme": "key " + TOKEN,
}


@pytest.mark.parametrize("credential", sorted(WRONG))
def test_no_request_without_a_valid_credential_reaches_tes(base: str, fake: FakeTES, credential: str,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    header = WRONG[credential]
    headers = {"Authorization": header} if header is not None else {}
    task_id = fake.add_task({"name": "existing", "executors": [{"image": "alpine", "command": ["true"]}]})
    fake.reset_log()
    body = json.dumps({"executors": [{"image": "alpine", "command": ["true"]}]})
    calls = [("GET", "/service-info", None), ("POST", "/tasks", body), ("POST", "/tasks", "x" * (MAX_BODY + 1)),
             ("GET", "/tasks?state=RUNNING", None), ("GET", f"/tasks/{task_id}?view=FULL", None),
             ("POST", f"/tasks/{task_id}:cancel", None)]
    for method, path, data in calls:
        answer = requests.request(method, base + "/ga4gh/tes/v1" + path, headers=headers, data=data, timeout=10)
        assert answer.status_code == 401, (method, path, answer.text)
        challenge = answer.headers["WWW-Authenticate"]
        assert challenge.startswith('Bearer realm="batchk8s-tes"') and 'Basic realm="batchk8s-tes"' in challenge
        assert ('error="invalid_token"' in challenge) == bool(header and header.startswith("Bearer"))
        assert answer.json()["error"]["code"] == "Unauthorized"
    assert fake.log == []
    assert fake.state_of(task_id) == "QUEUED"
    for secret in (TOKEN, OLD_TOKEN, PASSWORD, TOKEN[:20]):
        assert secret not in caplog.text


def test_only_basic_configured_challenges_only_basic(base: str, fake: FakeTES,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TES_GATEWAY_TOKENS")
    settings_module.clear_cache()
    answer = requests.get(base + "/ga4gh/tes/v1/tasks", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == 'Basic realm="batchk8s-tes", charset="UTF-8"'
    assert fake.log == []


def test_without_gateway_credentials_configured_the_endpoint_is_closed(base: str, fake: FakeTES,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TES_GATEWAY_TOKENS", "TES_GATEWAY_USERNAME", "TES_GATEWAY_PASSWORD"):
        monkeypatch.delenv(name)
    settings_module.clear_cache()
    answer = requests.get(base + "/ga4gh/tes/v1/tasks", headers={"Authorization": "Bearer anything"}, timeout=10)
    assert answer.status_code == 503
    assert {detail["field"] for detail in answer.json()["error"]["details"]} == {
        "TES_GATEWAY_TOKENS", "TES_GATEWAY_USERNAME", "TES_GATEWAY_PASSWORD"}
    monkeypatch.setenv("TES_GATEWAY_TOKENS", "short")
    settings_module.clear_cache()
    answer = requests.get(base + "/ga4gh/tes/v1/tasks", headers={"Authorization": "Bearer short"}, timeout=10)
    assert answer.status_code == 503 and "short" not in answer.text
    assert answer.json()["error"]["details"][0]["field"] == "TES_GATEWAY_TOKENS"
    assert fake.log == []


def authorized(base: str, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, base + "/ga4gh/tes/v1" + path, headers={"Authorization": f"Bearer {TOKEN}"},
                            timeout=30, **kwargs)


def test_an_invalid_task_is_a_400_naming_each_json_path_and_nothing_reaches_tes(base: str, fake: FakeTES) -> None:
    fake.reset_log()
    bad = {"name": 3, "executors": [{"image": "alpine", "command": []}, {"image": "", "comand": ["x"]}],
           "inputs": [{"path": "relative/in.txt", "url": "https://example.org/in"}], "state": "RUNNING"}
    answer = authorized(base, "POST", "/tasks", json=bad)
    assert answer.status_code == 400
    fields = {detail["field"] for detail in answer.json()["error"]["details"]}
    assert {"name", "executors[0].command", "executors[1].image", "executors[1].comand", "executors[1].command",
            "inputs[0].path", "state"} <= fields
    for body, field in ((b"{", "body"), (b"[]", "body"), (b"", "body")):
        answer = authorized(base, "POST", "/tasks", data=body)
        assert answer.status_code == 400 and answer.json()["error"]["details"][0]["field"] == field
    answer = authorized(base, "GET", "/tasks", params={"view": "EVERYTHING"})
    assert (answer.status_code, answer.json()["error"]["details"][0]["field"]) == (400, "view")
    answer = authorized(base, "GET", "/tasks", params={"page_size": "0"})
    assert (answer.status_code, answer.json()["error"]["details"][0]["field"]) == (400, "page_size")
    assert fake.count("POST") == 0


def test_a_body_over_1_mib_is_a_413_and_nothing_reaches_tes(base: str, fake: FakeTES) -> None:
    fake.reset_log()
    huge = json.dumps({"executors": [{"image": "alpine", "command": ["echo", "x" * MAX_BODY]}]})
    answer = authorized(base, "POST", "/tasks", data=huge)
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "PayloadTooLarge"
    assert fake.log == []


def test_an_unknown_id_is_a_404(base: str, fake: FakeTES) -> None:
    for method, path in (("GET", "/tasks/task-nowhere"), ("POST", "/tasks/task-nowhere:cancel")):
        answer = authorized(base, method, path)
        assert (answer.status_code, answer.json()["error"]["code"]) == (404, "TaskNotFound"), path


def test_tesk_failing_is_a_502_and_too_slow_a_504(base: str, fake: FakeTES) -> None:
    batchk8s_tes.client_for(settings_module.current_settings()).timeout = 0.3
    fake.inject(method="POST", path=r"/tasks$", status=500, body={"message": "Internal Server Error"})
    answer = authorized(base, "POST", "/tasks", json={"executors": [{"image": "alpine", "command": ["true"]}]})
    assert (answer.status_code, answer.json()["error"]["upstreamStatus"]) == (502, 500)
    fake.inject(method="GET", status=503, times=10)
    assert authorized(base, "GET", "/tasks").status_code == 502
    fake.faults.clear()
    fake.inject(method="GET", delay=2.0, times=10)
    answer = authorized(base, "GET", "/tasks/task-slow")
    assert (answer.status_code, answer.json()["error"]["code"]) == (504, "UpstreamTimeout")
