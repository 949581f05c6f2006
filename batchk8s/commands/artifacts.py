"""`artifacts upload`: push scripts/, k8sresources/ and tesk-tasks/ into their Blob containers."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from batchk8s.commands import Output
from batchk8s.settings import Settings


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    artifacts = subparsers.add_parser("artifacts", help="the files nodes download from Blob storage")
    verbs = artifacts.add_subparsers(dest="verb", required=True, metavar="VERB")
    upload = verbs.add_parser("upload", parents=[common],
                              help="upload changed scripts, manifests and TES tasks (unchanged ones are skipped)")
    upload.add_argument("--root", metavar="DIR", type=Path,
                        help="directory holding scripts/, k8sresources/ and tesk-tasks/ (default: this repository)")
    upload.set_defaults(handler=upload_command)


def upload_command(args: argparse.Namespace, settings: Settings) -> Output:
    from batchk8s.storage import upload_artifacts

    report = upload_artifacts(settings, args.root, deadline=args.deadline)
    data = report.to_dict()
    lines = [f"{blob.status:9} {blob.container}/{blob.name} ({blob.bytes} bytes, {blob.content_type})"
             for blob in report.blobs]
    lines.append(f"{report.uploaded} uploaded ({report.bytes_uploaded} bytes), {report.unchanged} unchanged "
                 f"in {', '.join(report.containers)} ({data['seconds']} s)")
    return Output(data, "\n".join(lines))
