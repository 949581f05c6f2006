"""What a Shared Image Gallery image holds, read from its image definition.

A gallery image id says nothing about the OS inside, yet the pool needs the node agent SKU that matches
it. The image definition does say: its `osType` (Linux or Windows) and its publisher / offer / sku
identifier. It is read with azure-mgmt-compute's gallery image API (GalleryImages_Get) at a pinned
api-version, so what ARM answers does not depend on which azure-mgmt-compute pip installed; a version
id (`.../images/I/versions/V`) is read through its definition. The image's own subscription is used,
which need not be AZURE_SUBSCRIPTION_ID (galleries are often shared from a central subscription).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from batchk8s.errors import ARM, InputError, NotFoundError, azure_errors

if TYPE_CHECKING:
    from batchk8s.settings import Settings

# GalleryRP api-version (specification/compute/resource-manager/Microsoft.Compute/GalleryRP/stable/2024-03-03).
GALLERY_API_VERSION = "2024-03-03"
IMAGE_ID = re.compile(r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.Compute"
                      r"/galleries/(?P<gallery>[^/]+)/images/(?P<image>[^/]+)(/versions/[^/]+)?$", re.IGNORECASE)


@dataclass(frozen=True)
class ImageDefinition:
    """The parts of a gallery image definition that decide the node agent SKU."""

    id: str
    os_type: str
    publisher: str
    offer: str
    sku: str
    architecture: str | None = None

    @property
    def identifier(self) -> str:
        return f"{self.publisher}/{self.offer}/{self.sku}"


def read_definition(settings: Settings, image_id: str, field: str) -> ImageDefinition:
    """The image definition behind `image_id` (one GET). An image that does not exist is a 400 naming
    `field`; a refusal or failure of ARM is an upstream error."""
    from azure.mgmt.compute import ComputeManagementClient

    from batchk8s.credentials import get_credential

    match = IMAGE_ID.match(image_id)
    if match is None:
        raise InputError.for_field(field, "must be a Shared Image Gallery image or image version resource id")
    client = ComputeManagementClient(get_credential(settings), match["sub"], base_url=settings.arm_endpoint,
                                     credential_scopes=[settings.arm_scope])
    what = f"gallery image {match['gallery']}/{match['image']}"
    try:
        with azure_errors(what, ARM):
            image = client.gallery_images.get(match["rg"], match["gallery"], match["image"],
                                              api_version=GALLERY_API_VERSION)
    except NotFoundError as problem:
        raise InputError.for_field(field, f"{what} does not exist ({problem.code})") from None
    finally:
        client.close()
    identifier = image.identifier
    return ImageDefinition(str(image.id or image_id), str(_value(image.os_type)), str(identifier.publisher),
                           str(identifier.offer), str(identifier.sku),
                           str(_value(image.architecture)) if image.architecture else None)


def _value(enum_or_text: object) -> object:
    return getattr(enum_or_text, "value", enum_or_text)
