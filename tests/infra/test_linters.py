"""checkov on the Bicep, azure-functions-doctor on the app, actionlint on the CI workflow."""

from __future__ import annotations

import json

from tests.infra.tools import ROOT, run


def test_checkov_bicep_reports_no_failed_check():
    # --skip-download: checkov would otherwise fetch guidelines from its vendor; tests stay on loopback.
    result = run("checkov", "--directory", "infra", "--framework", "bicep", "--skip-download", "--output", "json")
    report = json.loads(result.stdout)
    summary = report["summary"]
    assert summary["parsing_errors"] == 0 and summary["resource_count"] >= 15, summary
    failed = [(c["check_id"], c["file_path"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert failed == [] and summary["failed"] == 0
    assert summary["passed"] >= 15, summary  # the checks ran (a scan that checks nothing also fails nothing)
    for check in report["results"]["skipped_checks"]:
        reason = (check.get("check_result") or {}).get("suppress_comment") or ""
        assert len(reason.strip()) >= 30, f"{check['check_id']} in {check['file_path']} is skipped without a reason"


def test_checkov_would_catch_weak_transport(tmp_path):
    """The scan is live: the same storage module allowing TLS 1.0 and plain http fails it."""
    text = (ROOT / "infra" / "modules" / "storage.bicep").read_text(encoding="utf-8")
    weakened = text.replace("supportsHttpsTrafficOnly: true", "supportsHttpsTrafficOnly: false").replace(
        "minimumTlsVersion: 'TLS1_2'", "minimumTlsVersion: 'TLS1_0'")
    assert weakened != text
    (tmp_path / "storage.bicep").write_text(weakened, encoding="utf-8")
    result = run("checkov", "--directory", str(tmp_path), "--framework", "bicep", "--skip-download", "--output", "json")
    failed = {check["check_id"] for check in json.loads(result.stdout)["results"]["failed_checks"]}
    assert {"CKV_AZURE_44", "CKV_AZURE_3"} <= failed, failed


def test_functions_doctor_deploy_profile_has_no_failure(tmp_path):
    summary = tmp_path / "summary.json"
    result = run("azure-functions-doctor", "doctor", "--path", str(ROOT), "--profile", "deploy",
                 "--hosting-plan", "flex-consumption", "--format", "json", "--summary-json", str(summary))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    report = json.loads(result.stdout)
    failures = [(item["rule_id"], item.get("value")) for section in report["results"] for item in section["items"]
                if item["status"] == "fail"]
    assert failures == []
    counts = json.loads(summary.read_text(encoding="utf-8"))
    assert counts["passed"] >= 10 and counts["failed"] == 0, counts


def test_ci_workflow_passes_actionlint():
    workflows = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
    assert workflows, "the CI workflow is missing"
    # .venv/bin is on PATH, so actionlint also runs shellcheck on every `run:` script.
    result = run("actionlint", "-format", "{{json .}}", *(str(path) for path in workflows))
    assert result.returncode == 0 and json.loads(result.stdout or "[]") == [], result.stdout + result.stderr
    text = workflows[0].read_text(encoding="utf-8")
    assert "bash .ci/run" in text and "azd up" in text and "id-token: write" in text
