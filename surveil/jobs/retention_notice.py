"""Retention you can see coming: footage ingested already past its retention is named.

Without this, old footage (a backfill, the demo's sample dates) is stored, then silently
deleted by the next scheduled retention run.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog
from sqlalchemy import Engine, func, select

from surveil.config import RetentionSettings
from surveil.storage.retention import RetentionPolicy
from surveil.storage.tables import AppearanceRow, KeyframeRow

log = structlog.get_logger(__name__)


def _oldest(engine: Engine, source_id: int) -> list[tuple[str, str | None, datetime]]:
    """(camera, label or None for keyframes, oldest time) of one source's rows."""
    frames = (
        select(KeyframeRow.camera_id, func.min(KeyframeRow.ts))
        .where(KeyframeRow.source_id == source_id)
        .group_by(KeyframeRow.camera_id)
    )
    objects = (
        select(AppearanceRow.camera_id, AppearanceRow.label, func.min(AppearanceRow.ts))
        .join(KeyframeRow, KeyframeRow.id == AppearanceRow.keyframe_id)
        .where(KeyframeRow.source_id == source_id)
        .group_by(AppearanceRow.camera_id, AppearanceRow.label)
    )
    with engine.connect() as conn:
        rows: list[tuple[str, str | None, datetime]] = [
            (cam, None, ts) for cam, ts in conn.execute(frames) if ts is not None
        ]
        rows += [(cam, label, ts) for cam, label, ts in conn.execute(objects) if ts is not None]
    return rows


def _setting(settings: RetentionSettings, camera: str, label: str | None) -> str:
    """The setting that decides how long this is kept (the one to raise)."""
    if label is not None and label in settings.labels:
        return f"retention.labels.{label}"
    if camera in settings.cameras:
        return f"retention.cameras.{camera}"
    return "retention.days"


def retention_warnings(
    engine: Engine, settings: RetentionSettings, *, source_id: int, now: datetime
) -> list[str]:
    """One warning per camera/label of this source whose oldest footage is past retention."""
    policy = RetentionPolicy(
        now=now,
        days=settings.days,
        cameras=settings.cameras,
        labels=settings.labels,
        evidence_days=settings.evidence_days,
    )
    late: dict[tuple[str, str, float], datetime] = {}
    for camera, label, ts in _oldest(engine, source_id):
        days = policy.days_for(camera=camera, label=label)
        if ts + timedelta(days=days) > now:
            continue
        key = (camera, _setting(settings, camera, label), days)
        late[key] = min(ts, late.get(key, ts))
    by = (now + timedelta(hours=settings.interval_hours)).date().isoformat()
    out = []
    for (camera, setting, days), ts in sorted(late.items()):
        log.warning("ingest.past_retention", camera=camera, setting=setting, oldest=ts.isoformat())
        out.append(
            f"footage of camera {camera} from {ts.date().isoformat()} is older than its "
            f"retention ({days:g} days, {setting}): the next retention run deletes it "
            f"(scheduled by {by} UTC); raise {setting} to keep it"
        )
    return out
