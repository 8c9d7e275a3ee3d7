"""`SqlCatalog`: the `ports.Catalog` over SQLAlchemy, for SQLite and PostgreSQL alike.

Each public method owns one short transaction from the session factory, so callers never
see sessions. Hot paths (ingest writes, search hydration) use Core statements on the
tables rather than ORM objects: no identity map, no per-row object construction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import numpy as np
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    String,
    Table,
    any_,
    bindparam,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from surveil.domain import (
    InputError,
    NewAppearance,
    NewKeyframe,
    NotFoundError,
    SearchFilters,
    Space,
    StoredAppearance,
    TrackUpdate,
    Vectors,
)
from surveil.ports import CommittedBatch, IndexedTrack, SourceRecord
from surveil.storage.browse import STORED_COLUMNS, BrowseQueries, filter_clauses, to_stored
from surveil.storage.cameras import CameraQueries
from surveil.storage.index_feed import (
    IN_LIST_CHUNK,
    IndexFeedQueries,
    chunked,
    vectors_from_blobs,
)
from surveil.storage.space_models import batch_models, require_models
from surveil.storage.tables import AppearanceRow, CameraRow, KeyframeRow, SourceRow, utcnow
from surveil.storage.tracks import (
    BackfillQueries,
    TrackQueries,
    promote_best,
    solo_updates,
    upsert_tracks,
    vector_meta,
)

#: Ids per query: bounds statement size; one array/JSON parameter carries them all.
ID_CHUNK = 10_000

_keyframes = cast(Table, KeyframeRow.__table__)
_appearances = cast(Table, AppearanceRow.__table__)
_A = AppearanceRow
#: pg_advisory_xact_lock key that serialises appearance inserts (any fixed 64-bit number).
INSERT_ORDER_LOCK = 0x5375_7276_6569_6C01


def _id_match(dialect: str, ids: list[int]) -> ColumnElement[bool]:
    """`appearances.id` is one of `ids`, as ONE bound parameter where the dialect allows.

    A 1,000-entry IN list means 1,000 parameters to render, send and plan: PostgreSQL's
    `= ANY(array)` hydrates 1,000 ids about 3x faster, SQLite's json_each somewhat faster.
    """
    if dialect == "postgresql":
        return _A.id == any_(bindparam("id_list", ids, type_=ARRAY(BigInteger)))
    if dialect == "sqlite":
        listed = func.json_each(bindparam("id_list", json.dumps(ids), type_=String))
        return _A.id.in_(select(listed.table_valued("value").c.value))
    return _A.id.in_(ids)


class SqlCatalog(IndexFeedQueries, TrackQueries, BackfillQueries, BrowseQueries, CameraQueries):
    """The system of record, over whatever engine the session factory is bound to."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._sessions = session_factory

    # -- cameras and sources -------------------------------------------------------------

    def ensure_camera(self, camera_id: str, *, name: str | None = None) -> None:
        """Register a camera if new; calling it for a known camera changes nothing."""
        with self._sessions.begin() as session:
            self._ensure_camera(session, camera_id, name)

    @staticmethod
    def _ensure_camera(session: Session, camera_id: str, name: str | None) -> None:
        values = {"id": camera_id, "name": name or camera_id, "enabled": True}
        values["created_at"] = utcnow()
        dialect = session.get_bind().dialect.name
        # ON CONFLICT DO NOTHING: idempotent and race-free between concurrent ingest workers.
        if dialect == "postgresql":
            stmt: Any = postgresql.insert(CameraRow).values(values).on_conflict_do_nothing()
        elif dialect == "sqlite":
            stmt = sqlite.insert(CameraRow).values(values).on_conflict_do_nothing()
        else:
            if session.get(CameraRow, camera_id) is not None:
                return
            stmt = insert(CameraRow).values(values)
        session.execute(stmt)

    def camera_ids(self) -> list[str]:
        """Every registered camera id, sorted."""
        with self._sessions() as session:
            return list(session.scalars(select(CameraRow.id).order_by(CameraRow.id)))

    def open_source(
        self, *, camera_id: str, uri: str, fingerprint: str, start: datetime, fps: float
    ) -> SourceRecord:
        """The source for (camera, fingerprint), created if new; the caller resumes or refuses."""
        existing = self._find_source(camera_id=camera_id, fingerprint=fingerprint)
        if existing is not None:
            return existing
        try:
            with self._sessions.begin() as session:
                self._ensure_camera(session, camera_id, None)
                row = SourceRow(
                    camera_id=camera_id, uri=uri, fingerprint=fingerprint, start_ts=start, fps=fps
                )
                session.add(row)
                session.flush()
                return SourceRecord(row.id, camera_id, uri, fingerprint, False, None)
        except IntegrityError:
            # Another worker opened the same source between our look-up and insert.
            found = self._find_source(camera_id=camera_id, fingerprint=fingerprint)
            if found is None:
                raise
            return found

    def _find_source(self, *, camera_id: str, fingerprint: str) -> SourceRecord | None:
        last = (
            select(func.max(KeyframeRow.frame_index))
            .where(KeyframeRow.source_id == SourceRow.id)
            .scalar_subquery()
        )
        stmt = select(SourceRow, last).where(
            SourceRow.camera_id == camera_id, SourceRow.fingerprint == fingerprint
        )
        with self._sessions() as session:
            found = session.execute(stmt).first()
        if found is None:
            return None
        src, last_index = found
        return SourceRecord(
            src.id, src.camera_id, src.uri, src.fingerprint, src.complete, last_index
        )

    def get_source(self, *, source_id: int) -> SourceRecord | None:
        """A source by id with its resume point, or None."""
        with self._sessions() as session:
            src = session.get(SourceRow, source_id)
        if src is None:
            return None
        return self._find_source(camera_id=src.camera_id, fingerprint=src.fingerprint)

    def finish_source(self, *, source_id: int, frames_read: int) -> None:
        """Mark a source fully read, so a second ingest of the same file is refused."""
        stmt = (
            update(SourceRow)
            .where(SourceRow.id == source_id)
            .values(complete=True, frames_read=frames_read, updated_at=utcnow())
            .returning(SourceRow.id)
        )
        with self._sessions.begin() as session:
            if session.execute(stmt).first() is None:
                raise InputError(f"no source with id {source_id}")

    def source_blob_keys(self, *, source_id: int) -> set[str]:
        """Every file key a committed row of the source references (keyframes and crops)."""
        images = select(KeyframeRow.image_path).where(
            KeyframeRow.source_id == source_id, KeyframeRow.image_path.is_not(None)
        )
        crops = (
            select(AppearanceRow.crop_path)
            .join(KeyframeRow, KeyframeRow.id == AppearanceRow.keyframe_id)
            .where(KeyframeRow.source_id == source_id)
        )
        with self._sessions() as session:
            found = [*session.scalars(images), *session.scalars(crops)]
        return {str(key) for key in found if key}

    # -- ingest ------------------------------------------------------------------------

    def add_keyframes(self, batch: Sequence[NewKeyframe]) -> list[list[int]]:
        """Store keyframes and their appearances atomically; appearance ids per keyframe."""
        return self.add_tracked(batch).appearance_ids

    def add_tracked(
        self, batch: Sequence[NewKeyframe], tracks: Sequence[TrackUpdate] = ()
    ) -> CommittedBatch:
        """Store keyframes, their appearances and the tracks they joined, atomically.

        `tracks` is the tracker's state of every track the batch touched (and any it
        closed); an appearance without a track key becomes a closed track of its own.
        """
        if not batch:
            return CommittedBatch([], [])
        kf_rows = [
            {
                "camera_id": kf.camera_id,
                "source_id": kf.source_id,
                "frame_index": kf.frame_index,
                "ts": kf.ts,
                "width": kf.width,
                "height": kf.height,
                "image_path": kf.image_path,
                "image_bytes": kf.image_bytes,
            }
            for kf in batch
        ]
        solos = solo_updates(batch)
        all_tracks = [*tracks, *solos.values()]
        with self._sessions.begin() as session:
            if session.get_bind().dialect.name == "postgresql":
                # Appearance ids must become visible in id order: alert rules read "every id
                # above my watermark", which a later-committing lower id would slip under.
                session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": INSERT_ORDER_LOCK})
            # sort_by_parameter_order: ids come back in our row order, batched or not.
            kf_ids = (
                session.execute(
                    insert(_keyframes).returning(_keyframes.c.id, sort_by_parameter_order=True),
                    kf_rows,
                )
                .scalars()
                .all()
            )
            track_ids = upsert_tracks(session, all_tracks)
            keys = [
                [app.track_key or solos[(k, n)].key for n, app in enumerate(kf.appearances)]
                for k, kf in enumerate(batch)
            ]
            app_rows = [
                _appearance_row(kf, kf_id, app, track_ids[key])
                for kf, kf_id, kf_keys in zip(batch, kf_ids, keys, strict=True)
                for app, key in zip(kf.appearances, kf_keys, strict=True)
            ]
            app_ids: Sequence[int] = []
            if app_rows:
                # After the first insert: SQLite's write lock is held, so a re-embed's swap
                # cannot change the space's model between this check and the commit.
                require_models(session, batch_models(app_rows))
                app_ids = (
                    session.execute(
                        insert(_appearances).returning(
                            _appearances.c.id, sort_by_parameter_order=True
                        ),
                        app_rows,
                    )
                    .scalars()
                    .all()
                )
                promote_best(
                    session,
                    [
                        (row["track_id"], int(app_id), row["quality"], row["label"])
                        for row, app_id in zip(app_rows, app_ids, strict=True)
                    ],
                )
        out: list[list[int]] = []
        pos = 0
        for kf in batch:
            n = len(kf.appearances)
            out.append([int(i) for i in app_ids[pos : pos + n]])
            pos += n
        indexed = [
            IndexedTrack(track_ids[t.key], t.space, t.first_ts.date(), t.embedding, vector_meta(t))
            for t in all_tracks
        ]
        return CommittedBatch(out, indexed)

    # -- reads -------------------------------------------------------------------------

    def appearances(
        self, ids: Sequence[int], *, filters: SearchFilters | None = None
    ) -> list[StoredAppearance]:
        """Hydrate ids that pass the filters, in the order given (e.g. best score first)."""
        wanted = list(dict.fromkeys(int(i) for i in ids))
        clauses = filter_clauses(filters)
        found: dict[int, StoredAppearance] = {}
        with self._sessions() as session:
            dialect = session.get_bind().dialect.name
            chunk_size = IN_LIST_CHUNK if dialect not in ("postgresql", "sqlite") else ID_CHUNK
            # Sorted ids walk the primary key in order instead of jumping around it.
            for chunk in chunked(sorted(wanted), chunk_size):
                match = _id_match(dialect, chunk)
                stmt = select(*STORED_COLUMNS).where(match, *clauses)
                for row in session.connection().execute(stmt):
                    found[row[0]] = to_stored(row)
        return [found[i] for i in wanted if i in found]

    def appearance_embedding(self, appearance_id: int) -> tuple[Space, Vectors]:
        """The stored (space, 1-D float32 vector) of one appearance, to search by it."""
        stmt = select(_A.space, _A.embedding, _A.dim).where(_A.id == appearance_id)
        with self._sessions() as session:
            row = session.execute(stmt).first()
        if row is None:
            raise NotFoundError(f"no appearance with id {appearance_id}")
        space, blob, dim = row
        return cast(Space, space), vectors_from_blobs(space, [blob], [dim])[0]

    def appearance_vectors(self, space: Space, ids: Sequence[int]) -> dict[int, Vectors]:
        """Stored vectors of appearances of one space, by id (others and unknown ids left out).

        Search re-scores a matched track's members with these: the index holds one pooled
        vector per track, but each appearance shown gets its own similarity.
        """
        wanted = sorted({int(i) for i in ids})
        out: dict[int, Vectors] = {}
        with self._sessions() as session:
            for chunk in chunked(wanted, IN_LIST_CHUNK):
                stmt = select(_A.id, _A.embedding, _A.dim).where(
                    _A.space == space, _A.id.in_(chunk)
                )
                rows = session.execute(stmt).all()
                if rows:
                    vecs = vectors_from_blobs(space, [r[1] for r in rows], [r[2] for r in rows])
                    out.update({int(r[0]): vecs[n] for n, r in enumerate(rows)})
        return out

    def count_appearances(self, space: Space | None = None) -> int:
        """How many appearances are stored, in one space or all."""
        stmt = select(func.count()).select_from(_appearances)
        if space is not None:
            stmt = stmt.where(_A.space == space)
        with self._sessions() as session:
            return int(session.execute(stmt).scalar_one())


def _appearance_row(
    kf: NewKeyframe, keyframe_id: int, app: NewAppearance, track_id: int
) -> dict[str, Any]:
    vec = np.asarray(app.embedding, dtype="<f4").reshape(-1)
    x1, y1, x2, y2 = app.bbox
    return {
        "keyframe_id": keyframe_id,
        "camera_id": kf.camera_id,
        "ts": kf.ts,
        "frame_index": kf.frame_index,
        "label": app.label,
        "confidence": float(app.confidence),
        "x1": float(x1),
        "y1": float(y1),
        "x2": float(x2),
        "y2": float(y2),
        "space": app.space,
        "model_id": app.model_id,
        "crop_path": app.crop_path,
        "crop_bytes": app.crop_bytes,
        "embedding": vec.tobytes(),
        "dim": int(vec.shape[0]),
        "track_id": track_id,
        "quality": float(app.quality),
    }
