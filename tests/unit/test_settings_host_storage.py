"""The host's identity-based storage settings (AzureWebJobsStorage__*) and AZURE_CLIENT_ID."""

from __future__ import annotations

import argparse

from batchk8s.commands.config import check_config
from batchk8s.settings import load_settings

CLIENT = "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"
# What the deployment sets: identity-based host storage, the scale-set timer switched off as the host wants.
FLEX = {"AzureWebJobsStorage__accountName": "stbatchk8s", "AzureWebJobsStorage__credential": "managedidentity",
        "AzureWebJobsStorage__clientId": CLIENT, "VmssTriggerSchedule": "0 0 19 * * Mon-Fri",
        "AzureWebJobs.vmss_schedule.Disabled": "true"}


def test_identity_based_host_storage_is_storage_enough():
    settings = load_settings(FLEX)
    access = settings.storage_access()
    assert settings.problems == () and settings.missing("storage") == []
    assert (access.mode, access.endpoint, access.managed_identity, access.client_id) == (
        "identity", "https://stbatchk8s.blob.core.windows.net", True, CLIENT)


def test_blob_service_uri_wins_over_the_account_name():
    settings = load_settings({**FLEX, "AzureWebJobsStorage__blobServiceUri": "https://st.blob.core.usgovcloudapi.net/"})
    assert settings.storage_access().endpoint == "https://st.blob.core.usgovcloudapi.net"


def test_explicit_artifact_storage_wins_over_host_storage():
    settings = load_settings({**FLEX, "AZURE_STORAGE_ACCOUNT_NAME": "artifacts01", "AZURE_CLIENT_ID": CLIENT})
    access = settings.storage_access()
    assert access.endpoint == "https://artifacts01.blob.core.windows.net" and not access.managed_identity
    assert access.client_id == CLIENT  # the app's credential, with its user-assigned identity


def test_without_credential_setting_the_app_credential_is_used():
    settings = load_settings({"AzureWebJobsStorage__accountName": "stbatchk8s", "AZURE_CLIENT_ID": CLIENT})
    access = settings.storage_access()
    assert not access.managed_identity and access.client_id == CLIENT


def test_contradictions_are_problems_naming_the_setting():
    fields = lambda env: [p.setting for p in load_settings(env).problems]  # noqa: E731
    assert fields({**FLEX, "AzureWebJobsStorage": "UseDevelopmentStorage=true"}) == ["AzureWebJobsStorage"]
    assert fields({"AzureWebJobsStorage__credential": "managedidentity"}) == ["AzureWebJobsStorage__accountName"]
    assert fields({"AzureWebJobsStorage__accountName": "stbatchk8s", "AzureWebJobsStorage__clientId": CLIENT}) == [
        "AzureWebJobsStorage__credential"]
    assert fields({**FLEX, "AzureWebJobsStorage__credential": "connectionstring"}) == [
        "AzureWebJobsStorage__credential", "AzureWebJobsStorage__credential"]
    assert set(fields({**FLEX, "AzureWebJobsStorage__accountName": "St_Bad"})) == {"AzureWebJobsStorage__accountName"}
    assert fields({**FLEX, "AzureWebJobsStorage__clientId": "not-a-guid"}) == ["AzureWebJobsStorage__clientId"]
    assert fields({"AZURE_CLIENT_ID": "abc"}) == ["AZURE_CLIENT_ID"]
    assert fields({"AzureWebJobsStorage__blobServiceUri": "http://st.blob.core.windows.net"}) == [
        "AzureWebJobsStorage__blobServiceUri"]


def test_config_check_shows_how_storage_is_reached():
    # TES is configured too: storage alone runs nothing, and `config check` exits 2 when nothing is ready.
    output = check_config(argparse.Namespace(), load_settings({**FLEX, "TESK_API_URL": "https://tes.example.org"}))
    assert output.exit_code == 0
    assert output.data["storage"] == {"mode": "identity", "endpoint": "https://stbatchk8s.blob.core.windows.net",
                                      "credential": "managedidentity", "clientId": CLIENT}
    assert "AzureWebJobsStorage__accountName = stbatchk8s" in output.text
    assert "storage: identity (managedidentity, client id 0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d) at " \
           "https://stbatchk8s.blob.core.windows.net" in output.text
    azurite = load_settings({"AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    connection = check_config(argparse.Namespace(), azurite)
    assert connection.data["storage"] == {"mode": "connection string", "endpoint": None}


def test_an_artifact_account_named_without_a_key_wins_over_the_host_connection_string():
    """AZURE_STORAGE_ACCOUNT_NAME names where artifacts live; the host's Azurite or account string must not
    silently take its place (it did: the name was ignored whenever AzureWebJobsStorage held a string)."""
    settings = load_settings({"AzureWebJobsStorage": "UseDevelopmentStorage=true",
                              "AZURE_STORAGE_ACCOUNT_NAME": "startifacts"})
    assert settings.storage_access().to_dict() == {
        "mode": "identity", "endpoint": "https://startifacts.blob.core.windows.net",
        "credential": "app credential", "clientId": None}
