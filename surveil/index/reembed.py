"""`surveil index reembed`: move a vector space to the configured embedding model.

1. The space is marked pending (searches, rules and ingest keep using the OLD model).
2. Stored crops are embedded in batches; each batch is committed aside
   (`reembed_vectors`), so a killed run resumes where it stopped and loses nothing.
3. Rule examples are re-embedded from their stored crops.
4. One transaction swaps appearances, pooled track vectors, rule examples and the
   space's model row; appearances ingested meanwhile (on the old model) are embedded
   first, so the swap never mixes models.
5. The space's index is rebuilt from the catalog (FAISS staging + rename, or a Milvus
   alias move) and searches use the new model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import structlog

from surveil.domain import Image, InputError, Space, Vectors
from surveil.ports import BlobStore, Embedder
from surveil.storage.reembed import SqlReembed, SwapIncompleteError
from surveil.storage.space_models import SqlSpaceModels
from surveil.vision.crops import decode_image

log = structlog.get_logger(__name__)

#: Swap attempts when appearances keep arriving on the old model during the swap.
SWAP_ATTEMPTS = 5


@dataclass
class ReembedReport:
    """What one `reembed` of a space did."""

    space: Space
    from_model: str | None
    to_model: str
    embedded: int = 0
    missing: int = 0
    missing_ids: list[int] = field(default_factory=list)
    swapped: bool = False
    appearances: int = 0
    tracks: int = 0
    examples: int = 0
    dropped: int = 0
    indexed: int = 0
    seconds: float = 0.0
    #: Where the time went: embedding crops (and examples), the swap transaction, the index.
    embed_seconds: float = 0.0
    swap_seconds: float = 0.0
    index_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain values for --json."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ReembedOptions:
    """How to re-embed: batch size, only recent appearances, dropping lost crops."""

    batch: int = 256
    since: datetime | None = None
    drop_missing: bool = False


class Reembedder:
    """Re-embeds one space's stored crops with the configured model, then swaps."""

    def __init__(
        self,
        *,
        models: SqlSpaceModels,
        store: SqlReembed,
        blobs: BlobStore,
        embedder: Callable[[Space], Embedder],
        embedder_spec: Callable[[Space], str],
        rebuild: Callable[[Space], int],
    ) -> None:
        self._models = models
        self._store = store
        self._blobs = blobs
        self._embedder = embedder
        self._spec = embedder_spec
        self._rebuild = rebuild

    def todo(self, space: Space, since: datetime | None = None) -> int:
        """Appearances the configured model has not embedded yet (for the progress bar)."""
        return self._store.count_todo(space, self._embedder(space).model_id, since)

    def run(
        self,
        space: Space,
        options: ReembedOptions,
        *,
        progress: Callable[[int], object] = lambda n: None,
    ) -> ReembedReport:
        """Re-embed, swap and rebuild `space`; `progress` hears each committed batch."""
        if options.batch < 1:
            raise InputError(f"--batch must be at least 1, got {options.batch}")
        started = time.perf_counter()
        embedder = self._embedder(space)
        target = embedder.model_id
        before = self._models.get(space)
        report = ReembedReport(space, None if before is None else before.model_id, target)
        state = self._models.begin(space, target, embedder.dim)
        self._store.discard_other(space, target)
        if state.model_id == target and not state.index_stale and not self.todo(space):
            log.info("reembed.up_to_date", space=space, model=target)
            report.seconds = time.perf_counter() - started
            return report
        if state.model_id != target:
            self._embed_all(space, embedder, options, report, progress)
            self._require_all(space, target, options)
            self._swap(space, embedder, options, report, progress)
        mark = time.perf_counter()
        report.indexed = self._rebuild(space)
        self._models.index_rebuilt(space)
        report.index_seconds = time.perf_counter() - mark
        report.seconds = time.perf_counter() - started
        log.info(
            "reembed.done", **{k: v for k, v in report.to_dict().items() if k != "missing_ids"}
        )
        return report

    def _embed_all(
        self,
        space: Space,
        embedder: Embedder,
        options: ReembedOptions,
        report: ReembedReport,
        progress: Callable[[int], object],
    ) -> None:
        mark = time.perf_counter()
        for batch in self._store.batches(space, embedder.model_id, options.since, options.batch):
            images = [self._crop(item.crop_path) for item in batch]
            present = [img for img in images if img is not None]
            vectors = iter(embedder.embed(present)) if present else iter(())
            out: list[Vectors | None] = [None if img is None else next(vectors) for img in images]
            self._store.store(space, embedder.model_id, [b.id for b in batch], out)
            report.embedded += len(present)
            log.info(
                "reembed.batch",
                space=space,
                embedded=len(present),
                missing=len(images) - len(present),
            )
            progress(len(batch))
        report.missing, report.missing_ids = self._store.missing(space, embedder.model_id)
        report.embed_seconds += time.perf_counter() - mark

    def _require_all(self, space: Space, target: str, options: ReembedOptions) -> None:
        """With --since, older appearances may still be on the old model: no swap then."""
        if options.since is None:
            return
        older = self._store.count_todo(space, target)
        if older:
            raise SwapIncompleteError(
                f"{older} appearances of the {space!r} space older than --since are still on "
                "the old model, so the swap would mix two models; the batches done are kept: "
                f"run `surveil index reembed --space {space}` without --since to finish"
            )

    def _swap(
        self,
        space: Space,
        embedder: Embedder,
        options: ReembedOptions,
        report: ReembedReport,
        progress: Callable[[int], object],
    ) -> None:
        for attempt in range(1, SWAP_ATTEMPTS + 1):
            mark = time.perf_counter()
            examples = self._examples(space, embedder)
            report.embed_seconds += time.perf_counter() - mark
            mark = time.perf_counter()
            try:
                counts = self._store.swap(
                    space,
                    embedder.model_id,
                    dim=embedder.dim,
                    embedder=self._spec(space),
                    examples=examples,
                    drop_missing=options.drop_missing,
                )
            except SwapIncompleteError:
                if attempt == SWAP_ATTEMPTS or (report.missing and not options.drop_missing):
                    raise
                # Ingested (on the old model) since the batches: embed those, try again.
                self._embed_all(space, embedder, options, report, progress)
                continue
            report.swapped = True
            report.swap_seconds = time.perf_counter() - mark
            report.appearances, report.tracks = counts["appearances"], counts["tracks"]
            report.examples, report.dropped = counts["examples"], counts["dropped"]
            return

    def _examples(self, space: Space, embedder: Embedder) -> dict[int, Vectors]:
        """Every rule example of the space embedded with the new model."""
        examples = self._store.examples(space)
        images: list[Image] = []
        for ex in examples:
            image = self._crop(ex.crop_path)
            if image is None:
                raise InputError(
                    f"rule example {ex.id}'s crop {ex.crop_path} is missing, so it cannot be "
                    "re-embedded; delete that rule (or restore the blob) and run again"
                )
            images.append(image)
        vectors: Sequence[Vectors] = list(embedder.embed(images)) if images else []
        return {ex.id: vec for ex, vec in zip(examples, vectors, strict=True)}

    def _crop(self, key: str) -> Image | None:
        """A stored crop, decoded; None when its blob is gone."""
        try:
            data = self._blobs.get(key)
        except FileNotFoundError:
            return None
        return decode_image(data, what=f"crop {key}")
