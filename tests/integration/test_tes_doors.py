"""The TES routes (as the Functions host indexes them) and the `tes` command, against the fake TES.

Tests that talk to TES run against both of its shapes (the `fake` fixture): TES 1.1 as the
specification says, and TESK as deployed (tesk-api 1.1.0: TES 1.0, filters ignored, cancel 400s).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func
import pytest
import requests

from batchk8s import settings as settings_module
from batchk8s import storage, tes
from batchk8s.cli import main
from batchk8s.settings import load_settings
from tests.app_index import indexed_functions
from tests.conftest import ROOT
from tests.fakes.tes import TESK_OUTCOMES, FakeTES

ROUTES = {
    "tes_create": ("tes/tasks", ["POST"]),
    "tes_list": ("tes/tasks", ["GET"]),
    "tes_get": ("tes/tasks/{id}", ["GET"]),
    "tes_cancel": ("tes/tasks/{id}/cancel", ["POST"]),
    "tes_service_info": ("tes/service-info", ["GET"]),
}
HOST = "https://app.example.net"


def functions() -> dict[str, Any]:
    return {name: f for name, f in indexed_functions().items() if name in ROUTES}


def call(name: str, path_and_query: str, body: bytes = b"", **route: str) -> tuple[int, Any, dict[str, str]]:
    """Invoke a function as the host would: the URL with its query, params, route params and body."""
    method = ROUTES[name][1][0]
    url = HOST + "/api/" + path_and_query
    params = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))  # the host keeps `?name=` as ""
    request = func.HttpRequest(method, url, body=body, headers={}, params=params, route_params=route)
    response = functions()[name].get_user_function()(request)
    text = response.get_body().decode()
    return response.status_code, json.loads(text) if text else None, dict(response.headers)


def test_the_routes_are_indexed_with_function_keys() -> None:
    found = functions()
    assert set(found) == set(ROUTES)
    for name, (route, methods) in ROUTES.items():
        trigger = found[name].get_bindings()[0]
        assert (trigger.route, [str(m) for m in trigger.methods]) == (route, methods)
        assert trigger.auth_level == func.AuthLevel.FUNCTION


def test_submit_a_body_then_read_list_and_cancel_it(env: dict[str, str], fake: FakeTES) -> None:
    task = {"name": "align-1", "tags": {"project": "alice"}, "executors": [{"image": "alpine", "command": ["true"]}]}
    status, body, headers = call("tes_create", "tes/tasks", json.dumps(task).encode())
    assert status == 202 and fake.tasks[body["id"]]["doc"] == task
    assert headers["Location"] == body["location"] == f"{HOST}/api/tes/tasks/{body['id']}"
    task_id = body["id"]
    status, got, _ = call("tes_get", f"tes/tasks/{task_id}?view=FULL", id=task_id)
    assert status == 200 and got["name"] == "align-1" and got["state"] == "QUEUED"
    status, page, _ = call("tes_list", "tes/tasks?tag_key=project&tag_value=alice&view=BASIC&page_size=5")
    assert status == 200 and [t["id"] for t in page["tasks"]] == [task_id]
    assert fake.log[-1][2]["page_size"] == ["5"]
    assert fake.log[-1][2].get("tag_key") == (None if fake.tesk else ["project"])  # TESK: filtered by the app
    status, body, headers = call("tes_cancel", f"tes/tasks/{task_id}/cancel", id=task_id)
    assert status == 202 and headers["Location"].endswith(task_id)
    assert body == {"id": task_id, "canceling": True, "state": "QUEUED", "location": headers["Location"]}
    assert fake.state_of(task_id) == ("CANCELED" if fake.tesk else "CANCELING")
    fake.clock.advance(fake.cancel_seconds)
    status, body, _ = call("tes_cancel", f"tes/tasks/{task_id}/cancel", id=task_id)
    assert status == 200 and body["canceling"] is False and body["state"] == "CANCELED"
    assert fake.count("POST", r":cancel$") == 1


def test_cancelling_a_task_that_ended_is_a_409_naming_its_state(env: dict[str, str], fake: FakeTES) -> None:
    task_id = fake.add_task({"tags": {"fake-outcome": "EXECUTOR_ERROR"},
                             "executors": [{"image": "a", "command": ["b"]}]})
    fake.clock.advance(60)
    status, body, _ = call("tes_cancel", f"tes/tasks/{task_id}/cancel", id=task_id)
    assert status == 409 and body["error"]["code"] == "TaskAlreadyEnded"
    assert body["error"]["details"] == [{"field": "state", "message": "EXECUTOR_ERROR"}]
    assert "EXECUTOR_ERROR" in body["error"]["message"] and fake.count("POST") == 0


def test_an_expired_page_token_is_a_400_naming_page_token(env: dict[str, str], fake: FakeTES) -> None:
    for i in range(3):
        fake.add_task({"name": f"n{i}", "executors": [{"image": "x", "command": ["y"]}]})
    status, page, _ = call("tes_list", "tes/tasks?page_size=1")
    token = page["next_page_token"]
    fake.add_task({"name": "newer", "executors": [{"image": "x", "command": ["y"]}]})
    fake.clock.advance(fake.continue_ttl)
    status, body, _ = call("tes_list", f"tes/tasks?page_size=1&page_token={token}")
    if fake.tesk:  # TESK answers 500 for a compacted Kubernetes continue token
        assert status == 400 and [d["field"] for d in body["error"]["details"]] == ["page_token"]
    else:
        assert status == 200 and body["tasks"]


def test_list_pages_and_repeated_tags(env: dict[str, str], fake: FakeTES) -> None:
    ids = [fake.add_task({"name": f"n{i}", "tags": {"a": "1", "b": str(i % 2)},
                          "executors": [{"image": "x", "command": ["y"]}]}) for i in range(5)]
    query = "tes/tasks?tag_key=a&tag_key=b&tag_value=1&tag_value=0&page_size=2"
    pages = []
    status, page, _ = call("tes_list", query)
    while True:
        assert status == 200 and len(page["tasks"]) <= 2
        pages.append([t["id"] for t in page["tasks"]])
        if "next_page_token" not in page:
            break
        status, page, _ = call("tes_list", f"{query}&page_token={page['next_page_token']}")
    assert [task_id for ids_ in pages for task_id in ids_] == fake.in_list_order([ids[0], ids[2], ids[4]])
    if not fake.tesk:  # the server filters, so pages are full; TESK's pages of 2 are filtered afterwards
        assert pages == [[ids[0], ids[2]], [ids[4]]]


def test_submit_a_sample(env: dict[str, str], fake: FakeTES) -> None:
    status, body, _ = call("tes_create", "tes/tasks?sample=env")
    assert status == 202
    assert fake.tasks[body["id"]]["doc"] == tes.load_sample("env")


def test_an_invalid_task_gets_every_problem_and_nothing_is_sent(env: dict[str, str], fake: FakeTES) -> None:
    task = {"executors": [{"image": "alpine", "command": "echo hi", "stdout": "out"}], "outputs": [{"path": "/o"}]}
    status, body, _ = call("tes_create", "tes/tasks", json.dumps(task).encode())
    assert status == 400
    assert {d["field"] for d in body["error"]["details"]} == {"executors[0].command", "executors[0].stdout",
                                                              "outputs[0].url"}
    assert fake.count("POST") == 0


def test_service_info(env: dict[str, str], fake: FakeTES) -> None:
    status, body, _ = call("tes_service_info", "tes/service-info")
    # TESK serves /ga4gh/tes/v1 yet speaks TES 1.0: the version is service-info's, not the path's
    assert status == 200 and body["tesVersion"] == ("1.0" if fake.tesk else "1.1") and body["transport"] == "direct"
    assert body["versionFrom"] == "service-info" and body["serverFilters"] is not fake.tesk
    assert body["apiRoot"] == "/ga4gh/tes/v1" and body["serviceInfo"]["type"]["artifact"].lower() == "tes"


GARBAGE_BODIES = [b"", b"   ", b"null", b"[]", b"[1]", b'"task"', b"1", b"{", b"\xff\xfe\x00", b"[" * 200_000,
                  b'{"executors": "x"}', b'{"executors": [null]}', b'{"executors": [{"image": 1, "command": {}}]}',
                  b'{"executors": [{"image": "a", "command": ["x"]}], "resources": {"ram_gb": 1e400}}',
                  b'{"executors": [{"image": "a", "command": ["x"]}], "resources": {"disk_gb": NaN}}',
                  b'{"executors": [{"image": "a", "command": ["x"]}], "tags": {"k": {"deep": [1]}}}',
                  b'{"executors": [{"image": "a", "command": ["x"]}], "inputs": [{"path": "/i", '
                  b'"url": "azureblob://UPPER/x"}]}',
                  b'{"executors": [{"image": "a", "command": ["x"]}], "outputs": [{"path": "/o", '
                  b'"url": "azureblob://tesk-tasks/out"}]}',
                  b'{"executors": [{"image": "a", "command": ["x"]}], "inputs": [{"path": "/i", '
                  b'"url": "azureblob:///"}]}',
                  b'{"executors": [{"image": "a", "command": ["x"]}], "inputs": [{"path": "/i", '
                  b'"url": "azureblob://batchk8s-state/state.json"}]}',
                  # a long task cut at 1 MiB: malformed JSON
                  json.dumps({"executors": [{"image": "a", "command": ["x"]}] * 40000}).encode()[:1024 * 1024]]
# (function, path and query, route parameters, the field the 400 must name)
GARBAGE_QUERIES = [
    ("tes_create", "tes/tasks?sample=../../etc/passwd", {}, "sample"),
    ("tes_create", "tes/tasks?sample=", {}, "sample"),
    ("tes_create", "tes/tasks?sample=hello%00", {}, "sample"),
    ("tes_get", "tes/tasks/x?view=EVERYTHING", {"id": "x"}, "view"),
    ("tes_get", "tes/tasks/a%20b", {"id": "a b"}, "id"),
    ("tes_get", "tes/tasks/..", {"id": ".."}, "id"),
    ("tes_get", "tes/tasks/" + "x" * 300, {"id": "x" * 300}, "id"),
    ("tes_get", "tes/tasks/%00", {"id": "\x00"}, "id"),
    ("tes_get", "tes/tasks/abc%0A", {"id": "abc\n"}, "id"),
    ("tes_cancel", "tes/tasks/a:b/cancel", {"id": "a/b"}, "id"),
    ("tes_cancel", "tes/tasks/%20/cancel", {"id": " "}, "id"),
    ("tes_list", "tes/tasks?state=DONE", {}, "state"),
    ("tes_list", "tes/tasks?state=%00", {}, "state"),
    ("tes_list", "tes/tasks?view=%FF", {}, "view"),
    ("tes_list", "tes/tasks?page_size=abc", {}, "page_size"),
    ("tes_list", "tes/tasks?page_size=0", {}, "page_size"),
    ("tes_list", "tes/tasks?page_size=-1", {}, "page_size"),
    ("tes_list", "tes/tasks?page_size=1.5", {}, "page_size"),
    ("tes_list", "tes/tasks?page_size=1e3", {}, "page_size"),
    ("tes_list", "tes/tasks?page_size=2048", {}, "page_size"),  # the spec: "Must be less than 2048"
    ("tes_list", "tes/tasks?page_size=" + "9" * 5000, {}, "page_size"),
    ("tes_list", "tes/tasks?page_token=not-a-token", {}, "page_token"),
    ("tes_list", "tes/tasks?tag_value=orphan", {}, "tag_value"),
    ("tes_list", "tes/tasks?tag_key=", {}, "tag_key"),
    ("tes_list", "tes/tasks?tag_key=a&tag_key=a", {}, "tag_key"),
]


@pytest.mark.parametrize("body", GARBAGE_BODIES, ids=range(len(GARBAGE_BODIES)))
def test_garbage_bodies_are_400s_never_500s(env: dict[str, str], fake: FakeTES, body: bytes) -> None:
    status, answer, _ = call("tes_create", "tes/tasks", body)
    assert status == 400, answer
    assert answer["error"]["code"] == "InvalidInput" and answer["error"]["message"]
    assert fake.count("POST") == 0


@pytest.mark.parametrize(("name", "path", "route", "field"), GARBAGE_QUERIES)
def test_garbage_parameters_are_400s_naming_the_parameter(env: dict[str, str], fake: FakeTES, name: str, path: str,
                                                          route: dict[str, str], field: str) -> None:
    status, answer, _ = call(name, path, **route)
    assert status == 400, answer
    assert set(answer) == {"error"} and [d["field"] for d in answer["error"]["details"]] == [field]
    assert fake.count("POST") == 0


def test_odd_but_legal_parameters_are_passed_on(env: dict[str, str], fake: FakeTES) -> None:
    task_id = fake.add_task({"name": "ä&=?#%", "executors": [{"image": "a", "command": ["b"]}]})
    status, page, _ = call("tes_list", "tes/tasks?name_prefix=%C3%A4%26%3D%3F%23%25&view=basic&state=queued"
                                       "&page_size=2047&unknown=1")
    assert status == 200 and [t["id"] for t in page["tasks"]] == [task_id]
    assert fake.log[-1][2]["name_prefix"] == ["ä&=?#%"] and fake.log[-1][2]["view"] == ["BASIC"]


def test_unknown_ids_are_404(env: dict[str, str]) -> None:
    assert call("tes_get", "tes/tasks/task-nope", id="task-nope")[0] == 404
    status, body, _ = call("tes_cancel", "tes/tasks/task-nope/cancel", id="task-nope")
    assert status == 404 and body["error"]["code"] == "TaskNotFound"


def test_over_one_mib_is_413(env: dict[str, str], fake: FakeTES) -> None:
    big = json.dumps({"executors": [{"image": "a", "command": ["x"]}], "description": "x" * (1024 * 1024)})
    assert call("tes_create", "tes/tasks", big.encode())[0] == 413
    assert fake.count("POST") == 0


def test_tes_down_is_502_and_slow_is_504(env: dict[str, str], fake: FakeTES) -> None:
    call("tes_service_info", "tes/service-info")
    fake.inject(path=r"/tasks", status=503, times=20, body={"code": 503, "message": "unavailable"})
    status, body, _ = call("tes_list", "tes/tasks")
    assert status == 502 and body["error"]["upstreamStatus"] == 503 and "503" in body["error"]["message"]
    fake.faults.clear()
    tes.client_for(load_settings(env)).timeout = 0.1
    fake.inject(path=r"/tasks", delay=0.3, times=4)
    status, body, _ = call("tes_list", "tes/tasks")
    assert status == 504 and body["error"]["code"] == "UpstreamTimeout"


def test_without_tes_settings_the_routes_say_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TESK_API_URL", "AZURE_BATCH_ACCOUNT_URL", "TES_TRANSPORT"):
        monkeypatch.delenv(name, raising=False)
    settings_module.clear_cache()
    status, body, _ = call("tes_service_info", "tes/service-info")
    assert status == 503 and "TESK_API_URL" in body["error"]["message"]
    [detail] = body["error"]["details"]
    assert detail["field"] == "TESK_API_URL" and "AZURE_BATCH_ACCOUNT_URL" in detail["message"]


@pytest.mark.azurite
def test_blob_input_sample_gets_a_read_only_sas_for_its_blob_in_the_configured_container(
        azurite: str, fake_service: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    fake = fake_service(FakeTES)
    monkeypatch.setenv("TESK_API_URL", fake.url)
    monkeypatch.setenv("AzureWebJobsStorage", azurite)
    monkeypatch.setenv("AZURE_STORAGE_TESK_DIRECTORY", "lab-tes-inputs")  # not the default name
    settings_module.clear_cache()
    settings = settings_module.current_settings()
    service = storage.blob_service(settings)
    container = service.get_container_client("lab-tes-inputs")
    if not container.exists():
        container.create_container()
    hello = (ROOT / "tesk-tasks" / "hello.json").read_bytes()
    container.upload_blob("hello.json", hello, overwrite=True)
    status, body, _ = call("tes_create", "tes/tasks?sample=blob-input")
    assert status == 202
    url = fake.tasks[body["id"]]["doc"]["inputs"][0]["url"]
    assert "/lab-tes-inputs/hello.json?" in url and "sp=r&" in url and "sig=" in url
    assert requests.get(url, timeout=10).content == hello
    assert requests.put(url, data=b"x", headers={"x-ms-blob-type": "BlockBlob"}, timeout=10).status_code == 403
    # another container of the account (here the host's own) is never signed
    elsewhere = {"inputs": [{"path": "/in", "url": "azureblob://azure-webjobs-secrets/host.json"}],
                 "executors": [{"image": "a", "command": ["cat", "/in"]}]}
    status, answer, _ = call("tes_create", "tes/tasks", json.dumps(elsewhere).encode())
    assert status == 400 and answer["error"]["details"][0]["field"] == "inputs[0].url"
    assert "lab-tes-inputs" in answer["error"]["details"][0]["message"] and len(fake.tasks) == 1


# -- the command line ------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_submit_sample_get_list_cancel(env: dict[str, str], fake: FakeTES, capsys: pytest.CaptureFixture[str]):
    code, out, _ = run(capsys, "tes", "submit", "--sample", "hello")
    task_id = out.strip()
    assert code == 0 and task_id in fake.tasks
    code, out, _ = run(capsys, "tes", "get", task_id, "--json")
    assert code == 0 and json.loads(out)["executors"][0]["command"] == ["echo", "hello"]
    code, out, _ = run(capsys, "tes", "list", "--tag", "sample=hello", "--all")
    assert code == 0 and task_id in out and "QUEUED" in out
    code, out, _ = run(capsys, "tes", "cancel", task_id)
    assert code == 0 and fake.state_of(task_id) == ("CANCELED" if fake.tesk else "CANCELING")
    assert out.strip() == f"{task_id}: cancel requested"
    fake.clock.advance(fake.cancel_seconds)
    code, out, _ = run(capsys, "tes", "cancel", task_id)
    assert code == 0 and out.strip() == f"{task_id}: already CANCELED"
    code, out, _ = run(capsys, "tes", "service-info")
    assert code == 0 and ("TES 1.0" if fake.tesk else "TES 1.1") in out


def test_cli_cancel_of_a_task_that_ended_is_exit_2_naming_its_state(env: dict[str, str], fake: FakeTES,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    task_id = fake.add_task({"executors": [{"image": "a", "command": ["b"]}]})
    fake.clock.advance(60)
    code, _, err = run(capsys, "tes", "cancel", task_id)
    assert code == 2 and "already ended COMPLETE" in err and "Traceback" not in err


@pytest.mark.parametrize(("outcome", "exit_code"), [("COMPLETE", 0), ("EXECUTOR_ERROR", 1), ("PREEMPTED", 1)])
def test_cli_submit_file_and_wait(env: dict[str, str], fake: FakeTES, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str], outcome: str, exit_code: int) -> None:
    path = tmp_path / "task.json"
    path.write_text(json.dumps({"tags": {"fake-outcome": outcome}, "executors": [{"image": "a", "command": ["b"]}]}))
    code, out, _ = run(capsys, "tes", "submit", str(path), "--wait", "--timeout", "600", "--json")
    assert code == exit_code
    result = json.loads(out)
    ended = outcome if not fake.tesk or outcome in TESK_OUTCOMES else "SYSTEM_ERROR"  # TESK has no PREEMPTED
    assert result["state"] == ended and result["states"][0] == "QUEUED"


def test_cli_wait_timeout_is_exit_3(env: dict[str, str], fake: FakeTES, capsys: pytest.CaptureFixture[str]) -> None:
    tags, state = fake.never_ending()  # PAUSED on a spec server; TESK never pauses, so there it stays RUNNING
    task_id = fake.add_task({"tags": tags, "executors": [{"image": "a", "command": ["b"]}]})
    fake.clock.advance(5)
    code, _, err = run(capsys, "tes", "wait", task_id, "--timeout", "30")
    assert code == 3 and f"still {state} after 30 s" in err


def test_cli_bad_input_is_exit_2_with_every_path(env: dict[str, str], fake: FakeTES, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"executors": [{"image": "", "command": []}]}))
    code, _, err = run(capsys, "tes", "submit", str(path))
    assert code == 2 and "executors[0].image" in err and "executors[0].command" in err
    assert run(capsys, "tes", "submit", str(path), "--sample", "hello")[0] == 2
    assert run(capsys, "tes", "submit")[0] == 2
    assert run(capsys, "tes", "get", "task-nope")[0] == 2
    assert run(capsys, "tes", "list", "--tag", "=x")[0] == 2
    assert fake.count("POST") == 0


@pytest.mark.clock  # the plan's other sections read the clock
def test_plan_shows_each_sample_request_with_placeholders_marked(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "plan", "--settings", str(ROOT / "local.settings.json.example"), "--json")
    assert code == 0
    section = json.loads(out)["tes"]
    assert set(section["samples"]) >= {"hello", "env", "stdout", "blob-input"}
    assert all(not sample["problems"] for sample in section["samples"].values())
    url = section["samples"]["blob-input"]["request"]["body"]["inputs"][0]["url"]
    assert url == "<read-only SAS URL for tesk-tasks/hello.json, generated at submission>"
    assert section["transport"] == "relay"
