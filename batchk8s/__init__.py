"""batchk8s: scheduled compute control, Kubernetes on Azure Batch, workflows and TES on Azure."""

__version__ = "0.1.0"

# The release that renamed routes and CLI verbs (GET /api/schedule -> /api/vmss/timer, `schedule` ->
# `cron`): the old names answer for this release only, marked deprecated as of this date.
DEPRECATED_SINCE = "2026-12-01"


def deprecation_headers(successor: str) -> dict[str, str]:
    """What an old route's answers carry: RFC 9745's `Deprecation` (DEPRECATED_SINCE as `@` epoch
    seconds) and an RFC 8288 `Link` to the route that replaces it."""
    from datetime import UTC, date, datetime, time

    since = datetime.combine(date.fromisoformat(DEPRECATED_SINCE), time(), UTC)
    return {"Deprecation": f"@{int(since.timestamp())}", "Link": f'<{successor}>; rel="successor-version"'}
