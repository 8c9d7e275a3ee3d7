"""The operator's search, as one service the CLI and the API both call."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from surveil.config import SearchSettings
from surveil.domain import (
    BBox,
    Image,
    InputError,
    NotFoundError,
    SearchFilters,
    SearchQuery,
    Space,
    Vectors,
    space_for,
)
from surveil.ports import BlobStore, Catalog, Detector, Embedder, VectorIndex
from surveil.search.by_example import (
    MIN_QUERY_SIDE,
    QueryEmbedding,
    SearchResult,
    embed_example,
    search_by_example,
)
from surveil.search.rerank import RerankParams
from surveil.vision.crops import decode_image

#: Said when an operator still passes --gap: sightings are tracks now (docs/performance.md
#: "Tracking" has the measurements behind dropping the time-gap grouping).
GAP_IGNORED = (
    "--gap no longer changes results: a sighting is one track, formed at ingest "
    "by the tracker; drop the option"
)


class SearchService:
    """Search by example crop or by a stored appearance, with the operator's filters."""

    def __init__(
        self,
        *,
        index: VectorIndex,
        catalog: Catalog,
        blobs: BlobStore,
        embedder_for: Callable[[Space], Embedder],
        detector: Callable[[], Detector],
        settings: SearchSettings,
        person_labels: Sequence[str],
        warnings: Callable[[], tuple[str, ...]] = tuple,
        floors: Callable[[Space], float | None] | None = None,
        check_stored: Callable[[Space], None] = lambda space: None,
    ) -> None:
        self._index = index
        self._catalog = catalog
        self._blobs = blobs
        self._embedder_for = embedder_for
        self._detector = detector
        self._settings = settings
        self._person_labels = person_labels
        self._warnings = warnings
        # The model guard for searches from stored vectors (the query's model is theirs).
        self._check_stored = check_stored
        self._floors = floors  # a site's min_score calibrated from feedback, if applied

    def default_floor(self, space: Space) -> float:
        """The min_score a search of `space` uses when given none: calibrated, else configured."""
        calibrated = self._floors(space) if self._floors is not None else None
        return self._settings.floor(space) if calibrated is None else calibrated

    def embed(self, image: Image, *, label: str | None = None) -> QueryEmbedding:
        """An example crop as a query vector, in the space its label (or the detector) picks."""
        return embed_example(
            image,
            label=label,
            person_labels=self._person_labels,
            embedder_for=self._embedder_for,
            detector=self._detector,
        )

    def by_vector(
        self,
        space: Space,
        vector: Vectors,
        *,
        filters: SearchFilters | None = None,
        limit: int | None = None,
    ) -> SearchResult:
        """Search `space` by a vector already in hand (a re-run's fused or extra examples)."""
        filters = filters or SearchFilters()
        self.check_filters(filters)
        self._check_stored(space)  # stored vectors join these queries: one model per space
        return self._run(space, vector, filters, limit, None, 0.0)

    def rerank_params(self, asked: bool | None) -> RerankParams | None:
        """Re-ranking for one search: as asked, else as search.rerank.mode says."""
        r = self._settings.rerank
        if not (r.mode != "off" if asked is None else asked):
            return None
        return RerankParams(k1=r.k1, k2=r.k2, lam=r.lambda_, depth=r.depth)

    def check_filters(self, filters: SearchFilters) -> None:
        """Refuse filters naming cameras the catalog has never seen (likely a typo)."""
        if not filters.cameras:
            return
        known = set(self._catalog.camera_ids())
        unknown = sorted(filters.cameras - known)
        if unknown:
            shown = ", ".join(sorted(known)) or "none yet"
            raise InputError(f"unknown camera(s) {', '.join(unknown)} (known: {shown})")

    def _check_one_space(self, label: str | None, filters: SearchFilters) -> None:
        """Refuse a label filter that the crop's space can never satisfy."""
        spaces = {space_for(lbl, self._person_labels) for lbl in filters.labels}
        if label:
            spaces.add(space_for(label, self._person_labels))
        if len(spaces) > 1:
            raise InputError(
                "--label mixes persons with other objects, which live in different "
                "embedding spaces; search them separately"
            )

    def by_image(
        self,
        image: Image,
        *,
        label: str | None = None,
        filters: SearchFilters | None = None,
        limit: int | None = None,
        gap_seconds: float | None = None,
        rerank: bool | None = None,
    ) -> SearchResult:
        """Embed the crop in its space and search that space."""
        filters = filters or SearchFilters()
        self.check_filters(filters)
        self._check_one_space(label, filters)
        start = time.perf_counter()
        query = embed_example(
            image,
            label=label,
            person_labels=self._person_labels,
            embedder_for=self._embedder_for,
            detector=self._detector,
        )
        embed = time.perf_counter() - start  # the detector's label decision included
        return self._run(query.space, query.vector, filters, limit, gap_seconds, embed, rerank)

    def by_appearance(
        self,
        appearance_id: int,
        *,
        filters: SearchFilters | None = None,
        limit: int | None = None,
        gap_seconds: float | None = None,
        rerank: bool | None = None,
    ) -> SearchResult:
        """'Find similar' from a stored appearance, reusing its stored embedding."""
        filters = filters or SearchFilters()
        self.check_filters(filters)
        start = time.perf_counter()
        space, vector = self._catalog.appearance_embedding(appearance_id)
        self._check_stored(space)
        embed = time.perf_counter() - start  # a stored vector: "embed" is reading it
        return self._run(space, vector, filters, limit, gap_seconds, embed, rerank)

    def by_track(
        self,
        track_id: int,
        *,
        filters: SearchFilters | None = None,
        limit: int | None = None,
        gap_seconds: float | None = None,
        rerank: bool | None = None,
    ) -> SearchResult:
        """'Find similar' from a stored track, by its pooled vector (all its crops at once)."""
        filters = filters or SearchFilters()
        self.check_filters(filters)
        start = time.perf_counter()
        space, vector = self._catalog.track_embedding(track_id)
        self._check_stored(space)
        embed = time.perf_counter() - start
        return self._run(space, vector, filters, limit, gap_seconds, embed, rerank)

    def keyframe_crop(self, keyframe_id: int, box: BBox) -> Image:
        """The part of a stored keyframe inside `box` (keyframe pixels), as an example crop."""
        record = self._catalog.get_keyframe(keyframe_id=keyframe_id)
        if record is None:
            raise NotFoundError(f"no keyframe with id {keyframe_id}")
        if not record.image_path:
            raise NotFoundError(
                f"keyframe {keyframe_id} has no stored image (storage.keep_keyframes was off)"
            )
        x1, y1, x2, y2 = (round(v) for v in box)
        x1, x2 = max(0, min(x1, x2)), min(record.width, max(x1, x2))
        y1, y2 = max(0, min(y1, y2)), min(record.height, max(y1, y2))
        if x2 - x1 < MIN_QUERY_SIDE or y2 - y1 < MIN_QUERY_SIDE:
            raise InputError(
                f"box {box} on the {record.width}x{record.height} keyframe {keyframe_id} leaves "
                f"less than {MIN_QUERY_SIDE}x{MIN_QUERY_SIDE} pixels; draw a larger box"
            )
        try:
            image = decode_image(self._blobs.get(record.image_path), what=f"keyframe {keyframe_id}")
        except FileNotFoundError:
            raise NotFoundError(f"keyframe {keyframe_id}'s image file is missing") from None
        return image[y1:y2, x1:x2].copy()

    def _run(
        self,
        space: Space,
        vector: Vectors,
        filters: SearchFilters,
        limit: int | None,
        gap_seconds: float | None,
        embed_seconds: float,
        rerank: bool | None = None,
    ) -> SearchResult:
        if filters.min_score is None:
            filters = replace(filters, min_score=self.default_floor(space))
        query = SearchQuery(
            space=space,
            vector=np.asarray(vector, dtype=np.float32),
            filters=filters,
            limit=limit or self._settings.limit,
        )
        result = search_by_example(
            query,
            index=self._index,
            catalog=self._catalog,
            overfetch=self._settings.overfetch,
            max_candidates=self._settings.max_candidates,
            label_groups=self._settings.label_groups,
            refine_margin=self._settings.refine_margin,
            rerank=self.rerank_params(rerank),
        )
        result = replace(result, timings=replace(result.timings, embed=embed_seconds))
        notes = self._warnings()  # after the crop's label: a fallback taken there counts
        if gap_seconds is not None:
            notes = (*notes, GAP_IGNORED)
        return replace(result, warnings=(*result.warnings, *notes)) if notes else result
