"""`SqlLeases`: which live worker reads which camera, and which workers are alive.

Every `surveil run` process registers a row in live_workers and heartbeats it; a camera
is read only by the worker holding its row in camera_leases. Each method is one short
transaction and every change of hands is ONE conditional statement (an UPDATE guarded by
"expired, or already mine", or an INSERT that a primary key makes exclusive), so two
workers racing for a camera on PostgreSQL never both win. Times come from the caller's
clock (UTC): hosts must keep their clocks within a small part of `live.lease_seconds`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from surveil.storage.tables import CameraLeaseRow, LiveWorkerRow

_leases = cast(Table, CameraLeaseRow.__table__)
_workers = cast(Table, LiveWorkerRow.__table__)


@dataclass(frozen=True)
class WorkerInfo:
    """A live worker as registered: who, where, since when, and what it is pinned to."""

    id: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    lease_until: datetime
    cameras: tuple[str, ...] = ()
    camera_tags: tuple[str, ...] = ()
    index_backend: str = "faiss"

    def eligible(self, camera_id: str, tags: Collection[str]) -> bool:
        """Whether this worker's pins let it read the camera (no pins: any camera)."""
        if self.cameras and camera_id not in self.cameras:
            return False
        return not self.camera_tags or bool(set(self.camera_tags) & set(tags))


@dataclass(frozen=True)
class CameraLease:
    """A camera's lease as stored."""

    camera_id: str
    owner: str
    acquired_at: datetime
    renewed_at: datetime
    lease_until: datetime


def _split(text: str) -> tuple[str, ...]:
    return tuple(t for t in text.split(",") if t)


def _worker(row: LiveWorkerRow) -> WorkerInfo:
    return WorkerInfo(
        id=row.id,
        host=row.host,
        pid=row.pid,
        started_at=row.started_at,
        heartbeat_at=row.heartbeat_at,
        lease_until=row.lease_until,
        cameras=_split(row.cameras),
        camera_tags=_split(row.camera_tags),
        index_backend=row.index_backend,
    )


def _lease(row: CameraLeaseRow) -> CameraLease:
    return CameraLease(row.camera_id, row.owner, row.acquired_at, row.renewed_at, row.lease_until)


