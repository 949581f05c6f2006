"""`plan`: everything the app would do with these settings, computed offline.

Each area contributes a section builder `(settings, *, now, count) -> Section`, one module per area in
this package, listed in SECTIONS in the order `plan` prints them. Builders are pure: they validate and
build requests but send nothing to Azure, so `make run` works with no account, and a user can review a
change before it touches a subscription.
"""

from __future__ import annotations

from datetime import datetime

from batchk8s import clock
from batchk8s.plan.batch import pool_section, workflows_section
from batchk8s.plan.schedules import schedules_section
from batchk8s.plan.section import Section
from batchk8s.plan.settings import settings_section
from batchk8s.plan.tes import tes_section
from batchk8s.plan.vmss_timer import vmss_schedule_section
from batchk8s.settings import Settings

SECTIONS = (
    settings_section,
    vmss_schedule_section,
    schedules_section,
    pool_section,
    workflows_section,
    tes_section,
)

__all__ = ["SECTIONS", "Section", "build_plan"]


def build_plan(settings: Settings, now: datetime | None = None, count: int = 5) -> list[Section]:
    now = now or clock.now()
    return [section(settings, now=now, count=count) for section in SECTIONS]
