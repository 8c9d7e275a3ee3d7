"""The orphan sweep's catalog reads: stored keys by folder or by source, exact checks, counts.

A full sweep streams every stored key in code-point order and merges it with a walk of
the disk. The incremental sweep takes one slice of source folders per run instead, and
asks only for the keys of those sources, through the (source_id, frame_index) and
keyframe_id indexes, so a run costs what its slice holds, never what the catalog holds.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from sqlalchemy import Select, and_, func, select
from sqlalchemy.orm import Session, sessionmaker

from surveil.storage.tables import AppearanceRow, KeyframeRow, SourceRow, TrackRow

_A = AppearanceRow
_K = KeyframeRow
_T = TrackRow

Kind = Literal["appearances", "keyframes"]
#: Rows fetched per round trip when streaming blob keys for the orphan sweep.
STREAM_CHUNK = 20_000
#: Keys per exact-reference query (each is one bound array parameter on PostgreSQL).
CHECK_CHUNK = 5_000


def _column(kind: Kind) -> Any:
    return _A.crop_path if kind == "appearances" else _K.image_path


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


class SweepQueries:
    """What the orphan sweep reads from the catalog; mixed into `SqlRetention`."""

    _sessions: sessionmaker[Session]

    def stored_paths(self, kind: Kind, prefix: str) -> Iterator[str]:
        """Blob keys under `prefix` that rows of `kind` reference, in code-point order.

        Code-point order (PostgreSQL's "C" collation, SQLite's BINARY) is the order the
        sweep walks the disk in, so both sides merge in one pass with no set in memory.
        """
        column = _column(kind)
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        with self._sessions() as session:
            dialect = session.get_bind().dialect.name
            key = column.collate("C") if dialect == "postgresql" else column
            stmt = (
                select(column)
                .where(key >= prefix, key < upper)
                .order_by(key)
                .execution_options(yield_per=STREAM_CHUNK)
            )
            for (path,) in session.execute(stmt):
                yield str(path)

    def source_paths(self, kind: Kind, sources: Collection[int]) -> set[str]:
        """Blob keys rows of `kind` from these sources reference (an index lookup each)."""
        if not sources:
            return set()
        wanted = sorted(int(s) for s in sources)
        stmt: Select[str | None]
        if kind == "appearances":
            stmt = (
                select(_A.crop_path)
                .join(_K, _K.id == _A.keyframe_id)
                .where(_K.source_id.in_(wanted))
            )
        else:
            stmt = select(_K.image_path).where(_K.source_id.in_(wanted), _K.image_path.is_not(None))
        # Core rows, not ORM ones: a slice at 1M stored is ~150k keys.
        with self._sessions() as session:
            rows = session.connection().execute(stmt.execution_options(yield_per=STREAM_CHUNK))
            return {str(p) for (p,) in rows}

    def referenced(self, kind: Kind, keys: Sequence[str]) -> set[str]:
        """Which of `keys` some row of `kind` references, whatever its source.

        The incremental sweep's safety check before it deletes a file it found no row for
        among its folder's source: a row elsewhere may still point at it.
        """
        column = _column(kind)
        found: set[str] = set()
        with self._sessions() as session:
            for start in range(0, len(keys), CHECK_CHUNK):
                chunk = list(keys[start : start + CHECK_CHUNK])
                found.update(
                    str(p) for p in session.scalars(select(column).where(column.in_(chunk)))
                )
        return found

    def sources_updated_since(self, since: datetime) -> list[tuple[str, int]]:
        """(camera, source id) of sources written to at or after `since`: where an ingest
        that crashed between writing files and committing rows leaves orphans."""
        stmt = select(SourceRow.camera_id, SourceRow.id).where(SourceRow.updated_at >= since)
        with self._sessions() as session:
            return [(str(cam), int(src)) for cam, src in session.execute(stmt)]

    def track_day_span(self, space: str) -> tuple[date, date] | None:
        """First and last UTC day of the space's tracks (two index lookups), None if none."""
        stmt = select(func.min(_T.first_ts), func.max(_T.first_ts)).where(_T.space == space)
        with self._sessions() as session:
            lo, hi = session.execute(stmt).one()
        if lo is None or hi is None:
            return None
        return lo.astimezone(UTC).date(), hi.astimezone(UTC).date()

    def tracks_updated_since(self, space: str, since: datetime) -> list[tuple[int, date, datetime]]:
        """(id, UTC day, updated_at) of tracks whose vector changed at or after `since`: one
        range scan of ix_tracks_updated_at for every day a sweep checks."""
        stmt = select(_T.id, _T.first_ts, _T.updated_at).where(
            _T.space == space, _T.updated_at >= since
        )
        with self._sessions() as session:
            return [
                (int(i), first.astimezone(UTC).date(), at)
                for i, first, at in session.connection().execute(stmt)
            ]

    def track_counts(self, space: str, days: Collection[date]) -> dict[date, int]:
        """Tracks of `space` per UTC day for just these days (range scans of one index)."""
        counts: dict[date, int] = {}
        with self._sessions() as session:
            for day in sorted(days):
                start = _day_start(day)
                on_day = and_(_T.first_ts >= start, _T.first_ts < start + timedelta(days=1))
                stmt = select(func.count()).select_from(_T).where(_T.space == space, on_day)
                counts[day] = int(session.scalar(stmt) or 0)
        return counts
