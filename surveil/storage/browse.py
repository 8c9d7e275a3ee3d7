"""Read-side catalog queries for people and the API: keyframes, stats, example crops.

Split from `repositories.py`, which keeps the ingest writes and search hydration;
`SqlCatalog` inherits these, so callers still see one Catalog.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from surveil.domain import CameraStats, KeyframeRecord, SearchFilters, StoredAppearance
from surveil.storage.tables import AppearanceRow, CameraRow, KeyframeRow, SourceRow

_A = AppearanceRow

# Every column of a StoredAppearance, in constructor order; the embedding stays behind.
STORED_COLUMNS = (
    _A.id,
    _A.keyframe_id,
    _A.camera_id,
    _A.ts,
    _A.frame_index,
    _A.label,
    _A.confidence,
    _A.x1,
    _A.y1,
    _A.x2,
    _A.y2,
    _A.space,
    _A.model_id,
    _A.crop_path,
    _A.track_id,
)


def to_stored(row: Sequence[Any]) -> StoredAppearance:
    (id_, kf, cam, ts, fi, label, conf, x1, y1, x2, y2, space, model_id, crop, track) = row
    return StoredAppearance(
        id=id_,
        keyframe_id=kf,
        camera_id=cam,
        ts=ts,
        frame_index=fi,
        label=label,
        confidence=conf,
        bbox=(x1, y1, x2, y2),
        space=space,
        model_id=model_id,
        crop_path=crop,
        track_id=track,
    )


class BrowseQueries:
    """Mixin for SqlCatalog: the reads behind result pages and summaries."""

    _sessions: sessionmaker[Session]

    def keyframe_appearances(self, *, keyframe_id: int) -> list[StoredAppearance]:
        """Every appearance found on one keyframe, by id."""
        stmt = select(*STORED_COLUMNS).where(_A.keyframe_id == keyframe_id).order_by(_A.id)
        with self._sessions() as session:
            return [to_stored(row) for row in session.execute(stmt)]

    def best_appearance(self, *, label: str) -> StoredAppearance | None:
        """The most confident embedded appearance with a label (the demo's example crop).

        Embedded: its stored vector is its own crop's (quality > 0), not one it carried from
        its track, so a search by its crop finds it at ~1.0.
        """
        stmt = (
            select(*STORED_COLUMNS)
            .where(_A.label == label, _A.quality > 0)
            .order_by(_A.confidence.desc(), _A.id)
            .limit(1)
        )
        with self._sessions() as session:
            row = session.execute(stmt).first()
        return None if row is None else to_stored(row)

    def get_keyframe(self, *, keyframe_id: int) -> KeyframeRecord | None:
        """A stored keyframe by id, or None."""
        with self._sessions() as session:
            row = session.get(KeyframeRow, keyframe_id)
        if row is None:
            return None
        return KeyframeRecord(
            row.id,
            row.camera_id,
            row.source_id,
            row.frame_index,
            row.ts,
            row.width,
            row.height,
            row.image_path,
        )

    def stats(self) -> list[CameraStats]:
        """Per-camera counts and time span, for `surveil status`."""
        per_camera_sources = select(SourceRow.camera_id, func.count()).group_by(SourceRow.camera_id)
        per_camera_keyframes = select(KeyframeRow.camera_id, func.count()).group_by(
            KeyframeRow.camera_id
        )
        per_camera_appearances = select(
            _A.camera_id, func.count(), func.min(_A.ts), func.max(_A.ts)
        ).group_by(_A.camera_id)
        with self._sessions() as session:
            cams = list(session.scalars(select(CameraRow.id).order_by(CameraRow.id)))
            n_src = dict(session.execute(per_camera_sources).all())
            n_kf = dict(session.execute(per_camera_keyframes).all())
            apps = {cam: (n, lo, hi) for cam, n, lo, hi in session.execute(per_camera_appearances)}
        out = []
        for cam in cams:
            n_app, first, last = apps.get(cam, (0, None, None))
            out.append(CameraStats(cam, n_src.get(cam, 0), n_kf.get(cam, 0), n_app, first, last))
        return out


def unindexed(column: InstrumentedAttribute[str]) -> ColumnElement[str]:
    """SQLite's unary `+`: the same value, but the planner may not use an index for it.

    SQLite here has no statistics, so it can prefer `(camera_id, ts)` or `(space, ts)`
    to a far narrower index on another term; this takes that choice away.
    """
    return UnaryExpression(column.expression, operator=custom_op("+"), type_=column.type)


def filter_clauses(
    filters: SearchFilters | None, *, sqlite_plain: bool = False
) -> list[ColumnElement[bool]]:
    """The WHERE clauses of a search's filters, on appearance rows.

    `sqlite_plain` keeps the camera and label terms off their indexes (SQLite only), for
    queries that must be driven by another index (a search's track ids).
    """
    if filters is None:
        return []
    clauses: list[ColumnElement[bool]] = []
    plain = unindexed if sqlite_plain else (lambda c: c)
    if filters.cameras:
        clauses.append(plain(AppearanceRow.camera_id).in_(sorted(filters.cameras)))
    if filters.labels:
        clauses.append(plain(AppearanceRow.label).in_(sorted(filters.labels)))
    if filters.since is not None:
        clauses.append(AppearanceRow.ts >= filters.since)
    if filters.until is not None:
        clauses.append(AppearanceRow.ts <= filters.until)
    return clauses
