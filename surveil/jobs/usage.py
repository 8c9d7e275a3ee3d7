"""What footage costs on disk, per camera, and how many days of it fit in the budgets.

`measure_usage` counts real bytes: files from the catalog's byte columns (rows from
before those columns are sized once through the blob store), catalog rows from the
database's own table sizes, vectors from the index files. Catalog and index bytes are
shared out per appearance and per keyframe, so one camera's figure is its files plus
its rows' share. `estimate` turns the bytes per camera-day measured so far into days
that fit and the dates the budget and the disk fill. It is the `surveil storage
estimate --json` contract and the API's /api/v1/storage view.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from surveil import telemetry
from surveil.config import RetentionSettings
from surveil.files import Disk
from surveil.ports import BlobInventory
from surveil.search.render import iso
from surveil.storage.usage import CameraBytes, Overheads, SqlUsage

log = structlog.get_logger(__name__)

#: Rows sized per blob-store round (an object store answers a batch in parallel).
SIZE_BATCH = 5000


@dataclass(frozen=True, slots=True)
class CameraUsage:
    """One camera's stored bytes (files + its share of rows and vectors)."""

    camera_id: str
    bytes: int
    appearances: int
    keyframes: int
    days: int
    first: datetime | None
    last: datetime | None
    #: Of `bytes`, its crop and keyframe files'.
    file_bytes: int = 0

    @property
    def bytes_per_day(self) -> float:
        """Bytes per day with footage so far (0 when it has none)."""
        return self.bytes / self.days if self.days else 0.0


@dataclass
class Usage:
    """Everything stored, per camera, with the overheads used to share rows and vectors."""

    cameras: dict[str, CameraUsage]
    overheads: Overheads
    sized: int = 0

    @property
    def total(self) -> int:
        """Bytes stored: every camera's files plus all catalog and index bytes."""
        files = sum(c.file_bytes for c in self.cameras.values())
        return files + self.overheads.catalog_bytes + self.overheads.index_bytes


def size_unsized(
    store: SqlUsage, files: BlobInventory, *, progress: Callable[[int], None] | None = None
) -> int:
    """Record the file size of every row stored before sizes were (a missing file is 0)."""
    done = 0
    while batch := store.unsized(limit=SIZE_BATCH):
        sizes = files.sizes([u.path for u in batch])
        for kind in ("keyframes", "appearances"):
            store.set_sizes(
                kind,
                {u.id: s or 0 for u, s in zip(batch, sizes, strict=True) if u.kind == kind},
            )
        done += len(batch)
        if progress is not None:
            progress(len(batch))
    if done:
        log.info("storage.sized", rows=done)
    return done


def measure_usage(store: SqlUsage, files: BlobInventory, index_bytes: int) -> Usage:
    """Bytes stored per camera, after sizing rows older than the byte columns."""
    sized = size_unsized(store, files)
    tables = store.row_bytes()
    cams = store.cameras()
    overheads = _overheads(cams, tables, index_bytes)
    usage = Usage(
        {c: _camera(b, overheads) for c, b in sorted(cams.items())}, overheads, sized=sized
    )
    for cam in usage.cameras.values():
        telemetry.STORED_BYTES.labels(cam.camera_id).set(cam.bytes)
    return usage


def _overheads(cams: dict[str, CameraBytes], tables: dict[str, int], index: int) -> Overheads:
    apps = sum(c.appearances for c in cams.values())
    frames = sum(c.keyframes for c in cams.values())
    per_app = tables.get("appearances", 0) + tables.get("tracks", 0) + index
    return Overheads(
        per_appearance=per_app / apps if apps else 0.0,
        per_keyframe=tables.get("keyframes", 0) / frames if frames else 0.0,
        catalog_bytes=sum(tables.values()),
        index_bytes=index,
        tables=tables,
    )


def _camera(b: CameraBytes, o: Overheads) -> CameraUsage:
    return CameraUsage(
        b.camera_id,
        b.file_bytes + o.share(b.appearances, b.keyframes),
        b.appearances,
        b.keyframes,
        b.days,
        b.first,
        b.last,
        file_bytes=b.file_bytes,
    )


# ---- the estimate ----------------------------------------------------------------------


@dataclass
class Estimate:
    """Days that fit per camera and when the budget and the disk fill at today's rate."""

    now: datetime
    usage: Usage
    budget: int | None
    camera_budgets: dict[str, int]
    disk: Disk | None
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def bytes_per_day(self) -> float:
        """All cameras' bytes per day together."""
        return sum(c.bytes_per_day for c in self.usage.cameras.values())

    def to_dict(self) -> dict[str, Any]:
        """The `storage estimate --json` contract's fields first, then the rest."""
        rate = self.bytes_per_day
        return {
            "bytes_stored": self.usage.total,
            "budget_bytes": self.budget,
            "cameras": self.rows,
            "bytes_per_day": round(rate),
            "days_that_fit": _days(self.budget, rate),
            "budget_full_at": _fill_date(self.now, self.budget, self.usage.total, rate),
            "disk_total_bytes": None if self.disk is None else self.disk.total,
            "disk_free_bytes": None if self.disk is None else self.disk.free,
            "disk_full_at": None
            if self.disk is None
            else _fill_date(self.now, self.disk.free, 0, rate),
            "catalog_bytes": self.usage.overheads.catalog_bytes,
            "index_bytes": self.usage.overheads.index_bytes,
            "now": iso(self.now),
        }


def estimate(
    usage: Usage, settings: RetentionSettings, disk: Disk | None, *, now: datetime
) -> Estimate:
    """The estimate from what is stored so far and the configured budgets."""
    out = Estimate(
        now.astimezone(UTC), usage, settings.max_bytes, dict(settings.camera_max_bytes), disk
    )
    total_rate = out.bytes_per_day
    for cam in usage.cameras.values():
        rate = cam.bytes_per_day
        own = settings.camera_max_bytes.get(cam.camera_id)
        fits = [d for d in (_days(own, rate), _days(settings.max_bytes, total_rate)) if d]
        out.rows.append(
            {
                "camera_id": cam.camera_id,
                "bytes": cam.bytes,
                "bytes_per_day": round(rate),
                "days_that_fit": min(fits) if fits else None,
                "budget_bytes": own,
                "days_stored": cam.days,
                "appearances": cam.appearances,
                "keyframes": cam.keyframes,
                "oldest": iso(cam.first) if cam.first else None,
                "newest": iso(cam.last) if cam.last else None,
            }
        )
    return out


def _days(budget: int | None, rate: float) -> float | None:
    """Days of footage `budget` holds at `rate` bytes a day (None without either)."""
    if not budget or rate <= 0:
        return None
    return round(budget / rate, 1)


def _fill_date(now: datetime, capacity: int | None, used: int, rate: float) -> str | None:
    """When `used` grows to `capacity` at `rate` a day (now if it already has)."""
    if capacity is None or rate <= 0:
        return None
    days = max(0.0, (capacity - used) / rate)
    if not math.isfinite(days) or days > 365 * 100:
        return None
    return iso(now + timedelta(days=days))
