"""Search by example crop: embed -> index (over-fetch) -> hydrate + filter -> sightings."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Literal

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
    label_group,
    space_for,
)
from surveil.ports import Catalog, CropDetector, Detector, Embedder, IndexHit, VectorIndex
from surveil.search.grouping import by_time, track_sighting
from surveil.search.rerank import RerankParams, rerank_order
from surveil.timing import StageTimer

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


#: Why a result is not every match: "limit" (more sightings matched than `limit` let
#: through) or "max_candidates" (the search went search.max_candidates deep and every
#: candidate there still reached min_score, so more may lie deeper).
TruncatedReason = Literal["limit", "max_candidates"]


def truncation(over_limit: bool, deepest: bool) -> TruncatedReason | None:
    """The reason a result is cut, if it is; "limit" wins, the cut the operator can lift."""
    if over_limit:
        return "limit"
    return "max_candidates" if deepest else None


#: The stages a search is timed in, in the order they run.
STAGES = ("embed", "index", "hydrate", "rerank", "group", "audit")
#: The stages `search_by_example` itself runs (embed and audit happen around it).
SEARCH_STAGES = ("index", "hydrate", "rerank", "group")


@dataclass(frozen=True, slots=True)
class StageTimes:
    """Seconds one search spent in each stage: where to look when a search is slow.

    embed: the query vector (the crop's label decision and embedding, or reading a
    stored vector); index: vector searches, every round; hydrate: catalog reads of the
    candidates' members and their vectors, and re-scoring them; rerank: the second stage
    (reading the candidates' pooled vectors and re-ordering them; 0 when off); group:
    ranking, the cut at the limit and building sightings; audit: the audit trail (crop
    copy and row).
    """

    embed: float = 0.0
    index: float = 0.0
    hydrate: float = 0.0
    rerank: float = 0.0
    group: float = 0.0
    audit: float = 0.0

    def ms(self) -> dict[str, float]:
        """Milliseconds per stage (0.01 ms resolution), in STAGES order."""
        return {f.name: round(getattr(self, f.name) * 1000, 2) for f in fields(self)}


class Stopwatch(StageTimer):
    """The seconds one search spent in each of STAGES (every stage present, 0 if unused)."""

    def __init__(self) -> None:
        super().__init__(seconds=dict.fromkeys(STAGES, 0.0))

    def times(self) -> StageTimes:
        """What has been spent so far."""
        return StageTimes(**self.seconds)


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
    #: Why it was cut, when `truncated`.
    truncated_reason: TruncatedReason | None = None
    #: Seconds per stage; embed and audit are added by the callers that run them.
    timings: StageTimes = StageTimes()
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


@dataclass(frozen=True, slots=True)
class Scored:
    """Candidate tracks re-scored by their members' own vectors, before any row is loaded.

    Only tracks with at least one member inside the filters are here. `best` is the
    better of a track's pooled (index) score and its best member's; `own` is each
    member's score, shown next to it.
    """

    pooled: dict[int, float]
    best: dict[int, float]
    own: dict[int, float]

    def ranked(self, floor: float) -> list[tuple[int, float]]:
        """(track, best score) of tracks reaching `floor`, best first, ties by track id.

        The same order as `grouping.best_first`, so a cut at the limit is stable.
        """
        kept = [(t, s) for t, s in self.best.items() if s >= floor]
        return sorted(kept, key=lambda ts: (-ts[1], ts[0]))


def _hydrate(
    catalog: Catalog, query: SearchQuery, candidates: Sequence[tuple[int, float]]
) -> Scored:
    """Score candidate tracks by their members in the filters (one catalog read, one product).

    Only (track, id, vector) per member is read here: every candidate must be scored to
    rank them, but only the tracks shown need whole rows (`_sightings`).
    """
    pooled = dict(candidates)
    members = catalog.member_vectors(query.space, list(pooled), filters=query.filters)
    if len(members.ids) == 0:
        return Scored({}, {}, {})
    tracks = members.tracks
    if members.vectors.shape[1:] == query.vector.shape:
        # einsum, not `@`: a matrix-vector product on OpenBLAS's threads took 0.03 ms or,
        # when the other core was busy, 8 ms (2,000 x 512); einsum's own loop, 0.17 ms.
        scores = np.einsum("ij,j->i", members.vectors, query.vector.astype(np.float32))
    else:  # stored by another model than the query's: members keep their track's score
        scores = np.array([pooled[int(t)] for t in tracks], np.float32)
    # Each track's best member: sort by track, then one max per run of equal tracks.
    order = np.argsort(tracks, kind="stable")
    found, starts = np.unique(tracks[order], return_index=True)
    top = np.maximum.reduceat(scores[order], starts)
    best = {t: max(pooled[t], s) for t, s in zip(found.tolist(), top.tolist(), strict=True)}
    own = dict(zip(members.ids.tolist(), scores.tolist(), strict=True))
    return Scored({t: pooled[t] for t in best}, best, own)


def _sightings(
    catalog: Catalog, query: SearchQuery, scored: Scored, shown: Sequence[int], clock: Stopwatch
) -> list[Sighting]:
    """The tracks shown as sightings by time: their whole member rows, read once per search."""
    with clock.stage("hydrate"):
        members = catalog.track_members(list(shown), filters=query.filters)
    with clock.stage("group"):
        found = [
            track_sighting(t, members[t], scored.pooled[t], scored.own)
            for t in shown
            if members.get(t)  # gone since it was scored (retention): nothing to show
        ]
        return by_time(found)


def _cut_inside_tie(
    found: Sequence[IndexHit], kept: Sequence[tuple[int, float]], limit: int
) -> bool:
    """Whether the index's k-th candidate ties the last kept sighting.

    A cut through a tie would pick arbitrary members of it, so the search goes deeper
    until the tie is whole.
    """
    return bool(found) and found[-1].score >= kept[limit - 1][1]


def _reranked(
    catalog: Catalog,
    query: SearchQuery,
    found: Sequence[IndexHit],
    scored: Scored,
    params: RerankParams,
) -> list[tuple[int, float]]:
    """The matched tracks in k-reciprocal order; their scores stay cosine.

    The neighbour graph is the best `params.depth` index candidates by their pooled
    vectors (tracks outside the filters too: they are the gallery a false match is
    recognised against); the lambda term uses the search's own track score.
    """
    floor = -1.0 if query.filters.min_score is None else query.filters.min_score
    matched = scored.ranked(floor)
    ids, vectors = catalog.track_vectors(query.space, [h.id for h in found[: params.depth]])
    if len(ids) < 2 or vectors.shape[1:] != query.vector.shape:
        return matched  # nothing to re-rank, or vectors of another model: keep cosine order
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    gallery = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
    pooled = dict(zip((h.id for h in found), (h.score for h in found), strict=True))
    sims = np.array([scored.best.get(t, pooled.get(t, -1.0)) for t in ids.tolist()], np.float32)
    order = rerank_order(query.vector.astype(np.float32), gallery, params, sims)
    rank = {int(ids[i]): r for r, i in enumerate(order.tolist())}
    last = len(rank)
    return sorted(matched, key=lambda ts: (rank.get(ts[0], last), -ts[1], ts[0]))


def _inside_filters(
    query: SearchQuery, label_groups: Mapping[str, Sequence[str]]
) -> tuple[frozenset[str] | None, frozenset[str] | None]:
    """The camera and label-group filters for an index that applies them before its cut.

    Labels become their groups (the index keeps one label group per track): a superset of
    the tracks with a member of that label, narrowed exactly by hydration afterwards.
    """
    f = query.filters
    groups = frozenset(label_group(lbl, label_groups) for lbl in f.labels)
    return (f.cameras or None, groups or None)


def search_by_example(
    query: SearchQuery,
    *,
    index: VectorIndex,
    catalog: Catalog,
    overfetch: int,
    max_candidates: int,
    label_groups: Mapping[str, Sequence[str]],
    refine_margin: float = 0.0,
    rerank: RerankParams | None = None,
) -> SearchResult:
    """Find every sighting (track) of the query's object, ordered by time.

    The index holds one pooled vector per track. Tracks whose pooled score is within
    `refine_margin` under min_score are candidates too: their members are re-scored, and
    a track whose best member reaches min_score is kept (a crop from one end of a long
    track can be far from its mean). Filters are applied to the tracks' members after
    the vector search (an index with `filters_inside` also applies cameras, label
    groups and time before its cut, so it is not over-fetched), so a round that leaves
    fewer than `limit` tracks while the index still had more candidates searches deeper
    (k grows 4x per round up to max_candidates) instead of losing matches. With a
    min_score, the deeper rounds are slices of one `search_above` at the floor (one range
    search per shard) rather than new, deeper index searches that scan the same lists.

    With `rerank`, the matched tracks are re-ordered by the k-reciprocal distance before
    the cut at `limit` (the index goes at least `rerank.depth` deep, the graph's gallery):
    which tracks fill the limit may change, the scores shown and min_score do not.
    """
    started = time.perf_counter()
    clock = Stopwatch()
    floor = -1.0 if query.filters.min_score is None else query.filters.min_score
    reach = floor - refine_margin
    inside = index.filters_inside
    cameras, labels = _inside_filters(query, label_groups) if inside else (None, None)
    # An index that filters before its cut returns only tracks that may pass: `limit`
    # and one more (to see whether the cut splits a tie) is enough, and a deeper round
    # is only needed when hydration drops some (a label inside a group, a track that
    # overlaps the time window with no member inside it).
    first = query.limit + 1 if inside else query.limit * overfetch
    if rerank is not None:
        first = max(first, rerank.depth)
    k = min(max(first, 1), max_candidates)
    rounds = 0
    # Everything at or above `reach`, best first, once a round showed more may lie deeper:
    # later rounds take deeper slices of it instead of searching the index again.
    pool: list[IndexHit] | None = None
    window = {"since": query.filters.since, "until": query.filters.until}
    while True:
        rounds += 1
        with clock.stage("index"):
            if pool is None:
                found = index.search(
                    query.space, query.vector, k, cameras=cameras, labels=labels, **window
                )
            else:
                found = pool[:k]
        above = [(h.id, h.score) for h in found if h.score >= reach]
        with clock.stage("hydrate"):
            scored = _hydrate(catalog, query, above)
        with clock.stage("group"):
            matched = scored.ranked(floor)
        exhausted = len(found) < k or len(above) < len(found) or k >= max_candidates
        enough = len(matched) >= query.limit
        if exhausted or (enough and not _cut_inside_tie(found, matched, query.limit)):
            break
        k = min(k * 4, max_candidates)
        if pool is None and query.filters.min_score is not None:
            with clock.stage("index"):
                pool = index.search_above(
                    query.space,
                    query.vector,
                    reach,
                    max_candidates,
                    cameras=cameras,
                    labels=labels,
                    **window,
                )
    if rerank is not None and matched:
        with clock.stage("rerank"):
            matched = _reranked(catalog, query, found, scored, rerank)
    deepest = k >= max_candidates and len(found) >= k and len(above) == len(found)
    reason = truncation(len(matched) > query.limit, deepest)
    shown = [t for t, _ in matched[: query.limit]]
    sightings = _sightings(catalog, query, scored, shown, clock)
    elapsed = time.perf_counter() - started
    timings = clock.times()
    log.info(
        "search.ranked",
        space=query.space,
        candidates=len(found),
        rounds=rounds,
        sightings=len(sightings),
        min_score=floor,
        truncated=reason,
        reranked=rerank is not None,
        ms=round(elapsed * 1000, 1),
        **{f"{name}_ms": ms for name, ms in timings.ms().items() if name in SEARCH_STAGES},
    )
    return SearchResult(
        sightings=sightings,
        candidates=len(found),
        rounds=rounds,
        seconds=elapsed,
        truncated=reason is not None,
        truncated_reason=reason,
        timings=timings,
    )
