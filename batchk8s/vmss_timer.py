"""The next firings of the single `VmssTriggerSchedule` timer, as the Functions host will run it.

The host evaluates the NCRONTAB in WEBSITE_TIME_ZONE where the plan honours it and in UTC where it
does not (Linux Consumption / Flex Consumption); showing both clocks makes that difference visible
before it costs a night of running VMs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from batchk8s.settings import Settings, time_zone_warning


def evaluation_zone(settings: Settings) -> ZoneInfo:
    return ZoneInfo("UTC" if settings.time_zone_ignored else settings.time_zone)


def upcoming_firings(settings: Settings, now: datetime, count: int) -> dict[str, Any]:
    """`count` firings after `now`, each in UTC and in the configured zone, with action and targets."""
    from batchk8s.ncrontab import parse

    schedule = parse(settings.vmss_schedule or "")
    zone = evaluation_zone(settings)
    local_zone = ZoneInfo(settings.time_zone)
    start = (now if now.tzinfo else now.replace(tzinfo=UTC)).astimezone(zone)
    times = schedule.occurrences(start, count)
    return {
        "schedule": settings.vmss_schedule,
        "action": settings.vmss_action,
        "targets": [{"resourceGroup": settings.resource_group, "name": name} for name in settings.vmss_names],
        "timeZone": zone.key,
        "configuredTimeZone": settings.time_zone,
        "firings": [{"utc": t.astimezone(UTC).isoformat(), "local": t.astimezone(local_zone).isoformat()}
                    for t in times],
        "warnings": [time_zone_warning(settings)] if settings.time_zone_ignored else [],
    }
