"""`SqlJobs`: each scheduled job's next run and lease, in the catalog database.

A runner may start a job only by winning one conditional UPDATE (due, and no live
lease): two scheduler processes never run the same job at once, a crashed runner's lease
expires, and the schedule survives restarts because it lives here, not in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from surveil.storage.tables import JobStateRow

_jobs = cast(Table, JobStateRow.__table__)


@dataclass(frozen=True)
class JobState:
    """A job's schedule and its last run, as stored."""

    name: str
    next_run_at: datetime
    lease_owner: str | None
    lease_until: datetime | None
    last_started_at: datetime | None
    last_finished_at: datetime | None
    last_status: str | None
    last_error: str | None
    last_seconds: float | None
    runs: int


class SqlJobs:
    """Job schedule and leases; every method is one short transaction."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def ensure(self, name: str, *, first_run_at: datetime) -> JobState:
        """The job's state, created (due at `first_run_at`) when it has none yet."""
        with self._sessions.begin() as session:
            row = session.get(JobStateRow, name)
            if row is not None:
                return _state(row)
        try:
            with self._sessions.begin() as session:
                session.execute(insert(_jobs).values(name=name, next_run_at=first_run_at, runs=0))
        except IntegrityError:
            pass  # another process created it first; theirs is as good as ours
        return self.get(name)

    def get(self, name: str) -> JobState:
        """One job's state (KeyError when unknown)."""
        with self._sessions() as session:
            row = session.get(JobStateRow, name)
            if row is None:
                raise KeyError(name)
            return _state(row)

    def claim(
        self,
        name: str,
        *,
        owner: str,
        now: datetime,
        lease: timedelta,
        slack: timedelta,
        dead_owner: str | None = None,
    ) -> bool:
        """Take the job's lease if it is due (within `slack`) and nobody holds a live lease.

        `dead_owner` is a holder known to be dead (a crashed process on this host): its
        lease is taken over at once instead of after it expires.
        """
        free = or_(_jobs.c.lease_until.is_(None), _jobs.c.lease_until < now)
        if dead_owner is not None:
            free = or_(free, _jobs.c.lease_owner == dead_owner)
        with self._sessions.begin() as session:
            result = session.execute(
                update(_jobs)
                .where(_jobs.c.name == name, _jobs.c.next_run_at <= now + slack, free)
                .values(lease_owner=owner, lease_until=now + lease, last_started_at=now)
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def renew(self, name: str, *, owner: str, now: datetime, lease: timedelta) -> bool:
        """Extend a running job's lease; False when another runner holds it now."""
        with self._sessions.begin() as session:
            result = session.execute(
                update(_jobs)
                .where(_jobs.c.name == name, _jobs.c.lease_owner == owner)
                .values(lease_until=now + lease)
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def finish(
        self,
        name: str,
        *,
        owner: str,
        now: datetime,
        next_run_at: datetime,
        status: str,
        error: str | None,
        seconds: float,
    ) -> bool:
        """Release the lease and set the next run; False if the lease was lost meanwhile."""
        with self._sessions.begin() as session:
            result = session.execute(
                update(_jobs)
                .where(_jobs.c.name == name, _jobs.c.lease_owner == owner)
                .values(
                    lease_owner=None,
                    lease_until=None,
                    next_run_at=next_run_at,
                    last_finished_at=now,
                    last_status=status,
                    last_error=error,
                    last_seconds=seconds,
                    runs=_jobs.c.runs + 1,
                )
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def states(self) -> list[JobState]:
        """Every job's state, by name."""
        with self._sessions() as session:
            rows = session.scalars(select(JobStateRow).order_by(JobStateRow.name)).all()
            return [_state(r) for r in rows]

    def forget(self, names: list[str]) -> None:
        """Drop the state of jobs that no longer exist (a deleted rule)."""
        if names:
            with self._sessions.begin() as session:
                session.execute(delete(_jobs).where(_jobs.c.name.in_(names)))


def _state(row: JobStateRow) -> JobState:
    return JobState(
        name=row.name,
        next_run_at=row.next_run_at,
        lease_owner=row.lease_owner,
        lease_until=row.lease_until,
        last_started_at=row.last_started_at,
        last_finished_at=row.last_finished_at,
        last_status=row.last_status,
        last_error=row.last_error,
        last_seconds=row.last_seconds,
        runs=row.runs,
    )
