"""Which embedding model each vector space holds: one row per space, read per search.

Ingest records the model on a space's first write and refuses a different one in the
same transaction as its rows, so two models can never meet in one space; a re-embed
moves the row to the new model in the transaction that swaps the vectors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from surveil.domain import ModelMismatchError, Space, SpaceModel
from surveil.storage.tables import SpaceModelRow, utcnow

_M = SpaceModelRow


def reembed_hint(space: str) -> str:
    """The command that moves a space to the configured model."""
    return f"surveil index reembed --space {space}"


def _model(row: SpaceModelRow) -> SpaceModel:
    return SpaceModel(
        space=row.space,  # type: ignore[arg-type]  # the CHECK constraint keeps it a Space
        model_id=row.model_id,
        dim=row.dim,
        embedder=row.embedder,
        pending_model_id=row.pending_model_id,
        index_stale=row.index_stale,
    )


def batch_models(rows: Sequence[Mapping[str, Any]]) -> dict[str, tuple[str, int]]:
    """The (model id, dim) of each space in a batch of appearance rows; two models refused."""
    found: dict[str, tuple[str, int]] = {}
    for row in rows:
        pair = (str(row["model_id"]), int(row["dim"]))
        if found.setdefault(str(row["space"]), pair) != pair:
            raise ModelMismatchError(
                f"one batch carries two models for the {row['space']!r} space: "
                f"{found[str(row['space'])][0]} and {pair[0]}"
            )
    return found


def require_models(session: Session, models: Mapping[str, tuple[str, int]]) -> None:
    """Refuse vectors of another model than the space holds; record a new space's model.

    Called inside an ingest transaction after its first write (so SQLite holds the write
    lock and a re-embed's swap cannot slip in between the check and the commit).
    """
    for space, (model_id, dim) in sorted(models.items()):
        row = session.get(_M, space)
        if row is None:
            session.add(_M(space=space, model_id=model_id, dim=dim, updated_at=utcnow()))
            session.flush()
        elif row.model_id != model_id:
            raise ModelMismatchError(
                f"the {space!r} space holds vectors of model {row.model_id}, not {model_id}; "
                f"refusing to mix two models in one space: run `{reembed_hint(space)}` "
                "(or restart this process if a re-embed just finished)"
            )


class SqlSpaceModels:
    """Reads and writes of `space_models`."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def get(self, space: Space) -> SpaceModel | None:
        """The space's model row, None while nothing was ever stored in it."""
        with self._sessions() as session:
            row = session.get(_M, space)
            return None if row is None else _model(row)

    def all(self) -> dict[str, SpaceModel]:
        """Every space's model row, by space."""
        with self._sessions() as session:
            return {r.space: _model(r) for r in session.scalars(select(_M).order_by(_M.space))}

    def record(self, space: Space, model_id: str, dim: int, embedder: str) -> None:
        """Note the configured model of a space about to be written (ingest start).

        A new space gets the model; the same model gets its settings noted (a re-embed
        keeps serving searches with them); another model is refused, naming the fix.
        """
        with self._sessions.begin() as session:
            require_models(session, {space: (model_id, dim)})
            row = session.get(_M, space)
            if row is not None and row.embedder != embedder:
                row.embedder = embedder

    def begin(self, space: Space, target: str, dim: int) -> SpaceModel:
        """Mark a re-embed to `target` as started (a space never written takes it at once)."""
        with self._sessions.begin() as session:
            row = session.get(_M, space)
            if row is None:
                row = _M(space=space, model_id=target, dim=dim, updated_at=utcnow())
                session.add(row)
            else:  # back on its own model (config reverted, or after a swap): nothing pends
                row.pending_model_id = None if row.model_id == target else target
                row.updated_at = utcnow()
            session.flush()
            return _model(row)

    def index_rebuilt(self, space: Space) -> None:
        """The space's index now holds the swapped vectors: searches may use it again."""
        with self._sessions.begin() as session:
            session.execute(update(_M).where(_M.space == space).values(index_stale=False))
