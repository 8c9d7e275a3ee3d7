"""Tracks in the catalog: written with their members in one transaction, read for search.

Every appearance belongs to a track. An ingest names each appearance's track by the
tracker's key and hands the tracks' state (`TrackUpdate`); an appearance stored without a
key becomes a closed track of its own, so nothing in the catalog is ever untracked and
the vector index (which holds one pooled vector per track) can always be fed from here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

import numpy as np
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    Table,
    any_,
    bindparam,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, sessionmaker

from surveil.domain import (
    NewKeyframe,
    SearchFilters,
    Space,
    StoredAppearance,
    StoredTrack,
    TrackUpdate,
    Vectors,
)
from surveil.ports import (
    Ids,
    IndexedTrack,
    LegacyMember,
    MemberVectors,
    OpenTrack,
    StoredMember,
    VectorMeta,
)
from surveil.storage.browse import STORED_COLUMNS, filter_clauses, to_stored, unindexed
from surveil.storage.db import BINARY_RESULTS
from surveil.storage.index_feed import chunked, vectors_from_blobs
from surveil.storage.tables import AppearanceRow, TrackRow, utcnow
from surveil.tracking.state import pool_vectors

_T = TrackRow
_A = AppearanceRow
_tracks = cast(Table, TrackRow.__table__)
#: Track ids per query when hydrating search results.
TRACK_CHUNK = 5_000


def solo_updates(batch: Sequence[NewKeyframe]) -> dict[tuple[int, int], TrackUpdate]:
    """A closed one-member track for each appearance that comes without a track key."""
    out: dict[tuple[int, int], TrackUpdate] = {}
    for k, kf in enumerate(batch):
        for n, app in enumerate(kf.appearances):
            if app.track_key is None:
                out[(k, n)] = TrackUpdate(
                    key=f"solo:{uuid.uuid4().hex}",
                    camera_id=kf.camera_id,
                    space=app.space,
                    label_group=app.label,
                    first_ts=kf.ts,
                    last_ts=kf.ts,
                    appearances=1,
                    embedding=app.embedding,
                    model_id=app.model_id,
                    closed=True,
                )
    return out


def vector_meta(track: TrackUpdate) -> VectorMeta:
    """The filter fields an index that filters inside its search keeps for a track."""
    return VectorMeta(track.camera_id, track.label_group, track.first_ts, track.last_ts)


def _track_values(track: TrackUpdate) -> dict[str, Any]:
    vec = np.asarray(track.embedding, dtype="<f4").reshape(-1)
    return {
        "key": track.key,
        "camera_id": track.camera_id,
        "space": track.space,
        "label": track.label_group,
        "label_group": track.label_group,
        "first_ts": track.first_ts,
        "last_ts": track.last_ts,
        "appearances": int(track.appearances),
        "best_quality": -1.0,
        "embedding": vec.tobytes(),
        "dim": int(vec.shape[0]),
        "model_id": track.model_id,
        "closed": bool(track.closed),
        "updated_at": utcnow(),
    }


#: Columns an upsert overwrites with the tracker's latest state (never label or best).
_STATE = ("last_ts", "appearances", "embedding", "dim", "model_id", "closed", "updated_at")


def upsert_tracks(session: Session, tracks: Sequence[TrackUpdate]) -> dict[str, int]:
    """Insert new tracks and set known ones to their latest state; ids by key."""
    if not tracks:
        return {}
    dialect = session.get_bind().dialect.name
    rows = [_track_values(t) for t in tracks]
    ids: dict[str, int] = {}
    if dialect in ("postgresql", "sqlite"):
        make = postgresql.insert if dialect == "postgresql" else sqlite.insert
        base: Any = make(_tracks)
        stmt = base.on_conflict_do_update(
            index_elements=[_tracks.c.key], set_={c: base.excluded[c] for c in _STATE}
        ).returning(_tracks.c.id, _tracks.c.key)
        for chunk in _chunks(rows, 500):
            for id_, key in session.execute(stmt, chunk):
                ids[str(key)] = int(id_)
        return ids
    for row in rows:  # other dialects: look up, then insert or update
        found = session.scalar(select(_T.id).where(_T.key == row["key"]))
        if found is None:
            found = session.execute(_tracks.insert().returning(_tracks.c.id), row).scalar_one()
        else:
            session.execute(update(_T).where(_T.id == found).values({c: row[c] for c in _STATE}))
        ids[row["key"]] = int(found)
    return ids


def _chunks(rows: list[dict[str, Any]], size: int) -> Iterable[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def promote_best(session: Session, members: Sequence[tuple[int, int, float, str]]) -> None:
    """Make each (track id, appearance id, quality, label) its track's best if it beats it."""
    best: dict[int, tuple[int, float, str]] = {}
    for track_id, app_id, quality, label in members:
        if track_id not in best or quality > best[track_id][1]:
            best[track_id] = (app_id, quality, label)
    if not best:
        return
    stmt = (
        update(_tracks)
        .where(_tracks.c.id == bindparam("t_id"), _tracks.c.best_quality < bindparam("q"))
        .values(
            best_appearance_id=bindparam("a_id"), best_quality=bindparam("q"), label=bindparam("lb")
        )
    )
    params = [{"t_id": t, "a_id": a, "q": q, "lb": lb} for t, (a, q, lb) in best.items()]
    session.connection().execute(stmt, params)


