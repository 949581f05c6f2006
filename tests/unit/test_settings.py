"""Settings: every problem at once, aliases, secrets never shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batchk8s.errors import ConfigError, InputError
from batchk8s.settings import Secret, load_settings, read_settings_file, setting_names

ROOT = Path(__file__).resolve().parents[2]
SECRET = "Zq8-distinctive-client-secret-7781"


def test_defaults_match_the_design_table():
    settings = load_settings({})
    assert settings.time_zone == "UTC"
    assert settings.authority_host == "https://login.microsoftonline.com"
    assert settings.arm_endpoint == "https://management.azure.com"
    assert settings.arm_scope == "https://management.azure.com/.default"
    assert settings.pool_id == "k8s-pool"
    assert settings.vm_size == "STANDARD_D2_V3"
    assert settings.node_count == 1
    assert (settings.app_container, settings.k8s_container, settings.tesk_container) == (
        "apps", "k8sresources", "tesk-tasks")
    assert settings.batch_user_name is None and settings.batch_user_password is None
    assert settings.problems == ()


def test_every_problem_is_reported_at_once():
    settings = load_settings({
        "AZURE_VMSS_ACTION": "stop",
        "VmssTriggerSchedule": "0 0 25 * * *",
        "AZURE_SUBSCRIPTION_ID": "not-a-guid",
        "AZURE_VMSS_NAME": "ok-name,bad name",
        "WEBSITE_TIME_ZONE": "Mars/Olympus",
        "AZURE_BATCH_VM_NODE_COUNT": "-1",
        "AZURE_SP_CLIENT_ID": "app",
    })
    fields = [p.setting for p in settings.problems]
    assert fields == ["WEBSITE_TIME_ZONE", "AZURE_SUBSCRIPTION_ID", "AZURE_VMSS_NAME", "AZURE_VMSS_ACTION",
                      "VmssTriggerSchedule", "AZURE_BATCH_VM_NODE_COUNT", "AZURE_SP_CLIENT_SECRET"]
    by_field = {p.setting: p.message for p in settings.problems}
    assert "hour" in by_field["VmssTriggerSchedule"]
    assert "bad name" in by_field["AZURE_VMSS_NAME"] and "ok-name" not in by_field["AZURE_VMSS_NAME"].split(":")[-1]
    assert "start, deallocate" in by_field["AZURE_VMSS_ACTION"]


def test_require_lists_missing_and_malformed_together():
    settings = load_settings({"AZURE_VMSS_ACTION": "reboot"})
    with pytest.raises(ConfigError) as caught:
        settings.require("vmss-timer")
    fields = {d["field"] for d in caught.value.details}
    assert fields == {"AZURE_VMSS_ACTION", "AZURE_SUBSCRIPTION_ID", "AZURE_RES_GROUP_NAME", "AZURE_VMSS_NAME",
                      "VmssTriggerSchedule"}
    assert caught.value.status == 503 and caught.value.exit_code == 2


def test_alias_client_id_and_conflicting_aliases():
    assert load_settings({"AZURE_AD_SP_CLIENT_ID": "abc"}).client_id == "abc"
    same = load_settings({"AZURE_SP_CLIENT_ID": "abc", "AZURE_AD_SP_CLIENT_ID": "abc"})
    assert not any("both set" in p.message for p in same.problems)
    clash = load_settings({"AZURE_SP_CLIENT_ID": "abc", "AZURE_AD_SP_CLIENT_ID": "xyz"})
    assert any("both set" in p.message for p in clash.problems)


def test_service_principal_needs_tenant_and_both_halves():
    assert {p.setting for p in load_settings({"AZURE_SP_CLIENT_SECRET": SECRET}).problems} == {"AZURE_SP_CLIENT_ID"}
    only_pair = load_settings({"AZURE_SP_CLIENT_ID": "a", "AZURE_SP_CLIENT_SECRET": SECRET})
    assert {p.setting for p in only_pair.problems} == {"AZURE_AD_TENANT_ID"}
    complete = load_settings({"AZURE_SP_CLIENT_ID": "a", "AZURE_SP_CLIENT_SECRET": SECRET, "AZURE_AD_TENANT_ID": "t"})
    assert complete.uses_service_principal and complete.problems == ()


def test_login_user_has_no_default_password():
    settings = load_settings({"BATCH_USER_NAME": "hpcuser"})
    assert [p.setting for p in settings.problems] == ["BATCH_USER_PWD"]


def test_secrets_never_show():
    settings = load_settings({"AZURE_SP_CLIENT_SECRET": SECRET, "AZURE_SP_CLIENT_ID": "a", "AZURE_AD_TENANT_ID": "t",
                              "AZURE_STORAGE_ACCOUNT_KEY": SECRET + "key", "AZURE_STORAGE_ACCOUNT_NAME": "acct",
                              "AzureWebJobsStorage": f"AccountName=x;AccountKey={SECRET}"})
    shown = repr(settings) + str(settings) + json.dumps(settings.report())
    assert SECRET not in shown
    assert isinstance(settings.client_secret, Secret) and settings.client_secret.reveal() == SECRET
    assert settings.client_secret.masked() == "***7781"
    assert Secret("short").masked() == "***"


@pytest.mark.parametrize(("value", "shown"), [
    ("", "***"),
    ("abcdefgh", "***"),                 # 8 characters: four of them would be half the secret
    ("abcdefghijklmno", "***"),          # 15: still too short to give a hint
    ("abcdefghijklmnop", "***mnop"),     # 16: long enough that its last 4 say little
    ("x" * 40 + "7781", "***7781"),
])
def test_short_secrets_show_no_trailing_characters(value, shown):
    """Below 16 characters a secret shows only `***`: the 4-character hint would reveal too much of it."""
    assert Secret(value).masked() == shown
    assert repr(Secret(value)) == f"Secret({shown!r})" and str(Secret(value)) == shown


def test_secrets_compare_by_value_without_showing_it():
    assert Secret("a" * 20) == Secret("a" * 20) and hash(Secret("a" * 20)) == hash(Secret("a" * 20))
    assert Secret("a" * 20) != Secret("b" * 20) and Secret("x") != "x"
    assert bool(Secret("x")) and not bool(Secret(""))


@pytest.mark.parametrize(("name", "value"), [
    ("TESK_API_URL", f"https://alice:{SECRET}@tes.example.org/ga4gh/tes/v1"),
    ("AZURE_STORAGE_BLOB_ENDPOINT", f"https://acct.blob.core.windows.net/?sv=2024-11-04&sig={SECRET}"),
    ("AZURE_BATCH_ACCOUNT_URL", f"https://batch.example.net/#{SECRET}"),
])
def test_urls_carrying_credentials_are_refused_without_showing_them(name, value):
    """URL settings are printed by config and in logs, so a password or SAS in one would leak."""
    settings = load_settings({name: value})
    assert [p.setting for p in settings.problems] == [name]
    assert "credentials" in settings.problems[0].message
    shown = repr(settings) + json.dumps(settings.report())
    with pytest.raises(ConfigError) as raised:
        settings.require("storage")
    shown += raised.value.message + json.dumps(raised.value.to_dict())
    assert SECRET not in shown


def test_vmss_names_list_and_time_zone_warning():
    settings = load_settings({"AZURE_VMSS_NAME": " a1 , b_2,c.3 ", "WEBSITE_TIME_ZONE": "Europe/Berlin",
                              "WEBSITE_SKU": "Dynamic"})
    assert settings.vmss_names == ("a1", "b_2", "c.3")
    assert settings.time_zone_ignored
    assert "not honoured" in settings.report()["warnings"][0]
    assert not load_settings({"WEBSITE_TIME_ZONE": "Europe/Berlin", "WEBSITE_SKU": "ElasticPremium"}).time_zone_ignored


@pytest.mark.parametrize(("name", "value"), [
    ("AZURE_BATCH_POOL_ID", "has space"),
    ("AZURE_BATCH_POOL_ID", "x" * 65),
    ("AZURE_BATCH_VM_SIZE", "D2_V3"),
    ("AZURE_BATCH_VM_IMAGE_ID", "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/images/i"),
    ("AZURE_VMSS_API_VER", "latest"),
    ("AZURE_AD_TOKEN_EP", "http://login.example"),
    ("AZURE_STORAGE_APP_DIRECTORY", "Apps"),
    ("K8S_VERSION", "1.34.2"),
    ("TESK_NODEPORT", "8080"),
    ("BATCHK8S_SCHEDULES", "[{"),
])
def test_malformed_values_are_named(name, value):
    problems = load_settings({name: value}).problems
    assert [p.setting for p in problems] == [name]


def test_gallery_image_version_id_is_accepted():
    image = ("/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Compute/galleries/k8sGallery"
             "/images/k8sMasterImage/versions/2026.11.1")
    assert load_settings({"AZURE_BATCH_VM_IMAGE_ID": image}).vm_image_id == image


def test_example_settings_file_lists_every_setting_and_is_valid():
    env = read_settings_file(ROOT / "local.settings.json.example")
    primary = {name for name in setting_names() if not name.startswith("AZURE_AD_SP_")} - {"WEBSITE_SKU"}
    assert primary <= set(env), sorted(primary - set(env))
    assert load_settings(env).problems == ()


def test_settings_file_errors_name_the_option(tmp_path):
    with pytest.raises(InputError, match="--settings"):
        read_settings_file(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        read_settings_file(bad)
    bad.write_text('{"Values": []}')
    with pytest.raises(InputError, match="Values"):
        read_settings_file(bad)


def test_settings_file_with_a_byte_order_mark_is_read(tmp_path, capsys):
    """Notepad and PowerShell's Out-File write UTF-8 with a byte-order mark; json.loads refuses one."""
    from batchk8s.cli import main

    text = json.dumps({"IsEncrypted": False, "Values": {"AZURE_RES_GROUP_NAME": "rg-bom", "AZURE_VMSS_NAME": "vmss-a"},
                       "_comment": "Grüße"}, ensure_ascii=False)
    path = tmp_path / "bom.settings.json"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert read_settings_file(path) == {"AZURE_RES_GROUP_NAME": "rg-bom", "AZURE_VMSS_NAME": "vmss-a"}
    main(["config", "check", "--json", "--settings", str(path)])
    out, err = capsys.readouterr()
    assert "--settings" not in err
    assert json.loads(out)["settings"]["AZURE_RES_GROUP_NAME"] == "rg-bom"


