"""The catalog side of `surveil index reembed`: vectors kept aside, then one atomic swap.

New vectors go to `reembed_vectors` batch by batch (a killed run keeps every committed
batch and resumes after it). The swap then rewrites the appearances' vectors, the tracks'
pooled vectors, the rules' examples and the space's model row in ONE transaction, so no
reader ever sees two models in a space.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import delete, exists, func, insert, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from surveil.domain import InputError, Space, Vectors
from surveil.storage.tables import (
    AlertRuleRow,
    AppearanceRow,
    ReembedVectorRow,
    RuleExampleRow,
    SpaceModelRow,
    TrackRow,
    utcnow,
)
from surveil.tracking.state import pool_vectors

_A = AppearanceRow
_R = ReembedVectorRow
_T = TrackRow
#: The lock ingest's appearance inserts take on PostgreSQL (storage/repositories.py).
INSERT_ORDER_LOCK = 0x5375_7276_6569_6C01
#: Tracks pooled per read inside the swap.
TRACK_CHUNK = 500


class SwapIncompleteError(InputError):
    """Appearances (or rule examples) still lack a new vector: embed them, then swap."""


@dataclass(frozen=True, slots=True)
class ToEmbed:
    """An appearance whose crop must be embedded with the new model."""

    id: int
    crop_path: str


@dataclass(frozen=True, slots=True)
class ExampleToEmbed:
    """A rule example crop to embed with the new model."""

    id: int
    crop_path: str


class SqlReembed:
    """Queries and the swap transaction of one re-embed."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def _todo(self, space: Space, target: str, since: datetime | None) -> list[object]:
        done = exists().where(_R.appearance_id == _A.id, _R.model_id == target)
        clauses: list[object] = [_A.space == space, _A.model_id != target, ~done]
        if since is not None:
            clauses.append(_A.ts >= since)
        return clauses

    def discard_other(self, space: Space, target: str) -> int:
        """Drop vectors kept aside for another target (the model was changed again)."""
        with self._sessions.begin() as session:
            stmt = delete(_R).where(_R.space == space, _R.model_id != target)
            return int(session.execute(stmt).rowcount or 0)  # type: ignore[attr-defined]

    def count_todo(self, space: Space, target: str, since: datetime | None = None) -> int:
        """Appearances still to embed (from `since` on, when given)."""
        with self._sessions() as session:
            stmt = select(func.count()).select_from(_A).where(*self._todo(space, target, since))  # type: ignore[arg-type]
            return int(session.execute(stmt).scalar_one())

    def batches(
        self, space: Space, target: str, since: datetime | None, size: int
    ) -> Iterator[list[ToEmbed]]:
        """Appearances still to embed, in id order, `size` at a time (keyset paging)."""
        last = -1
        while True:
            with self._sessions() as session:
                stmt = (
                    select(_A.id, _A.crop_path)
                    .where(_A.id > last, *self._todo(space, target, since))  # type: ignore[arg-type]
                    .order_by(_A.id)
                    .limit(size)
                )
                rows = [ToEmbed(int(i), str(p)) for i, p in session.execute(stmt)]
            if not rows:
                return
            yield rows
            last = rows[-1].id

    def store(
        self, space: Space, target: str, ids: Sequence[int], vectors: Sequence[Vectors | None]
    ) -> None:
        """Keep one batch's new vectors (None: the crop blob was missing), committed."""
        rows = []
        for id_, vec in zip(ids, vectors, strict=True):
            flat = None if vec is None else np.asarray(vec, dtype="<f4").reshape(-1)
            rows.append(
                {
                    "appearance_id": int(id_),
                    "space": space,
                    "model_id": target,
                    "embedding": None if flat is None else flat.tobytes(),
                    "dim": 0 if flat is None else int(flat.shape[0]),
                }
            )
        if rows:
            with self._sessions.begin() as session:
                session.execute(insert(_R), rows)

    def missing(self, space: Space, target: str, first: int = 10) -> tuple[int, list[int]]:
        """How many appearances had no crop blob, and the first ids of them."""
        where = (_R.space == space, _R.model_id == target, _R.embedding.is_(None))
        with self._sessions() as session:
            n = int(
                session.execute(select(func.count()).select_from(_R).where(*where)).scalar_one()
            )
            ids = session.scalars(
                select(_R.appearance_id).where(*where).order_by(_R.appearance_id).limit(first)
            )
            return n, [int(i) for i in ids]

    def examples(self, space: Space) -> list[ExampleToEmbed]:
        """Every example crop of the rules in `space`."""
        stmt = (
            select(RuleExampleRow.id, RuleExampleRow.crop_path)
            .join(AlertRuleRow, AlertRuleRow.id == RuleExampleRow.rule_id)
            .where(AlertRuleRow.space == space)
            .order_by(RuleExampleRow.id)
        )
        with self._sessions() as session:
            return [ExampleToEmbed(int(i), str(p)) for i, p in session.execute(stmt)]

    def swap(
        self,
        space: Space,
        target: str,
        *,
        dim: int,
        embedder: str,
        examples: Mapping[int, Vectors],
        drop_missing: bool,
    ) -> dict[str, int]:
        """Move the space to `target` in one transaction; counts of what changed.

        Raises SwapIncompleteError (nothing changed) when an appearance or a rule example
        of the space has no new vector yet, or a crop was missing and `drop_missing` is off.
        """
        with self._sessions.begin() as session:
            _lock_writers(session, space)
            dropped = _drop_missing(session, space, target, drop_missing)
            _require_complete(session, space, target, examples)
            apps = _swap_appearances(session, space, target)
            tracks = _repool_tracks(session, space, target, dim)
            for example_id, vec in examples.items():
                flat = np.asarray(vec, dtype="<f4").reshape(-1)
                session.execute(
                    update(RuleExampleRow)
                    .where(RuleExampleRow.id == example_id)
                    .values(embedding=flat.tobytes(), dim=int(flat.shape[0]), model_id=target)
                )
            session.execute(
                update(SpaceModelRow)
                .where(SpaceModelRow.space == space)
                .values(
                    model_id=target,
                    dim=dim,
                    embedder=embedder,
                    pending_model_id=None,
                    index_stale=True,
                    updated_at=utcnow(),
                )
            )
            session.execute(delete(_R).where(_R.space == space))
        return {
            "appearances": apps,
            "tracks": tracks,
            "examples": len(examples),
            "dropped": dropped,
        }


