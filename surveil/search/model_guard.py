"""The model guard: a space is searched, ingested into and alerted on with one model only.

The model a space's vectors come from is one catalog row (`space_models`), so the check
costs a primary-key read per search, never a scan. While `surveil index reembed` moves a
space to the configured model, the space keeps being served by its OLD model (rebuilt
from the settings recorded with it), so queries and the old index agree until the swap;
if that old model file is gone, searches are refused until the re-embed finishes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from typing import Protocol

from surveil.domain import ModelMismatchError, Space, SpaceModel, SurveilError
from surveil.ports import Embedder


class SpaceModelReader(Protocol):
    """Where the model of each space's stored vectors is read from (the catalog)."""

    def get(self, space: Space) -> SpaceModel | None: ...


def reembed_command(space: str) -> str:
    """The command that moves a space to the configured model."""
    return f"surveil index reembed --space {space}"


class ModelGuard:
    """Picks the embedder that matches a space's stored vectors, or refuses, naming the fix."""

    def __init__(
        self,
        models: SpaceModelReader,
        configured: Callable[[Space], Embedder],
        from_spec: Callable[[Space, str], Embedder],
    ) -> None:
        self._models = models
        self._configured = configured
        self._from_spec = from_spec
        self._old: dict[tuple[Space, str], Embedder] = {}
        self._lock = threading.Lock()

    def embedder(self, space: Space) -> Embedder:
        """The embedder whose vectors agree with the space's index (the configured one,
        or the old one while a re-embed to the configured one is under way)."""
        record = self._models.get(space)
        configured = self._configured(space)
        if record is None:
            return configured
        if record.index_stale:
            raise ModelMismatchError(
                f"the {space!r} index is being rebuilt for model {record.model_id} after a "
                f"re-embed; retry in a moment (if no re-embed runs, `{reembed_command(space)}` "
                "finishes it)"
            )
        if configured.model_id == record.model_id:
            return configured
        if record.pending_model_id == configured.model_id:
            old = self._old_model(space, record)
            if old is not None:
                return old
            raise ModelMismatchError(
                f"the {space!r} space is being re-embedded to {configured.model_id} and its "
                f"old model {record.model_id} is no longer available to embed queries; "
                f"searches resume when `{reembed_command(space)}` finishes"
            )
        raise ModelMismatchError(
            f"the {space!r} space holds vectors of model {record.model_id} but the configured "
            f"{space} embedder is {configured.model_id}; run `{reembed_command(space)}` to "
            "re-embed the stored crops (or configure the old model back)"
        )

    def check_stored(self, space: Space) -> None:
        """Before a search from a stored vector: refuse a space mid-swap or on a changed model."""
        record = self._models.get(space)
        if record is not None and record.index_stale:
            self.embedder(space)  # raises the "being rebuilt" error
        self.require(space, (), "this search")

    def require(self, space: Space, model_ids: Collection[str], what: str) -> None:
        """Refuse stored vectors (a rule's examples) that cannot be scored against the space.

        They must be on the space's model; and, unless a re-embed is under way, the
        configured embedder must be that model too (a changed model is refused until
        `reembed`). A configured model file that cannot be found is the embedder's own
        error at the next search or ingest: stored vectors that agree are still scored.
        """
        record = self._models.get(space)
        if record is None:
            return
        other = sorted(set(model_ids) - {record.model_id})
        if other:
            raise ModelMismatchError(
                f"{what} holds vectors of model {', '.join(other)} but the {space!r} space "
                f"is on {record.model_id}; run `{reembed_command(space)}` to re-embed them"
            )
        if record.pending_model_id is not None:
            return
        try:
            configured = self._configured(space).model_id
        except (OSError, SurveilError) as exc:
            if isinstance(exc, ModelMismatchError):
                raise
            return
        if configured != record.model_id:
            raise ModelMismatchError(
                f"the {space!r} space holds vectors of model {record.model_id} but the "
                f"configured {space} embedder is {configured}; run `{reembed_command(space)}` "
                f"before {what} is evaluated again"
            )

    def _old_model(self, space: Space, record: SpaceModel) -> Embedder | None:
        """The recorded old model, if its settings are known and its file is unchanged."""
        if record.embedder is None:
            return None
        key = (space, record.embedder)
        with self._lock:
            if key not in self._old:
                try:
                    self._old[key] = self._from_spec(space, record.embedder)
                except (ValueError, OSError, SurveilError):  # file gone, settings unreadable
                    return None
            old = self._old[key]
        try:
            return old if old.model_id == record.model_id else None
        except OSError:
            return None