def test_connection_string_shows_the_account_but_never_the_key_or_its_end():
    key = "Zm9vYmFyLXN0b3JhZ2Uta2V5LWVuZHM=="
    settings = load_settings({"AzureWebJobsStorage": f"DefaultEndpointsProtocol=https;AccountName=hpcstore;"
                                                      f"AccountKey={key};EndpointSuffix=core.windows.net"})
    shown = settings.report()["settings"]["AzureWebJobsStorage"]
    assert shown == ("DefaultEndpointsProtocol=https;AccountName=hpcstore;AccountKey=***;"
                     "EndpointSuffix=core.windows.net")
    assert key[-4:] not in repr(settings) and settings.webjobs_storage.reveal().endswith("core.windows.net")
    sas = load_settings({"AzureWebJobsStorage": "BlobEndpoint=https://a.blob.core.windows.net;"
                                                "SharedAccessSignature=sv=2024&sig=abcdEFGH1234"})
    assert "sig=" not in str(sas.webjobs_storage) and "1234" not in str(sas.webjobs_storage)


def test_the_webhook_url_is_a_secret_and_must_be_https():
    url = "https://prod-01.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?sig=Zq8sEcReT0kEn"
    settings = load_settings({"BATCHK8S_WEBHOOK_URL": url, "BATCHK8S_WEBHOOK_FORMAT": "Teams"})
    shown = repr(settings) + json.dumps(settings.report())
    assert settings.problems == () and settings.webhook_format == "teams"
    assert settings.webhook_url.reveal() == url and "sig=" not in shown and "***" in shown

    plain = load_settings({"BATCHK8S_WEBHOOK_URL": "http://hooks.example.org/T0/s3cr3t",
                           "BATCHK8S_WEBHOOK_FORMAT": "discord", "BATCHK8S_WEBHOOK_EVENTS": "some"})
    problems = {p.setting: p.message for p in plain.problems}
    assert set(problems) == {"BATCHK8S_WEBHOOK_URL", "BATCHK8S_WEBHOOK_FORMAT", "BATCHK8S_WEBHOOK_EVENTS"}
    assert problems["BATCHK8S_WEBHOOK_URL"].startswith("must be an https:// URL")
    assert "s3cr3t" not in json.dumps(plain.report()) and plain.webhook_url is None


