"""Create a blob container in Azurite and print its URL with a container SAS.

Used by the bats tests of role `auto`: the SAS has the permissions the pool's
start task gets for its private cluster container (read, add, create, write).
Usage: python azurite_container.py PORT CONTAINER
"""

import sys
from datetime import UTC, datetime, timedelta

from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

# Azurite's documented, public development account.
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def main(port: str, container: str) -> None:
    endpoint = f"http://127.0.0.1:{port}/{ACCOUNT}"
    service = BlobServiceClient(endpoint, credential={"account_name": ACCOUNT, "account_key": KEY})
    service.create_container(container)
    sas = generate_container_sas(
        ACCOUNT,
        container,
        account_key=KEY,
        permission=ContainerSasPermissions(read=True, add=True, create=True, write=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    print(f"{endpoint}/{container}?{sas}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
