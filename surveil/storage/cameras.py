"""Camera administration and per-camera keyframe browsing, mixed into `SqlCatalog`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from surveil.domain import (
    CameraInfo,
    ConflictError,
    KeyframeRecord,
    NotFoundError,
    validate_camera_id,
    validate_tags,
)
from surveil.storage.tables import AppearanceRow, CameraRow, KeyframeRow, utcnow


def _camera(row: CameraRow) -> CameraInfo:
    tags = tuple(t for t in (row.tags or "").split(",") if t)
    return CameraInfo(row.id, row.name, row.enabled, row.url, row.created_at, tags)


def _keyframe(row: KeyframeRow) -> KeyframeRecord:
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


class CameraQueries:
    """Mixin for SqlCatalog: what the admin endpoints and the console's browser need."""

    _sessions: sessionmaker[Session]

    def list_cameras(self) -> list[CameraInfo]:
        """Every camera, by id."""
        with self._sessions() as session:
            return [_camera(r) for r in session.scalars(select(CameraRow).order_by(CameraRow.id))]

    def get_camera(self, camera_id: str) -> CameraInfo:
        """One camera; NotFoundError names the id."""
        with self._sessions() as session:
            row = session.get(CameraRow, camera_id)
            if row is None:
                raise NotFoundError(f"no camera {camera_id!r}")
            return _camera(row)

    def create_camera(
        self,
        *,
        camera_id: str,
        name: str | None,
        url: str | None,
        enabled: bool = True,
        tags: Sequence[str] = (),
    ) -> CameraInfo:
        """Register a camera ahead of its first footage; a taken id is a conflict."""
        validate_camera_id(camera_id)
        row = CameraRow(
            id=camera_id,
            name=name or camera_id,
            url=url,
            enabled=enabled,
            created_at=utcnow(),
            tags=",".join(validate_tags(tags)),
        )
        try:
            with self._sessions.begin() as session:
                session.add(row)
                session.flush()
                return _camera(row)
        except IntegrityError:
            raise ConflictError(f"camera {camera_id!r} already exists; PATCH it instead") from None

    def update_camera(
        self,
        camera_id: str,
        *,
        name: str | None = None,
        url: str | None = None,
        enabled: bool | None = None,
        tags: Sequence[str] | None = None,
    ) -> CameraInfo:
        """Change a camera's name, URL, enabled flag or tags; None leaves a field as it is.

        url="" clears the URL; tags=[] clears the tags.
        """
        with self._sessions.begin() as session:
            row = session.get(CameraRow, camera_id)
            if row is None:
                raise NotFoundError(f"no camera {camera_id!r}")
            if name is not None:
                row.name = name
            if url is not None:
                row.url = url or None
            if enabled is not None:
                row.enabled = enabled
            if tags is not None:
                row.tags = ",".join(validate_tags(tags))
            return _camera(row)

    def camera_keyframes(
        self,
        *,
        camera_id: str,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 60,
    ) -> list[tuple[KeyframeRecord, int]]:
        """A camera's keyframes by time from `since`, each with its number of appearances."""
        # Correlated count: one index probe per keyframe on the page, not a scan of all.
        n_apps = (
            select(func.count())
            .where(AppearanceRow.keyframe_id == KeyframeRow.id)
            .correlate(KeyframeRow)
            .scalar_subquery()
        )
        stmt = (
            select(KeyframeRow, n_apps)
            .where(KeyframeRow.camera_id == camera_id)
            .order_by(KeyframeRow.ts, KeyframeRow.id)
            .limit(limit)
        )
        if since is not None:
            stmt = stmt.where(KeyframeRow.ts >= since)
        if until is not None:
            stmt = stmt.where(KeyframeRow.ts <= until)
        with self._sessions() as session:
            return [(_keyframe(kf), int(n)) for kf, n in session.execute(stmt)]
