"""`plan` sections: the create-pool request and each workflow's job and task requests, offline.

Built with the same pure builders the services use, so the plan is what would be sent; SAS URLs
and the node agent SKU (which need Storage and Batch) are shown as marked placeholders.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from batchk8s.errors import BatchK8sError
from batchk8s.plan.section import Section
from batchk8s.settings import Settings


def pool_section(settings: Settings, **_: Any) -> Section:
    from batchk8s.batch.pool_spec import planned_pool

    try:
        spec = planned_pool(settings)
    except BatchK8sError as error:
        return Section("batch pool", error.to_dict(), [f"PROBLEM {error.message}"])
    vm = spec["virtualMachineConfiguration"]
    image = vm["imageReference"].get("virtualMachineImageId") or "/".join(
        vm["imageReference"][k] for k in ("publisher", "offer", "sku", "version"))
    start = spec["startTask"]
    env = ", ".join(f"{e['name']}={e['value']}" for e in start.get("environmentSettings") or [])
    lines = [f"create pool {spec['id']} ({spec['vmSize']}, {spec['targetDedicatedNodes']} dedicated, "
             f"{spec['targetLowPriorityNodes']} spot) on {batch_target(settings)}",
             f"  image {image}, node agent {vm['nodeAgentSKUId']}",
             f"  start task (admin auto-user, retried {start['maxTaskRetryCount']}x, wait for success): "
             f"{start['commandLine']}",
             f"  bootstrap {start['resourceFiles'][0]['httpUrl']}", f"  env {env}",
             f"  {spec['taskSlotsPerNode']} task slot(s) per node"]
    for identity in (spec.get("identity") or {}).get("userAssignedIdentities") or []:
        lines.append(f"  identity {identity['resourceId']}: created through the management plane; nodes fetch "
                     "files and reach storage with it, no SAS")
    if spec.get("userAccounts"):
        lines.append(f"  login user {spec['userAccounts'][0]['name']} ({spec['userAccounts'][0]['elevationLevel']})")
    if vm.get("containerConfiguration"):
        registries = vm["containerConfiguration"]["containerRegistries"]
        lines.append(f"  container registry {registries[0]['registryServer']}")
    lines += emulator_warnings(file["httpUrl"] for file in start.get("resourceFiles") or [])
    return Section("batch pool", spec, lines)


def on_this_machine(url: str) -> bool:
    """Whether `url` names this machine (a loopback address or localhost), as Azurite's URLs do."""
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def emulator_warnings(urls: Iterable[str]) -> list[str]:
    """One warning when artifact URLs point at a local storage emulator: a Batch node fetching them
    would reach its own loopback, so the start task fails on every node, minutes after the pool was
    accepted."""
    local = sorted({url.split("?", 1)[0] for url in urls if on_this_machine(url)})
    if not local:
        return []
    return [f"WARNING {', '.join(local)} {'is' if len(local) == 1 else 'are'} on a local storage emulator "
            "(Azurite, UseDevelopmentStorage=true) that no Batch node can reach: set AZURE_STORAGE_ACCOUNT_NAME "
            "or AzureWebJobsStorage to a real storage account before creating the pool"]


def batch_target(settings: Settings) -> str:
    return settings.batch_account_url or "(AZURE_BATCH_ACCOUNT_URL not set)"


def workflows_section(settings: Settings, *, now: datetime, **_: Any) -> Section:
    from batchk8s.workflows import workflows
    from batchk8s.workflows.runs import planned_run

    data = []
    lines = []
    for workflow in workflows():
        try:
            run = planned_run(settings, workflow.name, None, now)
        except BatchK8sError as error:
            lines.append(f"PROBLEM {workflow.name}: {error.message}")
            continue
        data.append(run)
        job = run["job"]
        lines.append(f"{workflow.name}: job {job['id']} on pool {job['poolInfo']['poolId']} "
                     f"(task dependencies on), {len(run['tasks'])} task(s)")
        for task in run["tasks"]:
            after = task.get("dependsOn", {}).get("taskIds") or []
            files = ", ".join(f"{f['filePath']} from {f['httpUrl']}" for f in task.get("resourceFiles") or [])
            lines.append(f"  {task['id']}" + (f" after {', '.join(after)}" if after else "")
                         + (f"; files {files}" if files else "")
                         + ("; on the control-plane node" if task.get("affinityInfo") else ""))
    return Section("workflows", data, lines)
