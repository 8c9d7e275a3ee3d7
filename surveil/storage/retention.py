"""`SqlRetention`: what retention may delete, the deletion journal, legal holds, sweep reads.

Each delete batch is one transaction that also writes the journal of what must still leave
the vector index and the disk (retention_journal); the job empties the journal once those
are gone, so a run killed anywhere is finished by the next (see surveil/jobs/retention.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    String,
    Table,
    and_,
    any_,
    bindparam,
    delete,
    exists,
    false,
    func,
    insert,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker
from sqlalchemy.sql import Executable

from surveil.domain import SPACES, NotFoundError
from surveil.storage.retention_sweep import SweepQueries
from surveil.storage.tables import (
    AlertRow,
    AppearanceRow,
    CameraRow,
    DeliveryAttemptRow,
    DeliveryRow,
    KeyframeRow,
    RetentionJournalRow,
    TrackRow,
)
from surveil.storage.tracks import settle_tracks

_A = AppearanceRow
_K = KeyframeRow
_J = RetentionJournalRow
_journal = cast(Table, RetentionJournalRow.__table__)

VECTOR: Literal["vector"] = "vector"
FILE: Literal["file"] = "file"


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long things are kept, as of `now`; days per label win over days per camera."""

    now: datetime
    days: float
    cameras: Mapping[str, float]
    labels: Mapping[str, float]
    evidence_days: float

    def cutoff(self, days: float) -> datetime:
        """Things stamped before this are older than `days`."""
        return self.now - timedelta(days=days)

    @property
    def shortest_days(self) -> float:
        """The shortest period anything is kept: nothing younger can expire."""
        return min([self.days, *self.cameras.values(), *self.labels.values()])

    def days_for(self, *, camera: str, label: str | None = None) -> float:
        """Days an appearance (with `label`) or a keyframe (without) of `camera` is kept."""
        if label is not None and label in self.labels:
            return self.labels[label]
        return self.cameras.get(camera, self.days)


@dataclass(frozen=True, slots=True)
class Doomed:
    """A row retention deletes, with what it leaves in the index (space, ts) and on disk."""

    id: int
    camera_id: str
    path: str | None
    space: str | None = None
    ts: datetime | None = None
    track_id: int | None = None
    #: Its file's recorded bytes (None: not recorded, ask the blob store).
    size: int | None = None


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """A vector or file whose row is gone but which may still be in the index or on disk."""

    id: int
    kind: str
    item_id: int | None
    space: str | None
    ts: datetime | None
    path: str | None


def _among(column: InstrumentedAttribute[int], ids: Sequence[int], dialect: str) -> Any:
    """`column IN ids` as one bound parameter where the dialect allows (batches reach 100k)."""
    wanted = [int(i) for i in ids]
    if dialect == "postgresql":
        return column == any_(bindparam("ids", wanted, type_=ARRAY(BigInteger)))
    if dialect == "sqlite":
        listed = func.json_each(bindparam("ids", json.dumps(wanted), type_=String))
        return column.in_(select(listed.table_valued("value").c.value))
    return column.in_(wanted)


def _camera_held(camera: InstrumentedAttribute[str]) -> ColumnElement[bool]:
    return exists().where(CameraRow.id == camera, CameraRow.legal_hold.is_(true()))


def expired_appearance(policy: RetentionPolicy) -> ColumnElement[bool]:
    """SQL: the appearance is past its days, not held, and not evidence still kept.

    One OR branch per override keeps each comparison on plain columns, so the
    (label, ts) and (camera_id, ts) indexes can serve them.
    """
    labels, cameras = sorted(policy.labels), sorted(policy.cameras)
    no_label_rule = _A.label.not_in(labels) if labels else true()
    branches = [and_(_A.label == lb, _A.ts < policy.cutoff(policy.labels[lb])) for lb in labels]
    branches += [
        and_(no_label_rule, _A.camera_id == cam, _A.ts < policy.cutoff(policy.cameras[cam]))
        for cam in cameras
    ]
    by_default = [no_label_rule, _A.ts < policy.cutoff(policy.days)]
    if cameras:
        by_default.append(_A.camera_id.not_in(cameras))
    branches.append(and_(*by_default))
    evidence = exists().where(AlertRow.appearance_id == _A.id)
    return and_(
        # Implied by the branches, but index-friendly: the planner can range-scan
        # (space, ts) for rows older than the shortest period instead of reading every row.
        _A.space.in_(SPACES),
        _A.ts < policy.cutoff(policy.shortest_days),
        or_(*branches),
        _A.legal_hold.is_(false()),
        ~_camera_held(_A.camera_id),
        or_(~evidence, _A.ts < policy.cutoff(policy.evidence_days)),
    )


