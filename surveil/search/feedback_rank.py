"""Re-ranking a search with operator feedback, as pure functions over results and vectors.

Confirmed hits join the query (multi-example); rejected hits never come back, and a
track closer to a rejected hit than its own score says it is to the query is pushed
down by the difference (Rocchio's negative term, applied per track so a true match that
merely resembles a rejected stranger a little keeps its score).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace

import numpy as np

from surveil.domain import Sighting, Vectors
from surveil.search.by_example import SearchResult
from surveil.search.grouping import best_first, by_time


def mean_query(examples: Vectors) -> Vectors:
    """One query from several examples: their mean, renormalised (Rocchio's positive term)."""
    mean = np.asarray(examples, np.float32).mean(axis=0)
    norm = float(np.linalg.norm(mean))
    out: Vectors = (mean / norm if norm > 0 else mean).astype(np.float32)
    return out


def fuse_max(results: Sequence[SearchResult]) -> dict[int, Sighting]:
    """Each track's sighting from the example that matched it best (multi-example by max)."""
    best: dict[int, Sighting] = {}
    for result in results:
        for sighting in result.sightings:
            if sighting.track_id is None:
                continue
            held = best.get(sighting.track_id)
            if held is None or sighting.best_score > held.best_score:
                best[sighting.track_id] = sighting
    return best


def penalty(score: float, rejected_sim: float, weight: float) -> float:
    """How far a track drops: `weight` times how much closer it is to a rejected hit."""
    return weight * max(0.0, rejected_sim - score)


def rerank(
    found: Mapping[int, Sighting],
    *,
    track_vectors: Mapping[int, Vectors],
    rejected: Vectors,
    rejected_tracks: Collection[int],
    floor: float,
    weight: float,
    limit: int,
) -> tuple[list[Sighting], bool]:
    """The re-run's sightings by time, and whether the limit cut some off.

    Rejected tracks are dropped; the others lose `penalty` and must still reach `floor`.
    """
    kept: list[Sighting] = []
    for track, sighting in found.items():
        if track in rejected_tracks:
            continue
        score = sighting.best_score
        vector = track_vectors.get(track)
        if len(rejected) and vector is not None and vector.shape == rejected.shape[1:]:
            near = float(np.max(rejected @ vector))
            score -= penalty(score, near, weight)
        if score >= floor:
            kept.append(replace(sighting, best_score=score))
    ranked = best_first(kept)
    return by_time(ranked[:limit]), len(ranked) > limit