NO_CREDENTIALS = ("must not carry credentials (user:password@ or a ?query such as a SAS); "
                  "use the setting meant for the secret (e.g. TES_TOKEN, TES_USERNAME/TES_PASSWORD)")


@pytest.mark.parametrize(("name", "value", "message"), [
    ("TESK_API_URL", "https://alice:s3cret@tes.example.org/v1?token=abc#frag",
     f"'https://***@tes.example.org/v1?***': {NO_CREDENTIALS}"),
    ("TESK_API_URL", "http://tes.example.org/v1#s3cret", f"'http://tes.example.org/v1?***': {NO_CREDENTIALS}"),
    ("TESK_API_URL", "http://user@tes.example.org", f"'http://***@tes.example.org': {NO_CREDENTIALS}"),
    ("TESK_API_URL", "ftp://tes.example.org", "'ftp://tes.example.org': must be an http:// or https:// URL"),
    ("TESK_API_URL", "tes.example.org?x=1", "'tes.example.org?x=1': must be an http:// or https:// URL"),
    ("TESK_API_URL", "https://", "'https://': must be an http:// or https:// URL"),
    ("AZURE_BATCH_ACCOUNT_URL", "http://acct.westeurope.batch.azure.com",
     "'http://acct.westeurope.batch.azure.com': must be an https:// URL"),
    ("AZURE_BATCH_ACCOUNT_URL", "https:///path", "'https:///path': must be an https:// URL"),
    ("AZURE_BATCH_ACCOUNT_URL", "http://b.example.net/" + "p" * 59,  # 80 characters: shown whole
     repr("http://b.example.net/" + "p" * 59) + ": must be an https:// URL"),
    ("AZURE_BATCH_ACCOUNT_URL", "http://b.example.net/" + "p" * 60,  # longer: cut to 80 with the ellipsis
     repr("http://b.example.net/" + "p" * 56 + "...") + ": must be an https:// URL"),
])
def test_a_malformed_url_is_shown_without_its_credentials(name, value, message):
    settings = load_settings({name: value})
    assert [(p.setting, p.message) for p in settings.problems] == [(name, message)]


