"""Search by example crop: embed -> index (over-fetch) -> hydrate + filter -> sightings."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import structlog

from surveil.domain import (
    Detections,
    Image,
    InputError,
    SearchQuery,
    Sighting,
    Space,
    Vectors,
    space_for,
)
from surveil.ports import Catalog, CropDetector, Detector, Embedder, IndexHit, VectorIndex
from surveil.search.grouping import best_first, by_time, track_sighting

log = structlog.get_logger(__name__)

#: A query crop smaller than this on either side carries too little to embed.
MIN_QUERY_SIDE = 8


@dataclass(frozen=True, slots=True)
class QueryEmbedding:
    """The example crop as a vector, and how its space was chosen."""

    space: Space
    vector: Vectors
    label: str | None
    label_source: str


@dataclass(frozen=True, slots=True)
class SearchResult:
    """Sightings plus what it took to find them (for logs, metrics and the audit trail)."""

    sightings: list[Sighting]
    candidates: int
    rounds: int
    seconds: float
    #: More matches passed the filters than `limit` let through (or the search hit
    #: search.max_candidates with candidates left): the operator must be told.
    truncated: bool = False
    #: Degraded modes in effect for this result (e.g. a motion-fallback detector),
    #: said in every output so nobody takes a degraded answer for a full one.
    warnings: tuple[str, ...] = ()


def _detect_crop(detector: Detector, image: Image) -> Detections:
    """Detections in the query crop, by the detector's small-input path where it has one.

    The full 640 px YOLO took ~130 ms of a ~200 ms search to label a ~100 px crop and
    missed most tight person crops; YOLO's crop path (160 px, confidence floor 0.1) is
    ~10x faster and right more often on the labelled sample crops (surveil/vision/yolo.py
    CROP_IMAGE_SIZE; docs/performance.md, "Crop label without a 640 px detection").
    """
    if isinstance(detector, CropDetector):
        return detector.detect_crop(image)
    (dets,) = detector.detect([image])
    return dets


def crop_label(dets: Detections, image: Image) -> str | None:
    """The label of the detection covering most of the crop, if any covers a good part."""
    if len(dets) == 0:
        return None
    h, w = image.shape[:2]
    areas = (dets.xyxy[:, 2] - dets.xyxy[:, 0]) * (dets.xyxy[:, 3] - dets.xyxy[:, 1])
    best = int(np.argmax(areas * dets.confidence))
    # A detection covering a small corner of the crop is background, not the subject.
    if areas[best] < 0.25 * w * h:
        return None
    return dets.labels[best]


def _label_from_detector(detector: Detector, image: Image) -> str | None:
    """The crop's label as the detector sees it; None when nothing covers it."""
    return crop_label(_detect_crop(detector, image), image)


def embed_example(
    image: Image,
    *,
    label: str | None,
    person_labels: Sequence[str],
    embedder_for: Callable[[Space], Embedder],
    detector: Callable[[], Detector] | None = None,
) -> QueryEmbedding:
    """Embed an operator's crop in the space its label belongs to.

    The label comes from the operator, else from the detector's small-input look at the
    crop (`label_source` "detector"), else the general space is used ("default").
    """
    if image.size == 0 or min(image.shape[:2]) < MIN_QUERY_SIDE:
        raise InputError(
            f"example crop is too small ({image.shape[1]}x{image.shape[0]} px); "
            f"give at least {MIN_QUERY_SIDE}x{MIN_QUERY_SIDE}"
        )
    source = "given"
    if label is None and detector is not None:
        label = _label_from_detector(detector(), image)
        source = "detector" if label else "default"
    elif label is None:
        source = "default"
    space: Space = space_for(label, person_labels) if label else "general"
    vector = embedder_for(space).embed([image])
    return QueryEmbedding(space=space, vector=vector[0], label=label, label_source=source)


def _hydrate(
    catalog: Catalog, query: SearchQuery, candidates: Sequence[tuple[int, float]]
) -> list[Sighting]:
    """Matched tracks with at least one member inside the filters, as sightings.

    Each member is re-scored against its own stored vector (one query for all of them).
    """
    scores = dict(candidates)
    members = catalog.track_members(list(scores), filters=query.filters)
    ids = [a.id for apps in members.values() for a in apps]
    vectors = catalog.appearance_vectors(query.space, ids)
    own = _similarities(query.vector, vectors)
    return [track_sighting(t, apps, scores[t], own) for t, apps in members.items() if apps]


def _similarities(query: Vectors, vectors: Mapping[int, Vectors]) -> dict[int, float]:
    """Cosine of the (unit) query to each (unit) stored vector of the same dimension."""
    ids = [i for i, v in vectors.items() if v.shape == query.shape]
    if not ids:
        return {}
    matrix = np.stack([vectors[i] for i in ids]).astype(np.float32)
    return dict(zip(ids, (matrix @ query.astype(np.float32)).tolist(), strict=True))


def _cut_inside_tie(found: Sequence[IndexHit], kept: Sequence[Sighting], limit: int) -> bool:
    """Whether the index's k-th candidate ties the last kept sighting.

    A cut through a tie would pick arbitrary members of it, so the search goes deeper
    until the tie is whole.
    """
    return bool(found) and found[-1].score >= kept[limit - 1].best_score


def search_by_example(
    query: SearchQuery,
    *,
    index: VectorIndex,
    catalog: Catalog,
    overfetch: int,
    max_candidates: int,
    label_groups: Mapping[str, Sequence[str]],
    refine_margin: float = 0.0,
) -> SearchResult:
    """Find every sighting (track) of the query's object, ordered by time.

    The index holds one pooled vector per track. Tracks whose pooled score is within
    `refine_margin` under min_score are candidates too: their members are re-scored, and
    a track whose best member reaches min_score is kept (a crop from one end of a long
    track can be far from its mean). Filters are applied to the tracks' members after
    the vector search, so a round that leaves fewer than `limit` tracks while the index
    still had more candidates searches deeper (k grows 4x per round up to
    max_candidates) instead of losing matches.
    """
    started = time.perf_counter()
    floor = -1.0 if query.filters.min_score is None else query.filters.min_score
    reach = floor - refine_margin
    k = min(max(query.limit * overfetch, 1), max_candidates)
    rounds = 0
    while True:
        rounds += 1
        found = index.search(
            query.space, query.vector, k, since=query.filters.since, until=query.filters.until
        )
        above = [(h.id, h.score) for h in found if h.score >= reach]
        hydrated = _hydrate(catalog, query, above)
        matched = best_first([s for s in hydrated if s.best_score >= floor])
        exhausted = len(found) < k or len(above) < len(found) or k >= max_candidates
        enough = len(matched) >= query.limit
        if exhausted or (enough and not _cut_inside_tie(found, matched, query.limit)):
            break
        k = min(k * 4, max_candidates)
    deepest = k >= max_candidates and len(found) >= k and len(above) == len(found)
    truncated = len(matched) > query.limit or deepest
    sightings = by_time(matched[: query.limit])
    elapsed = time.perf_counter() - started
    log.info(
        "search.done",
        space=query.space,
        candidates=len(found),
        rounds=rounds,
        sightings=len(sightings),
        min_score=floor,
        ms=round(elapsed * 1000, 1),
    )
    return SearchResult(
        sightings=sightings,
        candidates=len(found),
        rounds=rounds,
        seconds=elapsed,
        truncated=truncated,
    )