_TRACK_COLUMNS = (
    _T.id,
    _T.camera_id,
    _T.space,
    _T.label,
    _T.label_group,
    _T.first_ts,
    _T.last_ts,
    _T.appearances,
    _T.best_appearance_id,
    _T.closed,
)


def _stored_track(row: Sequence[Any]) -> StoredTrack:
    return StoredTrack(
        id=int(row[0]),
        camera_id=row[1],
        space=cast(Space, row[2]),
        label=row[3],
        label_group=row[4],
        first_ts=row[5],
        last_ts=row[6],
        appearances=int(row[7]),
        best_appearance_id=None if row[8] is None else int(row[8]),
        closed=bool(row[9]),
    )


def _track_match(dialect: str, ids: list[int]) -> ColumnElement[bool]:
    """`appearances.track_id` is one of `ids`; one array parameter on PostgreSQL."""
    if dialect == "postgresql":
        return _A.track_id == any_(bindparam("track_list", ids, type_=ARRAY(BigInteger)))
    return _A.track_id.in_(ids)


def _one_of(column: Any, ids: list[int], dialect: str) -> ColumnElement[bool]:
    """`column IN ids`, as one array parameter on PostgreSQL."""
    if dialect == "postgresql":
        return cast(
            ColumnElement[bool], column == any_(bindparam(None, ids, type_=ARRAY(BigInteger)))
        )
    return cast(ColumnElement[bool], column.in_(ids))


_Rows = TypeVar("_Rows", bound=Select[*tuple[Any, ...]])


def _members_of(
    stmt: _Rows,
    dialect: str,
    ids: list[int],
    filters: SearchFilters | None,
    space: Space | None = None,
) -> _Rows:
    """`stmt` limited to the members of tracks `ids` in the filters, via the track index.

    Without statistics (SQLite is never ANALYZEd here) a camera, label or space term made
    SQLite walk `(camera_id, ts)`, `(label, ts)` or `(space, ts)` instead: every
    appearance of the camera (or space) in the window, where the tracks' own members
    are a few thousand at most. Those terms are kept off their indexes on SQLite; the
    time window stays indexable, as `(track_id, ts)` serves it.
    """
    on_sqlite = dialect == "sqlite"
    stmt = stmt.where(_track_match(dialect, ids), *filter_clauses(filters, sqlite_plain=on_sqlite))
    if space is not None:
        stmt = stmt.where((unindexed(_A.space) if on_sqlite else _A.space) == space)
    return stmt


