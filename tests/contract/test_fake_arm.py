"""The fake ARM's answers checked against the Compute REST API definitions it follows.

tests/data/compute-2025-04-01-excerpt.json holds the definitions, copied from Azure/azure-rest-api-specs
(source and commit in tests/data/README.md). Each sampled answer must validate against the definition
the spec names for that operation, and more strictly than the spec asks: every property the fake sends
must be one the spec defines (additionalProperties closed), so a fake that invents or misspells a
field, or sends the wrong type or enum value, fails here rather than agreeing with our own code.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import jsonschema
import pytest
import requests

from tests.conftest import DATA
from tests.fakes.aad import FakeAAD
from tests.fakes.arm import KNOWN_API_VERSIONS, FakeARM
from tests.fakes.https import FakeService

SPEC = json.loads((DATA / "compute-2025-04-01-excerpt.json").read_text(encoding="utf-8"))
VERSION = "2025-04-01"
RG = "rg-contract"
COMPUTE = "providers/Microsoft.Compute"


def closed(definitions: dict[str, Any]) -> dict[str, Any]:
    """The definitions with `allOf` parents folded in and no properties beyond the ones defined."""
    result = copy.deepcopy(definitions)
    for schema in result.values():
        for parent in schema.pop("allOf", []):
            inherited = definitions[parent["$ref"].rsplit("/", 1)[1]]
            schema.setdefault("properties", {}).update(copy.deepcopy(inherited.get("properties", {})))
            schema["required"] = sorted(set(schema.get("required", [])) | set(inherited.get("required", [])))
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
    return result


CLOSED = closed(SPEC["definitions"])


def check(body: Any, definition: str) -> None:
    schema = {"$ref": f"#/definitions/{definition}", "definitions": CLOSED}
    jsonschema.Draft4Validator(schema).validate(body)


def check_error(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    """An ARM error: the status, CloudError's shape, and the code and message ARM always fills in."""
    assert response.status_code == status, response.text
    body = response.json()
    check(body, "CloudError")
    assert body["error"]["code"] == code and body["error"]["message"]
    return body["error"]


@pytest.fixture
def arm(fake_service: Callable[..., FakeService]) -> Iterator[FakeARM]:
    aad: FakeAAD = fake_service(FakeAAD)  # type: ignore[assignment]
    fake: FakeARM = fake_service(FakeARM, aad=aad, operation_delay=0.0, page_size=2)  # type: ignore[assignment]
    fake.add_scale_set(RG, "uni-a", {"0": "running", "1": "deallocated", "2": "starting"}, tags={"team": "hpc"})
    fake.add_scale_set(RG, "flex-a", {"flex-a_0": "running", "flex-a_1": "deallocated", "flex-a_2": "stopped"},
                       orchestration="Flexible")
    yield fake


@pytest.fixture
def get(arm: FakeARM) -> Callable[..., requests.Response]:
    from azure.identity import ClientSecretCredential

    aad = arm.aad
    token = ClientSecretCredential(aad.tenant, aad.client_id, aad.client_secret, authority=aad.url,
                                   disable_instance_discovery=True).get_token(f"{arm.url}/.default").token
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"

    def call(path: str, method: str = "GET", version: str | None = VERSION, **params: str) -> requests.Response:
        query = {"api-version": version, **params} if version else params
        url = path if path.startswith("https://") else f"{arm.url}/subscriptions/{arm.subscription}{path}"
        return session.request(method, url, params=query, timeout=10)

    return call


def scale_set_path(name: str, tail: str = "") -> str:
    return f"/resourceGroups/{RG}/{COMPUTE}/virtualMachineScaleSets/{name}{tail}"


def all_pages(get: Callable[..., requests.Response], path: str, definition: str, **params: str) -> list[Any]:
    """Follow nextLink (absolute, api-version included, as ARM's) and check every page."""
    response = get(path, **params)
    items = []
    while True:
        assert response.status_code == 200, response.text
        page = response.json()
        check(page, definition)
        items += page["value"]
        if "nextLink" not in page:
            return items
        assert f"api-version={VERSION}" in page["nextLink"]
        response = get(page["nextLink"], version=None)


# --- scale sets, both modes ----------------------------------------------------------------------


@pytest.mark.parametrize("name,mode", [("uni-a", "Uniform"), ("flex-a", "Flexible")])
def test_scale_set_get(get, name: str, mode: str):
    response = get(scale_set_path(name))
    assert response.status_code == 200
    body = response.json()
    check(body, "VirtualMachineScaleSet")
    assert body["properties"]["orchestrationMode"] == mode