class SqlLeases:
    """Camera leases and the live worker registry; every method is one short transaction."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    # -- workers ---------------------------------------------------------------------

    def register(self, worker: WorkerInfo) -> None:
        """Add (or refresh) the worker's row; a restarted id simply takes its row over."""
        values = {
            "host": worker.host,
            "pid": worker.pid,
            "started_at": worker.started_at,
            "heartbeat_at": worker.heartbeat_at,
            "lease_until": worker.lease_until,
            "cameras": ",".join(worker.cameras),
            "camera_tags": ",".join(worker.camera_tags),
            "index_backend": worker.index_backend,
        }
        with self._sessions.begin() as session:
            done = session.execute(update(_workers).where(_workers.c.id == worker.id), values)
            if done.rowcount == 1:  # type: ignore[attr-defined]
                return
        try:
            with self._sessions.begin() as session:
                session.execute(insert(_workers).values(id=worker.id, **values))
        except IntegrityError:  # registered between our two statements: refresh it
            with self._sessions.begin() as session:
                session.execute(update(_workers).where(_workers.c.id == worker.id), values)

    def heartbeat(self, worker_id: str, *, now: datetime, lease: timedelta) -> bool:
        """Extend the worker's row; False when it is gone (pruned as dead: register again)."""
        with self._sessions.begin() as session:
            done = session.execute(
                update(_workers)
                .where(_workers.c.id == worker_id)
                .values(heartbeat_at=now, lease_until=now + lease)
            )
            return bool(done.rowcount == 1)  # type: ignore[attr-defined]

    def workers(self, *, now: datetime | None = None) -> list[WorkerInfo]:
        """Registered workers by id; with `now`, only those whose heartbeat is still valid."""
        stmt = select(LiveWorkerRow).order_by(LiveWorkerRow.id)
        if now is not None:
            stmt = stmt.where(LiveWorkerRow.lease_until >= now)
        with self._sessions() as session:
            return [_worker(r) for r in session.scalars(stmt)]

    def deregister(self, worker_id: str) -> list[str]:
        """Remove the worker and release every camera it holds; returns those cameras."""
        with self._sessions.begin() as session:
            held = list(
                session.scalars(select(_leases.c.camera_id).where(_leases.c.owner == worker_id))
            )
            session.execute(delete(_leases).where(_leases.c.owner == worker_id))
            session.execute(delete(_workers).where(_workers.c.id == worker_id))
        return sorted(held)

    def prune(self, *, now: datetime, dead: Sequence[str] = ()) -> int:
        """Forget workers whose heartbeat expired (or known dead): status stays truthful."""
        gone = _workers.c.lease_until < now
        if dead:
            gone = or_(gone, _workers.c.id.in_(list(dead)))
        with self._sessions.begin() as session:
            done = session.execute(delete(_workers).where(gone))
            return int(done.rowcount or 0)  # type: ignore[attr-defined]

    # -- leases ----------------------------------------------------------------------

    def leases(self) -> list[CameraLease]:
        """Every camera lease, live or expired, by camera id."""
        with self._sessions() as session:
            rows = session.scalars(select(CameraLeaseRow).order_by(CameraLeaseRow.camera_id))
            return [_lease(r) for r in rows]

    def claim(
        self,
        camera_id: str,
        *,
        owner: str,
        now: datetime,
        lease: timedelta,
        dead_owner: str | None = None,
    ) -> bool:
        """Take the camera if nobody holds a live lease on it (or `dead_owner`, known dead).

        A camera never leased is inserted (the primary key lets one racer win); a leased
        one changes hands only through an UPDATE guarded by its expiry.
        """
        values = {"owner": owner, "acquired_at": now, "renewed_at": now, "lease_until": now + lease}
        free = _leases.c.lease_until < now
        if dead_owner is not None:
            free = or_(free, _leases.c.owner == dead_owner)
        with self._sessions.begin() as session:
            done = session.execute(
                update(_leases).where(_leases.c.camera_id == camera_id, free).values(**values)
            )
            if done.rowcount == 1:  # type: ignore[attr-defined]
                return True
            if session.get(CameraLeaseRow, camera_id) is not None:
                return False  # held by a live worker
        try:
            with self._sessions.begin() as session:
                session.execute(insert(_leases).values(camera_id=camera_id, **values))
        except IntegrityError:
            return False  # another worker inserted it first
        return True

    def renew(
        self, owner: str, camera_ids: Collection[str], *, now: datetime, lease: timedelta
    ) -> set[str]:
        """Extend the owner's leases on `camera_ids`; returns those it still holds.

        A lease that expired but nobody took is still the owner's and is renewed; one
        another worker took is not, and the caller must stop reading that camera.
        """
        if not camera_ids:
            return set()
        mine = and_(_leases.c.owner == owner, _leases.c.camera_id.in_(list(camera_ids)))
        with self._sessions.begin() as session:
            session.execute(
                update(_leases).where(mine).values(renewed_at=now, lease_until=now + lease)
            )
            return set(session.scalars(select(_leases.c.camera_id).where(mine)))

    def release(self, owner: str, camera_ids: Collection[str]) -> int:
        """Give cameras back (only those the owner still holds); returns how many."""
        if not camera_ids:
            return 0
        with self._sessions.begin() as session:
            done = session.execute(
                delete(_leases).where(
                    _leases.c.owner == owner, _leases.c.camera_id.in_(list(camera_ids))
                )
            )
            return int(done.rowcount or 0)  # type: ignore[attr-defined]

    def held_counts(self, *, now: datetime) -> dict[str, int]:
        """Live leases per owner: how the cameras are spread right now."""
        stmt = (
            select(_leases.c.owner, func.count())
            .where(_leases.c.lease_until >= now)
            .group_by(_leases.c.owner)
        )
        with self._sessions() as session:
            return {str(o): int(n) for o, n in session.execute(stmt)}