class TrackQueries:
    """Reads of tracks and their members; mixed into `SqlCatalog`."""

    _sessions: sessionmaker[Session]

    def track_members(
        self, track_ids: Sequence[int], *, filters: SearchFilters | None = None
    ) -> dict[int, list[StoredAppearance]]:
        """Members of the tracks that pass the filters, by track, in time order."""
        wanted = sorted({int(i) for i in track_ids})
        out: dict[int, list[StoredAppearance]] = {}
        with self._sessions() as session:
            conn = session.connection()
            for chunk in chunked(wanted, TRACK_CHUNK):
                stmt = _members_of(select(*STORED_COLUMNS), conn.dialect.name, chunk, filters)
                for row in conn.execute(stmt.order_by(_A.ts, _A.id)):
                    app = to_stored(row)
                    out.setdefault(int(app.track_id or 0), []).append(app)
        return out

    def member_vectors(
        self, space: Space, track_ids: Sequence[int], *, filters: SearchFilters | None = None
    ) -> MemberVectors:
        """(track, appearance, stored vector) of the tracks' members of `space` in the filters.

        A search re-scores every candidate track by its members but shows only the best
        few: this read takes three columns and no timestamps, so a few thousand members
        cost a few milliseconds; `track_members` then loads whole rows of the tracks shown.
        """
        wanted = sorted({int(i) for i in track_ids})
        rows: list[Any] = []
        with self._sessions() as session:
            conn = session.connection()
            for chunk in chunked(wanted, TRACK_CHUNK):
                stmt = select(_A.track_id, _A.id, _A.dim, _A.embedding)
                stmt = _members_of(stmt, conn.dialect.name, chunk, filters, space)
                rows += conn.execute(stmt.execution_options(**{BINARY_RESULTS: True})).all()
        if not rows:
            empty = np.zeros(0, np.int64)
            return MemberVectors(empty, empty, np.zeros((0, 0), np.float32))
        tracks, ids, dims, blobs = zip(*rows, strict=True)
        if len(set(dims)) != 1:
            vectors_from_blobs(space, blobs, dims)  # raises: the embedder model changed
        # One copy of the bytes, read in place (read-only): float32 little-endian as stored.
        flat = np.frombuffer(b"".join(blobs), dtype="<f4")
        return MemberVectors(
            tracks=np.fromiter(tracks, np.int64, len(rows)),
            ids=np.fromiter(ids, np.int64, len(rows)),
            vectors=flat.reshape(len(rows), int(dims[0])),
        )

    def track_vectors(self, space: Space, track_ids: Sequence[int]) -> tuple[Ids, Vectors]:
        """(ids, pooled vectors) of the tracks of `space` among `track_ids`, in id order.

        What re-ranking builds its neighbour graph from: one read of two columns for a few
        hundred candidate tracks (unknown ids and other spaces are left out).
        """
        wanted = sorted({int(i) for i in track_ids})
        rows: list[Any] = []
        with self._sessions() as session:
            for chunk in chunked(wanted, TRACK_CHUNK):
                stmt = select(_T.id, _T.dim, _T.embedding).where(
                    _T.id.in_(chunk), _T.space == space
                )
                rows += session.execute(stmt.order_by(_T.id)).all()
        if not rows:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        ids, dims, blobs = zip(*rows, strict=True)
        return np.fromiter(ids, np.int64, len(rows)), vectors_from_blobs(space, blobs, dims)

    def tracks(self, track_ids: Sequence[int]) -> list[StoredTrack]:
        """Tracks by id (unknown ids are left out), in id order."""
        wanted = sorted({int(i) for i in track_ids})
        found: list[StoredTrack] = []
        with self._sessions() as session:
            for chunk in chunked(wanted, TRACK_CHUNK):
                stmt = select(*_TRACK_COLUMNS).where(_T.id.in_(chunk)).order_by(_T.id)
                found += [_stored_track(r) for r in session.execute(stmt)]
        return found

    def track_embedding(self, track_id: int) -> tuple[Space, Vectors]:
        """The pooled (space, vector) of one track, to search by it ('find similar')."""
        from surveil.domain import NotFoundError

        stmt = select(_T.space, _T.embedding, _T.dim).where(_T.id == track_id)
        with self._sessions() as session:
            row = session.execute(stmt).first()
        if row is None:
            raise NotFoundError(f"no track with id {track_id}")
        space, blob, dim = row
        return cast(Space, space), vectors_from_blobs(space, [blob], [dim])[0]

    def open_tracks(self, *, camera_id: str, since: datetime) -> list[OpenTrack]:
        """Tracks of a camera still open and seen at or after `since`, members in order.

        What a resumed ingest or a reconnected camera hands back to its tracker.
        """
        heads = select(_T.id, _T.key, _T.label_group, _T.space, _T.model_id).where(
            _T.camera_id == camera_id, _T.closed.is_(False), _T.last_ts >= since
        )
        cols: tuple[Any, ...] = (_A.track_id, _A.id, _A.ts, _A.x1, _A.y1, _A.x2, _A.y2)
        cols += (_A.label, _A.confidence, _A.embedding, _A.dim, _A.quality, _A.space)
        with self._sessions() as session:
            found = session.execute(heads.order_by(_T.id)).all()
            if not found:
                return []
            ids = [int(r[0]) for r in found]
            stmt = select(*cols).where(_A.track_id.in_(ids)).order_by(_A.ts, _A.id)
            rows = session.execute(stmt).all()
        members: dict[int, list[StoredMember]] = {i: [] for i in ids}
        for r in rows:
            vec = vectors_from_blobs(r[12], [r[9]], [r[10]])[0]
            bbox = (float(r[3]), float(r[4]), float(r[5]), float(r[6]))
            members[int(r[0])].append(
                StoredMember(int(r[1]), r[2], bbox, r[7], float(r[8]), vec, float(r[11]))
            )
        return [
            OpenTrack(str(key), str(group), cast(Space, space), str(model), tuple(members[int(t)]))
            for t, key, group, space, model in found
            if members[int(t)]
        ]

    def close_tracks(self, *, camera_id: str, keys: Sequence[str] | None = None) -> int:
        """Mark tracks closed (all of the camera's open ones when `keys` is None)."""
        stmt = update(_T).where(_T.camera_id == camera_id, _T.closed.is_(False))
        if keys is not None:
            if not keys:
                return 0
            stmt = stmt.where(_T.key.in_(list(keys)))
        with self._sessions.begin() as session:
            return int(session.execute(stmt.values(closed=True)).rowcount or 0)  # type: ignore[attr-defined]

    def count_tracks(self, space: Space | None = None) -> int:
        """How many tracks are stored, in one space or all."""
        from sqlalchemy import func

        stmt = select(func.count()).select_from(_tracks)
        if space is not None:
            stmt = stmt.where(_T.space == space)
        with self._sessions() as session:
            return int(session.execute(stmt).scalar_one())


