"""`openapi`: print the HTTP API's OpenAPI document (or its Markdown rendering, docs/http-api.md)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from batchk8s.commands import Output
from batchk8s.errors import InputError
from batchk8s.settings import Settings


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser("openapi", parents=[common],
                                   help="print the OpenAPI 3.0 document of the HTTP API (no Azure needed)")
    parser.add_argument("--server", metavar="URL",
                        help="the app's base URL, e.g. https://myapp.azurewebsites.net (default: a template)")
    parser.add_argument("--markdown", action="store_true", help="print the Markdown reference instead")
    parser.set_defaults(handler=print_openapi)


def print_openapi(args: argparse.Namespace, settings: Settings) -> Output:
    from batchk8s.openapi import document, markdown

    server = args.server
    if server is not None and not server.startswith(("https://", "http://")):
        raise InputError.for_field("--server", "must be an http(s) URL such as https://myapp.azurewebsites.net")
    spec = document(server.rstrip("/") if server else None)
    # print() ends the text with the newline the Markdown file ends with.
    return Output(spec, markdown(spec).rstrip("\n") if args.markdown else json.dumps(spec, indent=2))
