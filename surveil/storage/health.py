"""Live cameras' health and gaps in the catalog, so any process can read what `run` sees.

`surveil run` overwrites one row per camera every few seconds; `surveil cameras status`,
the API and the metrics endpoint read them. Gaps (a camera offline from..to) are
appended once the camera is back, so history says where footage is missing and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from surveil.storage.tables import CameraGapRow, CameraHealthRow

HEALTH_STATES = ("connecting", "online", "stalled", "offline", "stopped")


@dataclass(frozen=True)
class CameraHealth:
    """One camera's health as `surveil run` last wrote it."""

    camera_id: str
    state: str
    last_frame_at: datetime | None
    fps: float
    keyframes_per_s: float
    keyframes: int
    drops: int
    reconnects: int
    last_error: str | None
    updated_at: datetime


@dataclass(frozen=True)
class CameraGap:
    """A stretch of time a camera delivered no frames."""

    camera_id: str
    start_ts: datetime
    end_ts: datetime
    reason: str | None


class SqlHealth:
    """Reads and writes camera_health and camera_gaps; one short transaction per call."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._sessions = session_factory

    def write(self, rows: Sequence[CameraHealth]) -> None:
        """Upsert every camera's health in one transaction."""
        if not rows:
            return
        values = [_values(r) for r in rows]
        with self._sessions.begin() as session:
            dialect = session.get_bind().dialect.name
            if dialect in ("postgresql", "sqlite"):
                mod: Any = postgresql if dialect == "postgresql" else sqlite
                stmt = mod.insert(CameraHealthRow)
                update = {c: stmt.excluded[c] for c in values[0] if c != "camera_id"}
                session.execute(
                    stmt.on_conflict_do_update(index_elements=["camera_id"], set_=update), values
                )
            else:  # pragma: no cover - only the two supported back-ends are tested
                ids = [r.camera_id for r in rows]
                session.execute(delete(CameraHealthRow).where(CameraHealthRow.camera_id.in_(ids)))
                session.execute(insert(CameraHealthRow), values)

    def read(self) -> list[CameraHealth]:
        """Every camera's last written health, by camera id."""
        stmt = select(CameraHealthRow).order_by(CameraHealthRow.camera_id)
        with self._sessions() as session:
            return [_health(r) for r in session.scalars(stmt)]

    def add_gap(self, gap: CameraGap) -> None:
        """Record that a camera delivered nothing from start_ts to end_ts."""
        with self._sessions.begin() as session:
            session.add(
                CameraGapRow(
                    camera_id=gap.camera_id,
                    start_ts=gap.start_ts,
                    end_ts=gap.end_ts,
                    reason=gap.reason,
                )
            )

    def gaps(self, camera_id: str | None = None) -> list[CameraGap]:
        """Recorded gaps, oldest first, for one camera or all."""
        stmt = select(CameraGapRow).order_by(CameraGapRow.start_ts, CameraGapRow.id)
        if camera_id is not None:
            stmt = stmt.where(CameraGapRow.camera_id == camera_id)
        with self._sessions() as session:
            return [
                CameraGap(r.camera_id, r.start_ts, r.end_ts, r.reason)
                for r in session.scalars(stmt)
            ]


def _values(h: CameraHealth) -> dict[str, Any]:
    return {
        "camera_id": h.camera_id,
        "state": h.state,
        "last_frame_at": h.last_frame_at,
        "fps": h.fps,
        "keyframes_per_s": h.keyframes_per_s,
        "keyframes": h.keyframes,
        "drops": h.drops,
        "reconnects": h.reconnects,
        "last_error": h.last_error,
        "updated_at": h.updated_at,
    }


def _health(r: CameraHealthRow) -> CameraHealth:
    return CameraHealth(
        r.camera_id,
        r.state,
        r.last_frame_at,
        r.fps,
        r.keyframes_per_s,
        r.keyframes,
        r.drops,
        r.reconnects,
        r.last_error,
        r.updated_at,
    )