def settle_tracks(session: Session, track_ids: Iterable[int]) -> list[tuple[int, str, datetime]]:
    """After members were deleted: drop emptied tracks, recompute the rest from what is left.

    Returns (track id, space, first_ts) of every track whose index vector must follow:
    gone from the catalog (remove it) or changed (remove and add the new one).
    """
    wanted = sorted({int(i) for i in track_ids})
    if not wanted:
        return []
    # One array parameter each on PostgreSQL: retention settles 2000 tracks a batch, and
    # an IN list of 2000 literals cost ~150 ms a query to plan there (the scan itself: 2 ms).
    dialect = session.get_bind().dialect.name
    heads = {
        int(r[0]): (str(r[1]), r[2])
        for r in session.execute(
            select(_T.id, _T.space, _T.first_ts).where(_one_of(_T.id, wanted, dialect))
        )
    }
    cols = (_A.track_id, _A.id, _A.ts, _A.label, _A.embedding, _A.dim, _A.quality)
    left: dict[int, list[Any]] = {}
    members = _one_of(_A.track_id, list(heads), dialect)
    stmt = select(*cols).where(members).order_by(_A.ts, _A.id)
    for row in session.execute(stmt):
        left.setdefault(int(row[0] or 0), []).append(row)
    emptied = [t for t in heads if t not in left]
    if emptied:
        session.execute(_tracks.delete().where(_one_of(_tracks.c.id, emptied, dialect)))
    for track_id, rows in left.items():
        space = heads[track_id][0]
        vecs = vectors_from_blobs(space, [r[4] for r in rows], [r[5] for r in rows])
        pooled = pool_vectors(vecs, [r[6] for r in rows])
        best = max(rows, key=lambda r: (r[6], -r[1]))
        session.execute(
            update(_T)
            .where(_T.id == track_id)
            .values(
                first_ts=rows[0][2],
                last_ts=rows[-1][2],
                appearances=len(rows),
                embedding=np.asarray(pooled, "<f4").tobytes(),
                best_appearance_id=best[1],
                best_quality=best[6],
                label=best[3],
                updated_at=utcnow(),
            )
        )
    return [(t, space, first) for t, (space, first) in heads.items()]