@pytest.mark.parametrize(("name", "value", "stored"), [
    ("TESK_API_URL", "http://tes.example.org:8080/ga4gh/tes/v1/", "http://tes.example.org:8080/ga4gh/tes/v1"),
    ("AZURE_BATCH_ACCOUNT_URL", "https://acct.westeurope.batch.azure.com//", "https://acct.westeurope.batch.azure.com"),
    ("TESK_API_URL", "https://tes.example.org/TESX/", "https://tes.example.org/TESX"),  # slashes only
])
def test_good_urls_are_kept_without_trailing_slashes(name, value, stored):
    settings = load_settings({name: value})
    assert settings.problems == ()
    assert stored in (settings.tes_url, settings.batch_account_url)


@pytest.mark.parametrize(("value", "shown"), [
    ("AccountName=a;AccountKey=k3y==;EndpointSuffix=core.windows.net",
     "AccountName=a;AccountKey=***;EndpointSuffix=core.windows.net"),
    ("BlobEndpoint=https://a.blob.core.windows.net/; sharedaccesssignature =sv=1&sig=x;",
     "BlobEndpoint=https://a.blob.core.windows.net/; sharedaccesssignature =***;"),
    ("UseDevelopmentStorage=true", "UseDevelopmentStorage=true"),
])
def test_connection_strings_hide_exactly_their_keys_and_signatures(value, shown):
    from batchk8s.settings import ConnectionString

    assert ConnectionString(value).masked() == shown


@pytest.mark.parametrize(("value", "shown"), [
    (["vmss-a", "vmss-b"], "vmss-a, vmss-b"), (("only",), "only"), ([], ""), (True, "true"), (False, "false"),
    (168, "168"), ("0 0 19 * * Mon-Fri", "0 0 19 * * Mon-Fri"),
])
def test_reported_values_are_written_as_a_person_writes_them(value, shown):
    from batchk8s.settings import written

    assert written(value) == shown