def test_scale_set_lists(get, arm: FakeARM):
    arm.add_scale_set(RG, "uni-b", {})
    in_group = all_pages(get, f"/resourceGroups/{RG}/{COMPUTE}/virtualMachineScaleSets",
                         "VirtualMachineScaleSetListResult")
    everywhere = all_pages(get, f"/{COMPUTE}/virtualMachineScaleSets", "VirtualMachineScaleSetListResult")
    assert sorted(s["name"] for s in in_group) == sorted(s["name"] for s in everywhere) == ["flex-a", "uni-a", "uni-b"]


def test_uniform_instances_with_instance_view(get):
    vms = all_pages(get, scale_set_path("uni-a", "/virtualMachines"), "VirtualMachineScaleSetVMListResult",
                    **{"$expand": "instanceView"})
    assert [vm["properties"]["instanceView"]["statuses"][-1]["code"] for vm in vms] == [
        "PowerState/running", "PowerState/deallocated", "PowerState/starting"]


def test_uniform_set_instance_view(get):
    response = get(scale_set_path("uni-a", "/instanceView"))
    assert response.status_code == 200
    check(response.json(), "VirtualMachineScaleSetInstanceView")


def test_flexible_members_through_the_filtered_vm_list(get, arm: FakeARM):
    arm.add_scale_set(RG, "flex-b", {"flex-b_0": "running"}, orchestration="Flexible")
    set_id = f"/subscriptions/{arm.subscription}{scale_set_path('flex-a')}"
    vms = all_pages(get, f"/resourceGroups/{RG}/{COMPUTE}/virtualMachines", "VirtualMachineListResult",
                    **{"$filter": f"'virtualMachineScaleSet/id' eq '{set_id}'", "$expand": "instanceView"})
    assert [vm["name"] for vm in vms] == ["flex-a_0", "flex-a_1", "flex-a_2"]
    assert {vm["properties"]["virtualMachineScaleSet"]["id"] for vm in vms} == {set_id}
    view = get(f"/resourceGroups/{RG}/{COMPUTE}/virtualMachines/flex-a_2/instanceView")
    assert view.status_code == 200
    check(view.json(), "VirtualMachineInstanceView")
    assert view.json()["statuses"][-1]["code"] == "PowerState/stopped"


def test_vm_list_parameters_are_the_specs(get):
    """The fake reads the query parameters VirtualMachines_List defines, with their enum."""
    [operation] = [p["get"] for path, p in SPEC["paths"].items() if path.endswith("/virtualMachines")]
    names = {p.get("name") for p in operation["parameters"]}
    assert {"$filter", "$expand"} <= names
    [expand] = [p for p in operation["parameters"] if p.get("name") == "$expand"]
    assert expand["enum"] == ["instanceView"]
    unfiltered = get(f"/resourceGroups/{RG}/{COMPUTE}/virtualMachines", **{"$expand": "instanceView"})
    check_error(unfiltered, 400, "InvalidParameter")  # the spec: only together with a valid $filter


@pytest.mark.parametrize("path", [scale_set_path("uni-a", "/start"),
                                  f"/resourceGroups/{RG}/{COMPUTE}/virtualMachines/flex-a_1/start"])
def test_actions_are_long_running_operations(get, path: str):
    accepted = get(path, method="POST")
    assert accepted.status_code == 202 and accepted.content == b""  # 202 Accepted, as the spec's responses
    status = get(accepted.headers["Azure-AsyncOperation"], version=None)
    assert status.status_code == 200
    assert status.json()["status"] in ("InProgress", "Succeeded")
    assert get(accepted.headers["Location"], version=None).status_code in (200, 202)


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("tail,operation", [("/start", "start.POST"), ("/deallocate", "deallocate.POST"),
                                            ("/instanceView", "instanceView.GET")])
def test_flexible_refuses_set_level_calls(get, tail: str, operation: str):
    response = get(scale_set_path("flex-a", tail), method="GET" if operation.endswith("GET") else "POST")
    error = check_error(response, 409, "OperationNotAllowed")
    assert error["message"] == (f"Operation 'VirtualMachineScaleSets.{operation}' is not allowed on Virtual "
                                "Machine Scale Set 'flex-a'.")


def test_unknown_api_version_is_no_registered_provider(get):
    error = check_error(get(scale_set_path("uni-a"), version="2019-13-01"), 400, "NoRegisteredProviderFound")
    assert error["message"].startswith("No registered resource provider found for location 'westeurope' and API "
                                       "version '2019-13-01' for type 'virtualMachineScaleSets'. The supported "
                                       "api-versions are '2025-11-01, 2025-04-01, ")
    assert VERSION in KNOWN_API_VERSIONS