#: Key prefix of the one-member tracks migration 0005 made of pre-track appearances.
LEGACY_PREFIX = "legacy:"


class BackfillQueries:
    """What `surveil tracks backfill` reads and writes; mixed into `SqlCatalog`."""

    _sessions: sessionmaker[Session]

    def legacy_cameras(self) -> list[str]:
        """Cameras that still have appearances in migrated one-member tracks."""
        stmt = select(_T.camera_id).where(_T.key.like(f"{LEGACY_PREFIX}%")).distinct()
        with self._sessions() as session:
            return sorted(str(c) for c in session.scalars(stmt))

    def legacy_members(
        self, *, camera_id: str, after: tuple[datetime, int] | None, limit: int
    ) -> list[LegacyMember]:
        """The next `limit` legacy appearances of a camera in (ts, id) order."""
        cols: tuple[Any, ...] = (_A.id, _A.keyframe_id, _A.track_id, _A.crop_path, _A.space)
        cols += (_A.model_id, _A.ts, _A.x1, _A.y1, _A.x2, _A.y2, _A.label, _A.confidence)
        cols += (_A.embedding, _A.dim, _A.quality)
        stmt = (
            select(*cols)
            .join(_T, _T.id == _A.track_id)
            .where(_A.camera_id == camera_id, _T.key.like(f"{LEGACY_PREFIX}%"))
        )
        if after is not None:
            stmt = stmt.where(tuple_(_A.ts, _A.id) > tuple_(*after))
        with self._sessions() as session:
            rows = session.execute(stmt.order_by(_A.ts, _A.id).limit(limit)).all()
        out = []
        for r in rows:
            vec = vectors_from_blobs(r[4], [r[13]], [r[14]])[0]
            member = StoredMember(
                int(r[0]), r[6], (r[7], r[8], r[9], r[10]), r[11], float(r[12]), vec, float(r[15])
            )
            out.append(
                LegacyMember(int(r[0]), int(r[1]), int(r[2]), r[3], cast(Space, r[4]), r[5], member)
            )
        return out

    def retrack(
        self, assignments: Sequence[tuple[int, str]], tracks: Sequence[TrackUpdate]
    ) -> tuple[list[IndexedTrack], list[tuple[int, str, datetime]]]:
        """Move appearances (id, track key) into the given tracks, in one transaction.

        Returns the tracks to index and the emptied legacy tracks (id, space, first_ts)
        whose vectors must leave the index.
        """
        with self._sessions.begin() as session:
            ids = upsert_tracks(session, tracks)
            app_ids = [a for a, _ in assignments]
            old = set(session.scalars(select(_A.track_id).where(_A.id.in_(app_ids))))
            stmt = update(_A).where(_A.id == bindparam("a_id")).values(track_id=bindparam("t_id"))
            params = [{"a_id": a, "t_id": ids[k]} for a, k in assignments]
            session.connection().execute(stmt, params)
            rows = session.execute(
                select(_A.track_id, _A.id, _A.quality, _A.label).where(_A.id.in_(app_ids))
            ).all()
            promote_best(
                session, [(int(t or 0), int(a), float(q), str(lb)) for t, a, q, lb in rows]
            )
            gone = settle_tracks(session, [int(t) for t in old if t is not None])
        indexed = [
            IndexedTrack(ids[t.key], t.space, t.first_ts.date(), t.embedding, vector_meta(t))
            for t in tracks
        ]
        return indexed, gone
