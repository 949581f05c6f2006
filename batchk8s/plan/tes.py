"""The `plan` section for TES: where requests would go and the request each sample would send.

Offline: samples are validated and their `azureblob://` inputs are shown as placeholders, because a
SAS URL is signed (and is a secret) only at submission.
"""

from __future__ import annotations

from typing import Any

from batchk8s.errors import InputError
from batchk8s.plan.section import Section
from batchk8s.settings import Settings


def endpoint_description(settings: Settings) -> str:
    if settings.effective_tes_transport == "direct":
        return (f"direct HTTP to {settings.tes_url} (API root discovered: /ga4gh/tes/v1, else /v1 for TESK 0.4)"
                if settings.tes_url else "direct, but TESK_API_URL is not set")
    node = "its control-plane node" if settings.k8s_node_role == "auto" else "a node"
    return (f"relay: a Batch task on {node} of pool {settings.pool_id} calls "
            f"http://localhost:{settings.tesk_node_port} (TESK's NodePort) and returns the answer on its stdout")


def tes_section(settings: Settings, **_: Any) -> Section:
    from batchk8s.tes import load_sample, mark_placeholders, sample_names, task_problems

    endpoint = endpoint_description(settings)
    lines = [f"transport: {endpoint}"]
    # A missing setting means TES is not configured, not that a setting is wrong: an app without TES is fine.
    lines += [f"not configured: {gap.setting} {gap.message}" for gap in settings.missing("tes")]
    samples: dict[str, Any] = {}
    for name in sample_names():
        document = load_sample(name)
        problems = task_problems(document)
        try:
            shown = mark_placeholders(document, settings)
        except InputError as error:
            shown, problems = document, problems + error.details
        samples[name] = {"request": {"method": "POST", "path": "/tasks", "body": shown}, "problems": problems}
        executors = "; ".join(" ".join(e.get("command", [])) for e in shown.get("executors", []))
        lines.append(f"sample {name}: POST /tasks ({'valid' if not problems else f'{len(problems)} problem(s)'}): "
                     f"{executors}")
        lines += [f"  input {entry.get('path')} <- {entry.get('url')}" for entry in shown.get("inputs", [])
                  if entry.get("url")]
        lines += [f"  PROBLEM {p['field']}: {p['message']}" for p in problems]
    return Section("tes", {"transport": settings.effective_tes_transport, "endpoint": endpoint,
                           "samples": samples}, lines)
