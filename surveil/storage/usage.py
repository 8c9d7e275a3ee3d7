"""`SqlUsage`: the bytes footage takes, per camera and day, and the oldest footage first.

Files are counted from the byte columns ingest fills (`keyframes.image_bytes`,
`appearances.crop_bytes`); rows from before migration 0011 are sized once through the
blob store (`unsized` / `set_sizes`). Catalog rows are counted by what the database
itself reports for their tables, so "bytes stored" is real bytes, not a guess.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import case, func, select, text, tuple_, update
from sqlalchemy.orm import Session, sessionmaker

from surveil.storage.retention import _among, _camera_held
from surveil.storage.tables import AlertRow, AppearanceRow, Base, KeyframeRow

_A = AppearanceRow
_K = KeyframeRow

SizedKind = Literal["keyframes", "appearances"]
#: The tables whose rows footage owns (appearances carry their 2 KiB embeddings).
FOOTAGE_TABLES = ("appearances", "keyframes", "tracks")
#: Newest rows whose average size stands for a table's rows.
ROW_SAMPLE = 2000


@dataclass(frozen=True, slots=True)
class Unsized:
    """A row whose file was never sized: (kind, row id, blob key)."""

    kind: SizedKind
    id: int
    path: str


@dataclass
class CameraBytes:
    """One camera's footage: row counts, file bytes, and the UTC days it spans."""

    camera_id: str
    appearances: int = 0
    keyframes: int = 0
    file_bytes: int = 0
    days: int = 0
    first: datetime | None = None
    last: datetime | None = None


@dataclass(frozen=True, slots=True)
class OldFrame:
    """A keyframe in the oldest-first walk, with what of it a size budget may delete.

    `free_ids` are its appearances that are neither held nor an alert's evidence;
    `kept` counts the others. The keyframe row and image go only when `kept` is 0.
    """

    id: int
    camera_id: str
    ts: datetime
    image_bytes: int
    free_ids: tuple[int, ...]
    free_crop_bytes: int
    kept: int
    kept_crop_bytes: int


@dataclass
class Overheads:
    """Catalog and index bytes per row, apportioned from the real table and index sizes."""

    per_appearance: float = 0.0
    per_keyframe: float = 0.0
    catalog_bytes: int = 0
    index_bytes: int = 0
    tables: dict[str, int] = field(default_factory=dict)

    def share(self, appearances: int, keyframes: int) -> int:
        """Catalog and index bytes that many appearances and keyframes account for."""
        return round(appearances * self.per_appearance + keyframes * self.per_keyframe)


