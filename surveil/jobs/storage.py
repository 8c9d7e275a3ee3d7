"""Storage on a schedule and on request: the check and the estimate.

The check frees the oldest footage between daily runs as soon as a budget or the disk's
high-water mark is passed, so a busy day cannot fill the disk.

Cheap when nothing is over (sums over indexed byte columns and one `statvfs`); over,
it runs retention with what the disk needs freed, under retention's run lock.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from surveil.config import RetentionSettings
from surveil.container import Services
from surveil.files import Disk, disk_of
from surveil.jobs.retention import measure, retention_parts, run_retention
from surveil.jobs.runner import Job, utc_now
from surveil.jobs.usage import Estimate, Usage, estimate

JOB_NAME = "retention.check"


def disk_excess(disk: Disk | None, high_water: float | None) -> int:
    """Bytes to free to bring the disk back to its high-water mark (0 when under it)."""
    if disk is None or high_water is None:
        return 0
    return max(0, round((disk.total - disk.free) - high_water * disk.total))


def over_budget(usage: Usage, settings: RetentionSettings) -> bool:
    """Whether the footage, or any camera's, is above its budget."""
    if settings.max_bytes is not None and usage.total > settings.max_bytes:
        return True
    return any(
        usage.cameras[cam].bytes > budget
        for cam, budget in settings.camera_max_bytes.items()
        if cam in usage.cameras
    )


def check_storage(services: Services) -> dict[str, Any]:
    """Measure; run retention when a budget or the high-water mark is passed."""
    settings = services.settings.retention
    parts = retention_parts(services)
    usage = measure(parts)
    disk = disk_of(parts.media_root)
    excess = disk_excess(disk, settings.high_water)
    summary: dict[str, Any] = {
        "stored_bytes": usage.total,
        "disk_used": None if disk is None else round(disk.used_fraction, 4),
        "freed_appearances": 0,
        "freed_keyframes": 0,
    }
    if excess or over_budget(usage, settings):
        report = run_retention(parts, settings, now=utc_now(), disk_excess=excess)
        summary["freed_appearances"] = report.appearances
        summary["freed_keyframes"] = report.keyframes
        summary["budget"] = None if report.budget is None else report.budget.to_dict()
    return summary


def storage_estimate(services: Services) -> Estimate:
    """Days of footage that fit per camera, and when budget and disk fill (sizes rows first)."""
    parts = retention_parts(services)
    usage = measure(parts)
    return estimate(usage, services.settings.retention, disk_of(parts.media_root), now=utc_now())


def storage_check_job(services: Services) -> Job:
    """Every `retention.check_minutes`; quiet (debug) when nothing had to go."""
    minutes = services.settings.retention.check_minutes
    return Job(
        JOB_NAME,
        timedelta(minutes=minutes),
        lambda: check_storage(services),
        work_keys=("freed_appearances", "freed_keyframes"),
    )