def test_malformed_and_missing_api_version(get):
    check_error(get(scale_set_path("uni-a"), version="latest"), 400, "InvalidApiVersionParameter")
    check_error(get(scale_set_path("uni-a"), version=None), 400, "MissingApiVersionParameter")


def test_not_found_errors(get):
    check_error(get(scale_set_path("nope")), 404, "ResourceNotFound")
    check_error(get(f"/resourceGroups/rg-nope/{COMPUTE}/virtualMachineScaleSets/uni-a"), 404, "ResourceGroupNotFound")
    check_error(get(f"/resourceGroups/{RG}/{COMPUTE}/virtualMachines/nope/instanceView"), 404, "ResourceNotFound")
    check_error(get(scale_set_path("nope", "/virtualMachines")), 404, "ParentResourceNotFound")


def test_unauthenticated_request(arm: FakeARM):
    response = requests.get(f"{arm.url}/subscriptions/{arm.subscription}{scale_set_path('uni-a')}",
                            params={"api-version": VERSION}, timeout=10)
    check_error(response, 401, "AuthenticationFailed")


def faithful_subset(spec: dict[str, Any], source_prefix: str) -> None:
    """Every kept definition names its source file; every $ref resolves inside the excerpt."""
    text = json.dumps(spec)
    for name, definition in spec["definitions"].items():
        assert definition.get("x-source", "").startswith(source_prefix), name
    for ref in {part.split('"')[0] for part in text.split('"$ref": "')[1:]}:
        kind, name = ref.removeprefix("#/").split("/")
        assert name in spec[kind], ref


def test_the_excerpt_is_a_faithful_subset():
    faithful_subset(SPEC, "specification/compute/resource-manager/")


# --- gallery image definitions (GalleryRP 2024-03-03) -------------------------------------------

GALLERY_SPEC = json.loads((DATA / "compute-gallery-2024-03-03-excerpt.json").read_text(encoding="utf-8"))
GALLERY_VERSION = "2024-03-03"
GALLERY_CLOSED = closed(GALLERY_SPEC["definitions"])


def check_gallery(body: Any, definition: str) -> None:
    jsonschema.Draft4Validator({"$ref": f"#/definitions/{definition}", "definitions": GALLERY_CLOSED}).validate(body)


def gallery_image_path(gallery: str, image: str) -> str:
    return f"/resourceGroups/{RG}/{COMPUTE}/galleries/{gallery}/images/{image}"


@pytest.mark.parametrize(("os_type", "arch"), [("Linux", "x64"), ("Windows", "x64"), ("Linux", "Arm64")])
def test_gallery_image_get(get, arm: FakeARM, os_type: str, arch: str):
    image_id = arm.add_gallery_image(RG, "gal", "img", os_type, "contoso", "hpc", "1", architecture=arch)

    response = get(gallery_image_path("gal", "img"), version=GALLERY_VERSION)

    assert response.status_code == 200, response.text
    body = response.json()
    check_gallery(body, "GalleryImage")
    assert body["id"] == image_id and body["type"] == "Microsoft.Compute/galleries/images"
    assert (body["properties"]["osType"], body["properties"]["architecture"]) == (os_type, arch)


def test_gallery_errors_are_cloud_errors(get, arm: FakeARM):
    arm.add_gallery_image(RG, "gal", "img", "Linux", "contoso", "hpc", "1")
    for path, status, code in ((gallery_image_path("gal", "nope"), 404, "ResourceNotFound"),
                               (gallery_image_path("nogal", "img"), 404, "ParentResourceNotFound"),
                               (f"/resourceGroups/rg-nope/{COMPUTE}/galleries/gal/images/img", 404,
                                "ResourceGroupNotFound")):
        response = get(path, version=GALLERY_VERSION)
        assert response.status_code == status and response.json()["error"]["code"] == code
        check_gallery(response.json(), "CloudError")


def test_galleries_have_api_versions_of_their_own(get, arm: FakeARM):
    arm.add_gallery_image(RG, "gal", "img", "Linux", "contoso", "hpc", "1")
    error = check_error(get(gallery_image_path("gal", "img"), version=VERSION), 400, "NoRegisteredProviderFound")
    assert "'galleries/images'" in error["message"] and GALLERY_VERSION in error["message"]
    check_error(get(scale_set_path("uni-a"), version=GALLERY_VERSION), 400, "NoRegisteredProviderFound")


def test_the_gallery_excerpt_is_a_faithful_subset():
    faithful_subset(GALLERY_SPEC, "specification/")  # TrackedResource comes from common-types
    assert GALLERY_SPEC["definitions"]["GalleryImageProperties"]["required"] == ["osType", "osState", "identifier"]