def expired_keyframe(policy: RetentionPolicy, *, kept_only: bool) -> ColumnElement[bool]:
    """SQL: the keyframe is past its camera's days, not held, and shows no appearance.

    `kept_only` looks only at appearances this policy keeps (what a dry run predicts);
    the real run requires no appearance at all, since deleting a keyframe cascades.
    """
    cameras = sorted(policy.cameras)
    branches = [
        and_(_K.camera_id == cam, _K.ts < policy.cutoff(policy.cameras[cam])) for cam in cameras
    ]
    default = [_K.ts < policy.cutoff(policy.days)]
    if cameras:
        default.append(_K.camera_id.not_in(cameras))
    branches.append(and_(*default))
    shown = [_A.keyframe_id == _K.id]
    if kept_only:
        shown.append(~expired_appearance(policy))
    return and_(or_(*branches), ~_camera_held(_K.camera_id), ~exists().where(*shown))


#: What a deleted appearance leaves: index entry (space, ts, track), file and its size.
_DOOMED_APPEARANCE = (
    _A.id,
    _A.camera_id,
    _A.crop_path,
    _A.space,
    _A.ts,
    _A.track_id,
    _A.crop_bytes,
)
#: What a deleted keyframe leaves: its file and its size.
_DOOMED_KEYFRAME = (_K.id, _K.camera_id, _K.image_path, _K.image_bytes)


def _appearance_batch(
    policy: RetentionPolicy, after_id: int, limit: int
) -> Select[int, str, str, str, datetime, int | None, int | None]:
    return (
        select(*_DOOMED_APPEARANCE)
        .where(_A.id > after_id, expired_appearance(policy))
        .order_by(_A.id)
        .limit(limit)
    )


def _keyframe_batch(
    policy: RetentionPolicy, after_id: int, limit: int, *, kept_only: bool
) -> Select[int, str, str | None, int | None]:
    return (
        select(*_DOOMED_KEYFRAME)
        .where(_K.id > after_id, expired_keyframe(policy, kept_only=kept_only))
        .order_by(_K.id)
        .limit(limit)
    )


