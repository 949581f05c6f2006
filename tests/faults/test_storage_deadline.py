"""HTTP routes that make several Blob storage calls answer within the request's deadline.

Each storage call used to get only the client's fixed per-call budget (STORAGE_CALL_SECONDS, 60 s), so
a route making several of them had no overall limit. The routes here run as the host indexes them,
against Azurite behind the fault proxy, with the door's deadline shortened from 220 s to DOOR seconds
and the per-call budget left as deployed: a storage account that accepts and never answers must be
a 504 UpstreamTimeout naming Blob storage and what was being done, in time; with time left the
same routes work.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import azure.functions as func
import pytest

from batchk8s import deadline as deadline_module
from batchk8s import settings as settings_module
from batchk8s import storage
from tests.app_index import indexed_functions
from tests.conftest import AZURITE_ACCOUNT, AZURITE_KEY
from tests.fakes.proxy import FaultProxy
from tests.faults.conftest import World, unique
from tests.integration.test_storage import write_tree

pytestmark = pytest.mark.azurite

DOOR = 2.0  # the HTTP door's deadline, shortened from deadline.HTTP_SECONDS
SLACK = 1.0  # the answer itself, and a loaded shared machine
NEVER = 30.0  # longer than the test waits: a request held this long has not been answered


@pytest.fixture
def blob(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """The app's settings pointing at Azurite through the fault proxy, with containers of its own."""
    proxy = world.blob
    prefix = unique("d")
    env = {"AZURE_STORAGE_ACCOUNT_NAME": AZURITE_ACCOUNT, "AZURE_STORAGE_ACCOUNT_KEY": AZURITE_KEY,
           "AZURE_STORAGE_BLOB_ENDPOINT": proxy.endpoint(), "AZURE_STORAGE_APP_DIRECTORY": f"{prefix}-apps",
           "AZURE_STORAGE_K8S_DIRECTORY": f"{prefix}-k8s", "AZURE_STORAGE_TESK_DIRECTORY": f"{prefix}-tesk",
           "BATCHK8S_STATE_CONTAINER": f"{prefix}-state"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(storage, "REPO_ROOT", write_tree(tmp_path / "app"))
    monkeypatch.setattr(deadline_module, "HTTP_SECONDS", DOOR)
    assert storage.STORAGE_CALL_SECONDS > DOOR + SLACK  # the per-call budget alone would not answer in time
    settings_module.clear_cache()
    yield proxy


def route(name: str) -> Callable[[func.HttpRequest], func.HttpResponse]:
    return indexed_functions()[name].get_user_function()


def timed(name: str, method: str, path: str, params: dict[str, str] | None = None) -> tuple[func.HttpResponse, float]:
    request = func.HttpRequest(method, f"https://app.example.net/api/{path}", body=b"", headers={},
                               route_params={}, params=params or {})
    started = time.monotonic()
    response = route(name)(request)
    return response, time.monotonic() - started


def timeout_error(response: func.HttpResponse) -> dict[str, object]:
    assert response.status_code == 504, response.get_body()
    error = json.loads(response.get_body())["error"]
    assert error["code"] == "UpstreamTimeout", error
    assert error["details"][0]["service"] == "Blob storage", error
    return error


def test_artifact_upload_stops_at_the_deadline_when_storage_never_answers(blob: FaultProxy):
    blob.inject(delay=NEVER, times=50)

    response, elapsed = timed("artifacts_upload", "POST", "artifacts/upload")

    assert elapsed < DOOR + SLACK, f"answered after {elapsed:.2f} s"
    error = timeout_error(response)
    assert error["message"].startswith("Blob storage did not answer in time while working on container d")
    assert 1 <= blob.count("PUT") <= 3 * 4  # three containers, each within the storage policy's attempts


def test_artifact_upload_stops_at_the_deadline_when_a_later_call_hangs(blob: FaultProxy):
    """The containers are created at once; then the listing of one of them never answers: the whole
    route still ends at its deadline, not at the listing's own 60 s budget."""
    apps = f"{settings_module.current_settings().app_container}"
    blob.inject(method="GET", path=rf"/{apps}$", delay=NEVER, times=50)

    response, elapsed = timed("artifacts_upload", "POST", "artifacts/upload")

    assert elapsed < DOOR + SLACK, f"answered after {elapsed:.2f} s"
    error = timeout_error(response)
    assert error["details"][0]["operation"] in (f"container {apps}", f"working on container {apps}"), error
    assert blob.count("PUT", rf"/{apps}$") == 1  # the container was created, before the listing hung
    assert blob.count("PUT", rf"/{apps}/") == 0  # and nothing was uploaded after the deadline


def test_schedule_history_stops_at_the_deadline_when_storage_never_answers(blob: FaultProxy):
    state = settings_module.current_settings().state_container
    blob.inject(delay=NEVER, times=50)

    response, elapsed = timed("schedules_history", "GET", "schedules/history")

    assert elapsed < DOOR + SLACK, f"answered after {elapsed:.2f} s"
    error = timeout_error(response)
    assert f"state container {state}" in error["message"], error


def test_routes_with_time_left_still_work(blob: FaultProxy):
    blob.latency = 0.05  # every request answered, a little slowly

    uploaded, elapsed = timed("artifacts_upload", "POST", "artifacts/upload")
    history, _ = timed("schedules_history", "GET", "schedules/history")

    assert elapsed < DOOR
    assert uploaded.status_code == 200, uploaded.get_body()
    assert json.loads(uploaded.get_body())["counts"] == {"uploaded": 4, "unchanged": 0, "total": 4}
    assert history.status_code == 200, history.get_body()
    assert json.loads(history.get_body())["entries"] == []
