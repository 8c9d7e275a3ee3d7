"""The catalog queries the vector index is fed and checked from (rebuild and reconcile).

The index holds one pooled vector per track (id = track id, shard = the UTC day of the
track's first appearance; a track never spans two days), so these read `tracks`.

Split from `repositories.py` so that module stays about ingest and search hydration;
`SqlCatalog` inherits these, so callers still see one Catalog.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from surveil.domain import ConfigError, Space, Vectors
from surveil.ports import Ids, VectorBatch, VectorMeta
from surveil.storage.tables import AppearanceRow, TrackRow

#: Ids per plain IN (...) list on other dialects (bound-variable limits).
IN_LIST_CHUNK = 1_000

_A = AppearanceRow
_T = TrackRow


def chunked(ids: Sequence[int], size: int) -> Iterator[list[int]]:
    """Consecutive slices of at most `size` ids, as plain ints."""
    for start in range(0, len(ids), size):
        yield [int(i) for i in ids[start : start + size]]


def vectors_from_blobs(space: str, blobs: Sequence[bytes], dims: Sequence[int]) -> Vectors:
    """Stored float32 embedding bytes as one matrix; mixed sizes mean the model changed."""
    if not blobs:
        return np.zeros((0, 0), np.float32)
    if len(set(dims)) != 1:
        raise ConfigError(
            f"appearances in space {space!r} have mixed embedding sizes {sorted(set(dims))}: "
            "the embedder model changed; re-embed or remove the old appearances"
        )
    flat = np.frombuffer(b"".join(blobs), dtype="<f4")
    return flat.astype(np.float32).reshape(len(blobs), dims[0])


def utc_day(dialect: str, column: Any = None) -> ColumnElement[Any]:
    """SQL for the UTC day of a timestamp column (default `appearances.ts`), index-only."""
    column = _A.ts if column is None else column
    if dialect == "postgresql":
        return func.date(func.timezone("UTC", column))
    if dialect == "sqlite":
        # UtcDateTime stores UTC text 'YYYY-MM-DD HH:MM:SS[.ffffff]': the day is its prefix.
        return func.substr(column, 1, 10)
    raise ConfigError(f"no UTC-day expression for database dialect {dialect!r}")


def _on_days(days: Collection[date]) -> ColumnElement[bool]:
    """A track starts on one of the UTC days: half-open ranges, so (space, first_ts) serves."""
    ranges = []
    for day in sorted(set(days)):
        start = datetime.combine(day, time(), tzinfo=UTC)
        ranges.append(and_(_T.first_ts >= start, _T.first_ts < start + timedelta(days=1)))
    return or_(*ranges)


class IndexFeedQueries:
    """Reads of stored embeddings and per-day ids/counts; mixed into `SqlCatalog`."""

    _sessions: sessionmaker[Session]

    def iter_vectors(
        self, space: Space, *, ids: Sequence[int] | None = None, batch_size: int = 10_000
    ) -> Iterator[VectorBatch]:
        """Stream tracks' pooled vectors in id order, one short query per batch (keyset paging)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        columns = (
            _T.id,
            _T.first_ts,
            _T.embedding,
            _T.dim,
            _T.camera_id,
            _T.label_group,
            _T.last_ts,
        )
        if ids is not None:
            wanted = sorted({int(i) for i in ids})
            for chunk in chunked(wanted, min(batch_size, IN_LIST_CHUNK)):
                stmt = select(*columns).where(_T.space == space, _T.id.in_(chunk)).order_by(_T.id)
                batch = self._vector_batch(space, stmt)
                if batch is not None:
                    yield batch
            return
        last_id = -1
        while True:
            stmt = (
                select(*columns)
                .where(_T.space == space, _T.id > last_id)
                .order_by(_T.id)
                .limit(batch_size)
            )
            batch = self._vector_batch(space, stmt)
            if batch is None:
                return
            yield batch
            last_id = int(batch.ids[-1])

    def _vector_batch(
        self, space: str, stmt: Select[int, datetime, bytes, int, str, str, datetime]
    ) -> VectorBatch | None:
        with self._sessions() as session:
            rows = session.execute(stmt).all()
        if not rows:
            return None
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        days = [r[1].date() for r in rows]
        vectors = vectors_from_blobs(space, [r[2] for r in rows], [r[3] for r in rows])
        meta = [VectorMeta(r[4], r[5], r[1], r[6]) for r in rows]
        return VectorBatch(ids=ids, days=days, vectors=vectors, meta=meta)

    def ids_by_day(self, space: Space, *, days: Collection[date] | None = None) -> dict[date, Ids]:
        """Track ids of a space grouped by UTC day (only `days` when given), to reconcile."""
        if days is not None and not days:
            return {}
        by_day: dict[date, list[int]] = defaultdict(list)
        stmt = select(_T.id, _T.first_ts).where(_T.space == space).order_by(_T.id)
        if days is not None:
            stmt = stmt.where(_on_days(days))
        with self._sessions() as session:
            for id_, ts in session.execute(stmt.execution_options(yield_per=50_000)):
                by_day[ts.date()].append(id_)
        return {day: np.asarray(v, dtype=np.int64) for day, v in sorted(by_day.items())}

    def counts_by_day(self, space: Space) -> dict[date, int]:
        """Tracks per UTC day, counted in SQL, so reconcile need not read every id."""
        with self._sessions() as session:
            day = utc_day(session.get_bind().dialect.name, _T.first_ts).label("day")
            stmt = select(day, func.count()).where(_T.space == space).group_by(day)
            rows = session.execute(stmt).all()
        # SQLite hands back the day as text, PostgreSQL as a date.
        return {
            d if isinstance(d, date) else date.fromisoformat(d): int(n) for d, n in sorted(rows)
        }

    def tracks_changed_since(
        self, space: Space, since: datetime, *, day: date | None = None
    ) -> Ids:
        """Tracks (starting on `day`, if given) whose pooled vector changed at or after `since`."""
        stmt = select(_T.id).where(_T.space == space, _T.updated_at >= since)
        if day is not None:
            stmt = stmt.where(_on_days([day]))
        with self._sessions() as session:
            ids = list(session.scalars(stmt.order_by(_T.id)))
        return np.asarray(ids, dtype=np.int64)
