"""Create a blob container in Azurite and print its URL with a container SAS.

Used by the bats tests of role `auto`. By default one container SAS with read, add,
create and write (what pools created before the least-privilege URLs carry). With
`split`, four lines as batchk8s issues them now: the container with a read-only SAS,
then control-plane.lock (create only), join-command and control-plane.json (create,
write), each with a SAS for that one blob.
Usage: python azurite_container.py PORT CONTAINER [split]
"""

import sys
from datetime import UTC, datetime, timedelta

from azure.storage.blob import (
    BlobSasPermissions,
    BlobServiceClient,
    ContainerSasPermissions,
    generate_blob_sas,
    generate_container_sas,
)

# Azurite's documented, public development account.
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def main(port: str, container: str, split: bool) -> None:
    endpoint = f"http://127.0.0.1:{port}/{ACCOUNT}"
    service = BlobServiceClient(endpoint, credential={"account_name": ACCOUNT, "account_key": KEY})
    service.create_container(container)
    expiry = datetime.now(UTC) + timedelta(hours=1)
    permission = ContainerSasPermissions(read=True) if split else \
        ContainerSasPermissions(read=True, add=True, create=True, write=True)
    sas = generate_container_sas(ACCOUNT, container, account_key=KEY, permission=permission, expiry=expiry)
    print(f"{endpoint}/{container}?{sas}")
    if split:
        blobs = (("control-plane.lock", "c"), ("join-command", "cw"), ("control-plane.json", "cw"))
        for blob, letters in blobs:
            blob_sas = generate_blob_sas(ACCOUNT, container, blob, account_key=KEY, expiry=expiry,
                                         permission=BlobSasPermissions.from_string(letters))
            print(f"{endpoint}/{container}/{blob}?{blob_sas}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:] == ["split"])
