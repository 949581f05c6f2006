"""A gallery image tells its own OS: the node agent SKU comes from its image definition, read through
azure-mgmt-compute's gallery image API against the fake ARM, before any pool request reaches Batch."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import azure.functions as func
import pytest

from batchk8s import settings as settings_module
from batchk8s.batch import pools
from batchk8s.batch.gallery import GALLERY_API_VERSION
from batchk8s.errors import InputError
from batchk8s.settings import Settings, load_settings
from tests.app_index import indexed_functions
from tests.fakes.aad import FakeAAD
from tests.fakes.arm import FakeARM
from tests.fakes.batch import FakeBatch
from tests.fakes.https import FakeService

pytestmark = pytest.mark.azurite
RG, GALLERY = "rg-images", "hpcgallery"


@pytest.fixture
def arm(fake_service: Callable[..., FakeService], aad: FakeAAD) -> FakeARM:
    return fake_service(FakeARM, aad=aad)  # type: ignore[return-value]


@pytest.fixture
def with_image(batch_env: dict[str, str], arm: FakeARM) -> Callable[..., Settings]:
    def make(image_id: str) -> Settings:
        return load_settings({**batch_env, "AZURE_SP_APP_ID_URI": arm.url, "AZURE_BATCH_VM_IMAGE_ID": image_id})

    return make


def sent_skus(batch: FakeBatch) -> list[str]:
    return [pool["spec"]["virtualMachineConfiguration"]["nodeAgentSKUId"] for pool in batch.pools.values()]


@pytest.mark.parametrize(("publisher", "offer", "sku", "expected"), [
    ("canonical", "ubuntu-24_04-lts", "server", "batch.node.ubuntu 24.04"),  # the supported image itself
    ("contoso", "hpc-ubuntu", "22.04-gen2", "batch.node.ubuntu 22.04"),  # named for the release it is built on
])
def test_a_linux_definition_picks_its_node_agent_sku(arm: FakeARM, batch: FakeBatch,
                                                     with_image: Callable[..., Settings], publisher: str, offer: str,
                                                     sku: str, expected: str):
    image = arm.add_gallery_image(RG, GALLERY, "k8s-node", "Linux", publisher, offer, sku)
    settings = with_image(image + "/versions/1.0.0")

    pools.create_pool(settings, {"dedicatedNodes": 1})

    assert sent_skus(batch) == [expected]
    [pool] = batch.pools.values()
    assert pool["spec"]["virtualMachineConfiguration"]["imageReference"] == {
        "virtualMachineImageId": image + "/versions/1.0.0"}
    assert arm.count("GET", r"/galleries/hpcgallery/images/k8s-node$") == 1
    assert arm.api_versions() == {GALLERY_API_VERSION}  # pinned, whatever azure-mgmt-compute defaults to


@pytest.mark.parametrize(("os_type", "publisher", "offer", "sku", "words"), [
    ("Windows", "MicrosoftWindowsServer", "WindowsServer", "2022-datacenter", "is a Windows image"),
    ("Linux", "SUSE", "sles-15-sp5", "gen2", "matches no node agent SKU this Batch account supports"),
])
def test_windows_or_unsupported_is_a_400_naming_the_setting_before_any_pool_request(
        arm: FakeARM, batch: FakeBatch, with_image: Callable[..., Settings], os_type: str, publisher: str, offer: str,
        sku: str, words: str):
    image = arm.add_gallery_image(RG, GALLERY, "node", os_type, publisher, offer, sku)

    with pytest.raises(InputError) as refused:
        pools.create_pool(with_image(image), {"dedicatedNodes": 1})

    assert refused.value.status == 400
    assert refused.value.details[0]["field"] == "AZURE_BATCH_VM_IMAGE_ID"
    assert words in refused.value.message and f"{publisher}/{offer}/{sku}" in refused.value.message
    assert batch.count("POST", r"/pools$") == 0 and batch.pools == {}


def test_an_image_id_given_in_the_request_is_named_as_the_request_field(arm: FakeARM, batch: FakeBatch,
                                                                      with_image: Callable[..., Settings]):
    linux = arm.add_gallery_image(RG, GALLERY, "linux", "Linux", "canonical", "ubuntu-24_04-lts", "server")
    windows = arm.add_gallery_image(RG, GALLERY, "win", "Windows", "MicrosoftWindowsServer", "WindowsServer", "2022")

    with pytest.raises(InputError) as refused:
        pools.create_pool(with_image(linux), {"imageId": windows})

    assert refused.value.details[0]["field"] == "imageId" and batch.pools == {}


def test_an_explicit_node_agent_sku_still_refuses_windows_and_overrides_the_match(
        arm: FakeARM, batch: FakeBatch, with_image: Callable[..., Settings]):
    windows = arm.add_gallery_image(RG, GALLERY, "win", "Windows", "MicrosoftWindowsServer", "WindowsServer", "2022")
    linux = arm.add_gallery_image(RG, GALLERY, "linux", "Linux", "canonical", "ubuntu-24_04-lts", "server")
    with pytest.raises(InputError):
        pools.create_pool(with_image(windows), {"nodeAgentSkuId": "batch.node.ubuntu 22.04"})

    pools.create_pool(with_image(linux), {"nodeAgentSkuId": "batch.node.ubuntu 22.04"})

    assert sent_skus(batch) == ["batch.node.ubuntu 22.04"]


def test_a_missing_image_or_gallery_is_a_400(arm: FakeARM, batch: FakeBatch, with_image: Callable[..., Settings]):
    arm.add_gallery_image(RG, GALLERY, "there", "Linux", "canonical", "ubuntu-24_04-lts", "server")
    base = f"/subscriptions/{arm.subscription}/resourceGroups/{RG}/providers/Microsoft.Compute/galleries"

    for image, code in ((f"{base}/{GALLERY}/images/absent", "ResourceNotFound"),
                        (f"{base}/nogallery/images/there", "ParentResourceNotFound")):
        with pytest.raises(InputError) as refused:
            pools.create_pool(with_image(image), {})
        assert refused.value.details[0]["field"] == "AZURE_BATCH_VM_IMAGE_ID"
        assert refused.value.message.endswith(f"does not exist ({code})")
    assert batch.pools == {}


def test_the_http_door_answers_400_naming_the_setting(arm: FakeARM, batch: FakeBatch, batch_env: dict[str, str],
                                                      monkeypatch: pytest.MonkeyPatch):
    image = arm.add_gallery_image(RG, GALLERY, "win", "Windows", "MicrosoftWindowsServer", "WindowsServer", "2022")
    for name, value in {**batch_env, "AZURE_SP_APP_ID_URI": arm.url, "AZURE_BATCH_VM_IMAGE_ID": image}.items():
        monkeypatch.setenv(name, value)
    settings_module.clear_cache()
    handler = indexed_functions()["pool_create"].get_user_function()

    response = handler(func.HttpRequest("POST", "https://app.example.net/api/pools", body=b"{}", headers={},
                                        params={}))

    body: dict[str, Any] = json.loads(response.get_body())
    assert response.status_code == 400
    assert body["error"]["details"][0]["field"] == "AZURE_BATCH_VM_IMAGE_ID"
    assert batch.pools == {}