class SqlUsage:
    """Usage queries over the catalog; each public method is one short transaction."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    # ---- sizing rows from before the byte columns ----------------------------------------

    def unsized(self, *, limit: int) -> list[Unsized]:
        """Up to `limit` rows whose file size is not recorded yet (keyframes first)."""
        with self._sessions() as session:
            frames = session.execute(
                select(_K.id, _K.image_path)
                .where(_K.image_bytes.is_(None), _K.image_path.is_not(None))
                .order_by(_K.id)
                .limit(limit)
            ).all()
            out = [Unsized("keyframes", int(i), str(p)) for i, p in frames]
            if len(out) < limit:
                crops = session.execute(
                    select(_A.id, _A.crop_path)
                    .where(_A.crop_bytes.is_(None))
                    .order_by(_A.id)
                    .limit(limit - len(out))
                ).all()
                out += [Unsized("appearances", int(i), str(p)) for i, p in crops]
        return out

    def set_sizes(self, kind: SizedKind, sizes: Mapping[int, int]) -> None:
        """Record file sizes (0 for a file that is gone) by row id."""
        if not sizes:
            return
        row, column = (_K, "image_bytes") if kind == "keyframes" else (_A, "crop_bytes")
        by_size: dict[int, list[int]] = defaultdict(list)
        for row_id, size in sizes.items():
            by_size[int(size)].append(int(row_id))
        with self._sessions.begin() as session:
            dialect = session.get_bind().dialect.name
            for size, ids in by_size.items():
                session.execute(
                    update(row).where(_among(row.id, ids, dialect)).values({column: size})
                )

    # ---- what is stored ------------------------------------------------------------------

    def cameras(self) -> dict[str, CameraBytes]:
        """Per camera: appearances, keyframes, file bytes, days with footage, first/last."""
        out: dict[str, CameraBytes] = {}
        crops = select(
            _A.camera_id, func.count(), func.coalesce(func.sum(_A.crop_bytes), 0)
        ).group_by(_A.camera_id)
        with self._sessions() as session:
            sqlite = self._dialect(session) == "sqlite"
            day = func.date(_K.ts) if sqlite else func.date_trunc("day", _K.ts)
            frames = select(
                _K.camera_id,
                func.count(),
                func.coalesce(func.sum(_K.image_bytes), 0).label("size"),
                func.count(func.distinct(day)),
                func.min(_K.ts),
                func.max(_K.ts),
            ).group_by(_K.camera_id)
            for cam, n, size, days, first, last in session.execute(frames):
                out[str(cam)] = CameraBytes(
                    str(cam), keyframes=int(n), file_bytes=int(size or 0), days=int(days)
                )
                out[str(cam)].first, out[str(cam)].last = first, last
            for cam, n, size in session.execute(crops):
                entry = out.setdefault(str(cam), CameraBytes(str(cam)))
                entry.appearances = int(n)
                entry.file_bytes += int(size or 0)
        return out

    def row_bytes(self) -> dict[str, int]:
        """Live bytes of the footage tables' rows: row count times the newest rows' size.

        Live rows only (PostgreSQL's `pg_column_size` of the row, SQLite's bytes of the
        values): space a delete frees inside the database counts as freed at once, so a
        budget met stays met; table files themselves shrink only on VACUUM. Indexes are
        not counted. Sampling the newest rows keeps this a primary-key range read.
        """
        out: dict[str, int] = {}
        with self._sessions() as session:
            postgres = self._dialect(session) == "postgresql"
            for table in FOOTAGE_TABLES:
                rows = int(session.scalar(text(f"SELECT count(*) FROM {table}")) or 0)
                if not rows:
                    out[table] = 0
                    continue
                columns = [str(c.name) for c in Base.metadata.tables[table].columns]
                size = _row_size(postgres, columns)
                newest = f"(SELECT * FROM {table} ORDER BY id DESC LIMIT {ROW_SAMPLE}) AS r"
                avg = session.scalar(text(f"SELECT avg({size}) FROM {newest}"))
                out[table] = round(rows * float(avg or 0))
        return out

    # ---- the oldest footage, for size budgets --------------------------------------------

    def oldest_frames(
        self,
        *,
        camera: str | None = None,
        after: tuple[datetime, int] | None = None,
        limit: int,
    ) -> list[OldFrame]:
        """The next `limit` keyframes by (ts, id) of cameras not under hold, oldest first."""
        frames = select(_K.id, _K.camera_id, _K.ts, func.coalesce(_K.image_bytes, 0)).where(
            ~_camera_held(_K.camera_id)
        )
        if camera is not None:
            frames = frames.where(_K.camera_id == camera)
        if after is not None:
            frames = frames.where(tuple_(_K.ts, _K.id) > tuple_(*after))
        frames = frames.order_by(_K.ts, _K.id).limit(limit)
        with self._sessions() as session:
            dialect = self._dialect(session)
            rows = session.execute(frames).all()
            if not rows:
                return []
            evidence = select(AlertRow.appearance_id).where(AlertRow.appearance_id == _A.id)
            kept = case((_A.legal_hold | evidence.exists(), 1), else_=0)
            members = select(_A.keyframe_id, _A.id, func.coalesce(_A.crop_bytes, 0), kept).where(
                _among(_A.keyframe_id, [int(r[0]) for r in rows], dialect)
            )
            shown: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
            for kf, app, size, is_kept in session.execute(members):
                shown[int(kf)].append((int(app), int(size), int(is_kept)))
        return [_old_frame(r, shown.get(int(r[0]), [])) for r in rows]

    @staticmethod
    def _dialect(session: Session) -> str:
        return session.get_bind().dialect.name


def _row_size(postgres: bool, columns: Sequence[str]) -> str:
    """SQL for one sampled row's bytes (the subquery's alias is `r`)."""
    if postgres:
        return "pg_column_size(r.*)"
    return " + ".join(f"coalesce(length(CAST(r.{c} AS BLOB)), 0)" for c in columns)


def _old_frame(row: Sequence[Any], members: Sequence[tuple[int, int, int]]) -> OldFrame:
    free = [(a, s) for a, s, k in members if not k]
    kept = [s for _, s, k in members if k]
    return OldFrame(
        id=int(row[0]),
        camera_id=str(row[1]),
        ts=row[2],
        image_bytes=int(row[3]),
        free_ids=tuple(a for a, _ in free),
        free_crop_bytes=sum(s for _, s in free),
        kept=len(kept),
        kept_crop_bytes=sum(kept),
    )