def _lock_writers(session: Session, space: Space) -> None:
    """Hold off ingest commits for the swap: PostgreSQL's insert lock; SQLite's write lock."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": INSERT_ORDER_LOCK})
    # A write first: SQLite takes its one write lock here, PostgreSQL locks the row.
    session.execute(
        update(SpaceModelRow).where(SpaceModelRow.space == space).values(updated_at=utcnow())
    )


def _drop_missing(session: Session, space: Space, target: str, drop: bool) -> int:
    where = (_R.space == space, _R.model_id == target, _R.embedding.is_(None))
    ids = [int(i) for i in session.scalars(select(_R.appearance_id).where(*where))]
    if ids and not drop:
        first = ", ".join(str(i) for i in ids[:10])
        raise SwapIncompleteError(
            f"{len(ids)} appearances of the {space!r} space have no crop blob to re-embed "
            f"(first ids: {first}); restore the blobs and run again, or run with "
            "--drop-missing to delete those appearances in the swap"
        )
    for start in range(0, len(ids), 1000):
        session.execute(delete(_A).where(_A.id.in_(ids[start : start + 1000])))
    return len(ids)


def _require_complete(
    session: Session, space: Space, target: str, examples: Mapping[int, Vectors]
) -> None:
    done = exists().where(_R.appearance_id == _A.id, _R.model_id == target)
    left = session.execute(
        select(func.count()).select_from(_A).where(_A.space == space, _A.model_id != target, ~done)
    ).scalar_one()
    if left:
        raise SwapIncompleteError(
            f"{left} appearances of the {space!r} space are not re-embedded yet; "
            "the swap would mix two models"
        )
    rule_examples = session.scalars(
        select(RuleExampleRow.id)
        .join(AlertRuleRow, AlertRuleRow.id == RuleExampleRow.rule_id)
        .where(AlertRuleRow.space == space)
    )
    if set(rule_examples) - set(examples):
        raise SwapIncompleteError(f"a rule of the {space!r} space gained examples meanwhile")


def _swap_appearances(session: Session, space: Space, target: str) -> int:
    """Copy the kept vectors onto their appearances (one correlated UPDATE)."""
    kept = select(_R.appearance_id).where(_R.space == space, _R.model_id == target)
    new = select(_R.embedding).where(_R.appearance_id == _A.id).scalar_subquery()
    new_dim = select(_R.dim).where(_R.appearance_id == _A.id).scalar_subquery()
    result = session.execute(
        update(_A)
        .where(_A.space == space, _A.id.in_(kept))
        .values(embedding=new, dim=new_dim, model_id=target),
        execution_options={"synchronize_session": False},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _repool_tracks(session: Session, space: Space, target: str, dim: int) -> int:
    """Recompute every track's pooled vector from its members, as ingest pools them."""
    done = 0
    last = -1
    now = utcnow()
    while True:
        ids = list(
            session.scalars(
                select(_T.id)
                .where(_T.space == space, _T.id > last)
                .order_by(_T.id)
                .limit(TRACK_CHUNK)
            )
        )
        if not ids:
            return done
        last = ids[-1]
        members: dict[int, list[tuple[bytes, float]]] = {}
        stmt = (
            select(_A.track_id, _A.embedding, _A.quality)
            .where(_A.track_id.in_(ids))
            .order_by(_A.track_id, _A.ts, _A.id)
        )
        for track_id, blob, quality in session.execute(stmt):
            if track_id is not None:
                members.setdefault(int(track_id), []).append((bytes(blob), float(quality)))
        for track_id in ids:
            rows = members.get(track_id)
            if not rows:  # every member dropped (missing crops): the track goes too
                session.execute(delete(_T).where(_T.id == track_id))
                continue
            vectors = np.frombuffer(b"".join(b for b, _ in rows), "<f4").reshape(len(rows), dim)
            pooled = pool_vectors(vectors, [q for _, q in rows])
            session.execute(
                update(_T)
                .where(_T.id == track_id)
                .values(
                    embedding=np.asarray(pooled, "<f4").tobytes(),
                    dim=dim,
                    model_id=target,
                    appearances=len(rows),
                    updated_at=now,
                )
            )
            done += 1
