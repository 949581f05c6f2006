"""docs/settings.md is generated from the declarations in batchk8s/settings.py and must not go stale."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchk8s.cli import main
from batchk8s.settings import SPECS, setting_names
from batchk8s.settings_reference import REGENERATE, markdown

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_DOC = ROOT / "docs" / "settings.md"


def test_docs_settings_md_is_the_rendered_reference() -> None:
    assert SETTINGS_DOC.read_text(encoding="utf-8") == markdown(), f"docs/settings.md is stale: run `{REGENERATE}`"


def test_every_setting_has_help_and_a_row_of_its_own() -> None:
    assert [spec.name for spec in SPECS if len(spec.metadata["help"].strip()) < 10] == []
    rows = [line for line in SETTINGS_DOC.read_text(encoding="utf-8").splitlines() if line.startswith("| `")]
    assert len(rows) == len(SPECS)
    for name in setting_names():
        assert sum(f"`{name}`" in row.split(" | ")[0] for row in rows) == 1, name


def test_secrets_and_defaults_are_shown_as_declared() -> None:
    rows = {line.split(" | ")[0].strip("| `").split("`")[0]: line.split(" | ")
            for line in SETTINGS_DOC.read_text(encoding="utf-8").splitlines() if line.startswith("| `")}
    assert rows["AZURE_SP_CLIENT_SECRET"][2] == "yes" and rows["AZURE_SP_CLIENT_ID"][2] == ""
    assert rows["AZURE_BATCH_POOL_ID"][1] == "`k8s-pool`"
    assert rows["AzureWebJobs.vmss_schedule.Disabled"][1] == "`false`"
    assert rows["AZURE_VMSS_NAME"][1] == "—"
    assert rows["AZURE_BATCH_RES_GROUP_NAME"][1] == "`AZURE_RES_GROUP_NAME`"


def test_the_command_prints_the_reference(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "reference", "--settings", str(ROOT / "tests/data/empty.settings.json")]) == 0
    assert capsys.readouterr().out == markdown()


def test_the_readme_links_the_reference() -> None:
    assert "docs/settings.md" in (ROOT / "README.md").read_text(encoding="utf-8")
