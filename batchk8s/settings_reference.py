"""docs/settings.md, rendered from the declarations in `batchk8s.settings`.

The reference is generated so that it cannot drift from what the app reads: a setting added, renamed or
given another default changes the page, and a test fails until the page is written again
(`make docs`, or `python -m batchk8s config reference > docs/settings.md`).
"""

from __future__ import annotations

from dataclasses import Field
from typing import Any

from batchk8s.settings import SPECS

REGENERATE = "python -m batchk8s config reference > docs/settings.md"

INTRO = f"""\
# Settings reference

<!-- Generated from batchk8s/settings.py by `{REGENERATE}` (or `make docs`); edit the declarations, not this page. -->

Every setting is an app setting (in Azure) or an environment variable (locally); the CLI's
`--settings FILE` reads a `local.settings.json`-shaped file instead. Copy
`local.settings.json.example` to `local.settings.json` (git-ignored: it holds secrets) for `func start`.
They are read once into one typed object; `python -m batchk8s config check` (one line per feature: ready,
off, incomplete or not configured; exit 2 when nothing is ready — [cli-conventions.md](cli-conventions.md))
and `GET /api/config` show an invalid value as given and list every problem at once (missing, malformed,
contradictory) with secrets shown as `***` plus at most the last four characters
(`AzureWebJobsStorage` shows its account and endpoints, with `AccountKey` and any
SAS replaced by `***`). URL settings (`AZURE_AD_TOKEN_EP`, `AZURE_SP_APP_ID_URI`,
`AZURE_BATCH_ACCOUNT_URL`, `AZURE_STORAGE_BLOB_ENDPOINT`, `TESK_API_URL`) must not carry credentials
(`user:password@`) or a query string: they are shown and logged, so secrets go in the secret settings.

A second name in parentheses is an alias, read when the first is unset. A secret is never shown, logged or
returned beyond that masked hint.
"""


def _default(spec: Field[Any]) -> str:
    shown = spec.metadata["shown_default"]
    if shown is not None:
        return shown
    value = spec.default
    if value is None or value == ():
        return "—"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def _row(spec: Field[Any]) -> str:
    first, *aliases = spec.metadata["names"]
    name = f"`{first}`" + "".join(f" (`{alias}`)" for alias in aliases)
    secret = "yes" if spec.metadata["secret"] else ""
    cells = (name, _default(spec), secret, spec.metadata["help"].replace("|", "\\|"))
    return "| " + " | ".join(cells) + " |"


def markdown() -> str:
    """The whole of docs/settings.md: the introduction and one row per setting, in declaration order."""
    rows = "\n".join(_row(spec) for spec in SPECS)
    return f"{INTRO}\n| setting | default | secret | meaning |\n| --- | --- | --- | --- |\n{rows}\n"
