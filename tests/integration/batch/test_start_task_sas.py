"""The start task's SAS URLs are renewed whenever batchk8s touches a pool, and `pool show` warns before they expire.

Real SAS URLs signed for Azurite, the real Batch client against the fake Batch (which applies Pool - Patch);
the renewed URLs are fetched from Azurite to prove they work, with the permissions they had.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from batchk8s import storage
from batchk8s.batch import pool_spec, pools
from batchk8s.settings import Settings
from tests.fakes.batch import FakeBatch, FakeClock


@pytest.fixture
def uploaded(settings: Settings) -> Settings:
    storage.upload_artifacts(settings)
    return settings


def start_task_urls(batch: FakeBatch, pool_id: str) -> dict[str, str]:
    start = batch.pools[pool_id.lower()]["spec"]["startTask"]
    urls = {"bootstrap": start["resourceFiles"][0]["httpUrl"]}
    urls.update({e["name"]: e["value"] for e in start.get("environmentSettings") or []
                 if e["value"].startswith("http")})
    return urls


def expiry(url: str) -> datetime:
    return datetime.fromisoformat(parse_qs(urlsplit(url).query)["se"][0].replace("Z", "+00:00"))


def hours_left(url: str) -> float:
    return (expiry(url) - datetime.now(UTC)) / timedelta(hours=1)


def test_pool_show_warns_before_the_start_task_sas_expires(uploaded: Settings, batch: FakeBatch, clock: FakeClock):
    short = dataclasses.replace(uploaded, sas_expiry_hours=24)
    pools.create_pool(short, {"id": "p-short"})
    status = pools.pool_status(short, "p-short").to_dict()  # as the API and --json show it
    left = (datetime.fromisoformat(status["startTaskSasExpiry"].replace("Z", "+00:00")) - datetime.now(UTC))
    assert timedelta(hours=23.5) < left <= timedelta(hours=24)
    [warning] = status["warnings"]
    assert warning["code"] == "StartTaskSasExpiring" and status["startTaskSasExpiry"] in warning["message"]
    assert "sig=" not in str(status)  # the warning names the time, never the URL

    pools.create_pool(uploaded, {"id": "p-long"})  # 168 h: far from expiry, nothing to say
    long_status = pools.pool_status(uploaded, "p-long")
    assert long_status.warnings == [] and long_status.start_task_sas_expiry


def test_reusing_a_pool_renews_its_start_task_sas(uploaded: Settings, batch: FakeBatch):
    short = dataclasses.replace(uploaded, sas_expiry_hours=2)
    pools.create_pool(short, {"id": "p1"})
    before = start_task_urls(batch, "p1")
    assert hours_left(before["bootstrap"]) <= 2 and not batch.patches

    result = pools.create_pool(uploaded, {"id": "p1"})  # same spec: reused
    assert result.created is False
    after = start_task_urls(batch, "p1")
    assert [pool_id for pool_id, _ in batch.patches] == ["p1"]
    assert set(batch.patches[0][1]) == {"startTask"}  # nothing but the start task is sent
    assert hours_left(after["bootstrap"]) > 167
    assert pools.pool_status(uploaded, "p1").warnings == []
    response = requests.get(after["bootstrap"], timeout=10)
    assert response.status_code == 200 and response.content.startswith(b"#!/usr/bin/env bash")
    unchanged = {k: v for k, v in batch.pools["p1"]["spec"]["startTask"].items() if k != "resourceFiles"}
    assert unchanged["commandLine"] == pool_spec.start_task_command()


def test_resize_renews_the_start_task_sas_before_nodes_are_allocated(uploaded: Settings, batch: FakeBatch,
                                                                     clock: FakeClock):
    short = dataclasses.replace(uploaded, sas_expiry_hours=1)
    pools.create_pool(short, {"id": "p1", "dedicatedNodes": 0})
    clock.advance(600)
    pools.resize_pool(uploaded, "p1", {"dedicatedNodes": 2})
    assert hours_left(start_task_urls(batch, "p1")["bootstrap"]) > 167
    order = [(m, p) for m, p, _ in batch.log if p.startswith("/pools/p1")]
    assert order.index(("PATCH", "/pools/p1")) < order.index(("POST", "/pools/p1/resize"))


def test_an_auto_pool_keeps_each_sas_scope_and_permission(uploaded: Settings, batch: FakeBatch, clock: FakeClock):
    auto = dataclasses.replace(uploaded, k8s_node_role="auto", sas_expiry_hours=3)
    pool_id = "auto-renew-" + batch.url.rsplit(":", 1)[-1]  # the cluster container is per id; Azurite is shared
    pools.create_pool(auto, {"id": pool_id})
    before = start_task_urls(batch, pool_id)
    pools.create_pool(dataclasses.replace(auto, sas_expiry_hours=100), {"id": pool_id})
    after = start_task_urls(batch, pool_id)
    assert set(after) == set(before) == {"bootstrap", "K8S_CLUSTER_SAS_URL", *pool_spec.CLUSTER_BLOB_URLS}
    for name in after:
        old, new = parse_qs(urlsplit(before[name]).query), parse_qs(urlsplit(after[name]).query)
        assert (new["sr"], new["sp"]) == (old["sr"], old["sp"]), name
        assert urlsplit(after[name]).path == urlsplit(before[name]).path
        assert 99 < hours_left(after[name]) <= 100


def test_urls_of_other_accounts_or_without_sas_are_not_resigned(uploaded: Settings):
    assert storage.renewed_sas_url(uploaded, "https://elsewhere.blob.core.windows.net/c/b?sv=1&sr=b&sp=r&se="
                                   "2030-01-01T00:00:00Z&sig=abc") is None
    assert storage.renewed_sas_url(uploaded, storage.blob_url(uploaded, uploaded.app_container, "x.sh")) is None
    assert storage.sas_expiry("https://a/c/b?se=nonsense&sig=1") is None


def test_a_schedules_morning_scale_up_renews_the_start_task_sas(uploaded: Settings, batch: FakeBatch,
                                                                clock: FakeClock, batch_env: dict[str, str]):
    """The nightly scale-to-zero and morning scale-up docs/scheduling.md suggests: the scale-up goes through the Batch
    engine's resize, so the nodes it allocates on day 8 get URLs that still work."""
    import json

    from batchk8s.schedules.reconcile import reconcile
    from batchk8s.settings import load_settings

    short = dataclasses.replace(uploaded, sas_expiry_hours=1)
    pools.create_pool(short, {"id": "p1", "dedicatedNodes": 0})
    clock.advance(600)
    rules = {"rules": [{"name": "morning", "schedule": "0 0 7 * * *", "action": "resize", "dedicated": 2, "spot": 0,
                        "targets": [{"pool": "p1"}]}]}
    scheduled = load_settings({**batch_env, "BATCHK8S_SCHEDULES": json.dumps(rules)})
    report = reconcile(scheduled, now=datetime(2026, 3, 2, 7, 0, tzinfo=UTC))
    assert [o.result for o in report.outcomes] == ["applied"]
    assert batch.pools["p1"]["target"] == (2, 0)
    assert hours_left(start_task_urls(batch, "p1")["bootstrap"]) > 167


def test_a_pool_changed_during_the_renewal_is_read_again_not_overwritten(uploaded: Settings, batch: FakeBatch,
                                                                         clock: FakeClock):
    short = dataclasses.replace(uploaded, sas_expiry_hours=1)
    pools.create_pool(short, {"id": "p1", "dedicatedNodes": 0})
    clock.advance(600)
    batch.inject(method="PATCH", path=r"^/pools/p1$", status=412, body={
        "code": "ConditionNotMet", "message": {"lang": "en-US", "value": "The condition specified using HTTP "
                                                                          "conditional header(s) is not met."}})
    pools.resize_pool(uploaded, "p1", {"dedicatedNodes": 1})
    assert batch.count("PATCH", r"^/pools/p1$") == 2 and len(batch.patches) == 1
    assert hours_left(start_task_urls(batch, "p1")["bootstrap"]) > 167
    assert batch.pools["p1"]["target"] == (1, 0)