def _doomed_appearances(rows: Sequence[Any]) -> list[Doomed]:
    return [Doomed(r[0], r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows]


def _doomed_keyframes(rows: Sequence[Any]) -> list[Doomed]:
    return [Doomed(r[0], r[1], r[2], size=r[3]) for r in rows]


_NO_ITEM: dict[str, Any] = {"item_id": None, "space": None, "ts": None, "path": None}


def _journal_rows(doomed: Sequence[Doomed]) -> list[dict[str, Any]]:
    """Files of deleted rows; vectors are journalled per track (see `_track_journal`)."""
    # Every row names every column: one executemany statement for the whole batch.
    return [{**_NO_ITEM, "kind": FILE, "path": d.path} for d in doomed if d.path]


def _track_journal(tracks: Sequence[tuple[int, str, datetime]]) -> list[dict[str, Any]]:
    """A vector entry per touched track: the drain makes the index follow its row."""
    return [
        {**_NO_ITEM, "kind": VECTOR, "item_id": t, "space": space, "ts": ts}
        for t, space, ts in tracks
    ]


#: The whole batch's journal as five arrays in one statement (PostgreSQL): an executemany
#: of ~4000 rows per batch was a fifth of a day's row-delete time at 1M stored.
_UNNEST = text(
    "INSERT INTO retention_journal (kind, item_id, space, ts, path) "
    "SELECT * FROM unnest(CAST(:kind AS text[]), CAST(:item_id AS bigint[]), "
    "CAST(:space AS text[]), CAST(:ts AS timestamptz[]), CAST(:path AS text[]))"
)


def _journal_insert(session: Session, dialect: str, rows: Sequence[dict[str, Any]]) -> None:
    """Write journal rows in order (their ids keep the batch's order)."""
    if dialect != "postgresql":
        session.execute(insert(_journal), list(rows))
        return
    columns = {c: [r[c] for r in rows] for c in ("kind", "item_id", "space", "ts", "path")}
    session.execute(_UNNEST, columns)


def _day_range(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(), tzinfo=UTC)
    return start, start + timedelta(days=1)


def _delete_appearance_rows(session: Session, dialect: str, stmt: Executable) -> list[Doomed]:
    """Delete the appearances `stmt` selects with their alerts; journal vectors and files."""
    doomed = _doomed_appearances(session.execute(stmt).all())
    if not doomed:
        return []
    ids = [d.id for d in doomed]
    alerts = select(AlertRow.id).where(_among(AlertRow.appearance_id, ids, dialect))
    deliveries = select(DeliveryRow.id).where(DeliveryRow.alert_id.in_(alerts))
    # Children first: FKs cascade on PostgreSQL, but nothing here relies on that.
    session.execute(
        delete(DeliveryAttemptRow).where(DeliveryAttemptRow.delivery_id.in_(deliveries))
    )
    session.execute(delete(DeliveryRow).where(DeliveryRow.alert_id.in_(alerts)))
    session.execute(delete(AlertRow).where(_among(AlertRow.appearance_id, ids, dialect)))
    session.execute(delete(_A).where(_among(_A.id, ids, dialect)))
    touched = settle_tracks(session, {d.track_id for d in doomed if d.track_id})
    rows = _journal_rows(doomed) + _track_journal(touched)
    if rows:
        _journal_insert(session, dialect, rows)
    return doomed


def _delete_keyframe_rows(session: Session, dialect: str, stmt: Executable) -> list[Doomed]:
    """Delete the keyframes `stmt` selects; journal their files."""
    doomed = _doomed_keyframes(session.execute(stmt).all())
    if not doomed:
        return []
    session.execute(delete(_K).where(_among(_K.id, [d.id for d in doomed], dialect)))
    rows = _journal_rows(doomed)
    if rows:
        _journal_insert(session, dialect, rows)
    return doomed


class SqlRetention(SweepQueries):
    """Retention's queries over the catalog; each public method is one bounded transaction."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    # ---- what would go (dry run) -------------------------------------------------------

    def expired_appearances(
        self, policy: RetentionPolicy, *, after_id: int = 0, limit: int
    ) -> list[Doomed]:
        """The next `limit` expired appearances by id after `after_id`; nothing changes."""
        with self._sessions() as session:
            rows = session.execute(_appearance_batch(policy, after_id, limit)).all()
        return _doomed_appearances(rows)

    def expired_keyframes(
        self, policy: RetentionPolicy, *, after_id: int = 0, limit: int
    ) -> list[Doomed]:
        """Keyframes that expire once this policy's appearances are gone; nothing changes."""
        stmt = _keyframe_batch(policy, after_id, limit, kept_only=True)
        with self._sessions() as session:
            return _doomed_keyframes(session.execute(stmt).all())

    # ---- deleting, journalled ----------------------------------------------------------

    def delete_appearances(
        self, policy: RetentionPolicy, *, after_id: int = 0, limit: int
    ) -> list[Doomed]:
        """Delete the next batch of expired appearances and their alerts; journal the rest."""
        with self._sessions.begin() as session:
            dialect = self._lock_holds(session)
            stmt = _appearance_batch(policy, after_id, limit).with_for_update(of=_A)
            return _delete_appearance_rows(session, dialect, stmt)

    def delete_appearances_by_id(self, ids: Sequence[int]) -> list[Doomed]:
        """Delete these appearances (a size budget's pick), skipping any held or evidence.

        Holds and evidence are checked again here, under the lock: a hold set after the
        budget chose its rows still wins.
        """
        if not ids:
            return []
        with self._sessions.begin() as session:
            dialect = self._lock_holds(session)
            evidence = exists().where(AlertRow.appearance_id == _A.id)
            stmt = (
                select(*_DOOMED_APPEARANCE)
                .where(
                    _among(_A.id, ids, dialect),
                    _A.legal_hold.is_(false()),
                    ~_camera_held(_A.camera_id),
                    ~evidence,
                )
                .order_by(_A.id)
                .with_for_update(of=_A)
            )
            return _delete_appearance_rows(session, dialect, stmt)

    def delete_keyframes(
        self, policy: RetentionPolicy, *, after_id: int = 0, limit: int
    ) -> list[Doomed]:
        """Delete the next batch of expired keyframes that show nothing; journal their files."""
        with self._sessions.begin() as session:
            dialect = self._lock_holds(session)
            stmt = _keyframe_batch(policy, after_id, limit, kept_only=False)
            return _delete_keyframe_rows(session, dialect, stmt.with_for_update())

    def delete_keyframes_by_id(self, ids: Sequence[int]) -> list[Doomed]:
        """Delete these keyframes (a size budget's pick) where nothing shown on them is left."""
        if not ids:
            return []
        with self._sessions.begin() as session:
            dialect = self._lock_holds(session)
            stmt = (
                select(*_DOOMED_KEYFRAME)
                .where(
                    _among(_K.id, ids, dialect),
                    ~_camera_held(_K.camera_id),
                    ~exists().where(_A.keyframe_id == _K.id),
                )
                .order_by(_K.id)
            )
            return _delete_keyframe_rows(session, dialect, stmt.with_for_update())

    @staticmethod
    def _lock_holds(session: Session) -> str:
        """On PostgreSQL, share-lock the cameras: a hold being set waits for this batch."""
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            session.execute(select(CameraRow.id).with_for_update(read=True))
        return dialect

    # ---- the journal -------------------------------------------------------------------

    def journal(self, *, limit: int) -> list[JournalEntry]:
        """The oldest `limit` journal entries (work a batch or an interrupted run left)."""
        stmt = select(_J.id, _J.kind, _J.item_id, _J.space, _J.ts, _J.path).order_by(_J.id)
        with self._sessions() as session:  # Core rows: a day at 1M is ~75k entries
            rows = session.connection().execute(stmt.limit(limit))
            return [JournalEntry(*row) for row in rows]

    def journal_counts(self) -> dict[str, int]:
        """Pending journal entries by kind ('vector', 'file')."""
        stmt = select(_J.kind, func.count()).group_by(_J.kind)
        with self._sessions() as session:
            return {str(kind): int(n) for kind, n in session.execute(stmt)}

    def forget(self, entry_ids: Sequence[int]) -> None:
        """Drop journal entries whose vectors and files are gone."""
        if not entry_ids:
            return
        with self._sessions.begin() as session:
            dialect = session.get_bind().dialect.name
            session.execute(delete(_J).where(_among(_J.id, entry_ids, dialect)))

    def has_tracks_on(self, space: str, day: date) -> bool:
        """Whether any track of `space` starts on that UTC day (its index shard is still used)."""
        start, end = _day_range(day)
        starts = TrackRow.first_ts
        stmt = select(exists().where(TrackRow.space == space, starts >= start, starts < end))
        with self._sessions() as session:
            return bool(session.scalar(stmt))

    # ---- legal holds -------------------------------------------------------------------

    def set_camera_hold(self, camera_id: str, held: bool) -> None:
        """Set or clear a camera's legal hold; NotFoundError for an unknown camera."""
        with self._sessions.begin() as session:
            row = session.get(CameraRow, camera_id)
            if row is None:
                raise NotFoundError(f"no camera {camera_id!r}")
            row.legal_hold = held

    def set_appearance_holds(self, ids: Sequence[int], held: bool) -> None:
        """Set or clear the hold on appearances: all of them, or none if one is unknown."""
        wanted = sorted({int(i) for i in ids})
        with self._sessions.begin() as session:
            dialect = session.get_bind().dialect.name
            found = set(session.scalars(select(_A.id).where(_among(_A.id, wanted, dialect))))
            missing = [i for i in wanted if i not in found]
            if missing:
                listed = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
                raise NotFoundError(f"no appearance with id {listed}")
            stmt = update(_A).where(_among(_A.id, wanted, dialect)).values(legal_hold=held)
            session.execute(stmt)

    def camera_hold(self, camera_id: str) -> bool:
        """Whether a camera is under legal hold; NotFoundError for an unknown camera."""
        with self._sessions() as session:
            held = session.scalar(select(CameraRow.legal_hold).where(CameraRow.id == camera_id))
        if held is None:
            raise NotFoundError(f"no camera {camera_id!r}")
        return bool(held)
