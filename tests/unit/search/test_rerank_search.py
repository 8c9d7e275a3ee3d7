"""Re-ranking inside the search loop, on the hand-built example of test_rerank.py.

The candidates are tracks with one member each; the index and catalog are small
in-memory ports (the real catalog's `track_vectors` is tested on SQLite and PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import cast

import numpy as np
from rerank_example import GALLERY, K1, TRUE, on_circle

from surveil.domain import SearchFilters, SearchQuery, StoredAppearance
from surveil.ports import Catalog, IndexHit, MemberVectors, VectorIndex
from surveil.search.by_example import SearchResult, search_by_example
from surveil.search.rerank import RerankParams

T0 = datetime(2026, 1, 1, tzinfo=UTC)
IDS = list(range(1, len(GALLERY) + 1))  # track id = appearance id = gallery row + 1
VECTORS = on_circle(*GALLERY)


class Tracks:
    """Index and catalog at once: one pooled vector per track, equal to its one member's."""

    filters_inside = False

    def search(self, space: str, vector: np.ndarray, k: int, **_: object) -> list[IndexHit]:
        scores = VECTORS @ vector
        order = np.argsort(-scores, kind="stable")[:k]
        return [IndexHit(IDS[i], float(scores[i])) for i in order]

    def member_vectors(
        self, space: str, track_ids: Sequence[int], *, filters: SearchFilters | None = None
    ) -> MemberVectors:
        ids = np.array(sorted(track_ids), np.int64)
        return MemberVectors(tracks=ids, ids=ids, vectors=VECTORS[ids - 1])

    def track_vectors(self, space: str, track_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        ids = np.array(sorted(track_ids), np.int64)
        return ids, VECTORS[ids - 1]

    def track_members(
        self, track_ids: Sequence[int], *, filters: SearchFilters | None = None
    ) -> dict[int, list[StoredAppearance]]:
        return {t: [_member(t)] for t in track_ids}


def _member(track: int) -> StoredAppearance:
    return StoredAppearance(
        id=track,
        keyframe_id=track,
        camera_id="a",
        ts=T0 + timedelta(seconds=track),
        frame_index=track,
        label="person",
        confidence=0.9,
        bbox=(0, 0, 1, 1),
        space="person",
        model_id="m",
        crop_path=f"{track}.jpg",
        track_id=track,
    )


def _search(limit: int, rerank: RerankParams | None) -> SearchResult:
    query = SearchQuery(
        space="person",
        vector=on_circle(0.0)[0],
        filters=SearchFilters(min_score=-1.0),
        limit=limit,
    )
    tracks = Tracks()
    return search_by_example(
        query,
        index=cast(VectorIndex, tracks),
        catalog=cast(Catalog, tracks),
        overfetch=4,
        max_candidates=1000,
        label_groups={"person": ["person"]},
        rerank=rerank,
    )


PARAMS = RerankParams(k1=K1, k2=1, lam=0.3, depth=50)
TRUE_TRACK = GALLERY.index(TRUE) + 1


def test_re_ranking_decides_which_track_fills_the_limit() -> None:
    plain, reranked = _search(1, None), _search(1, PARAMS)
    assert [s.track_id for s in plain.sightings] == [1]  # the nearest look-alike
    assert [s.track_id for s in reranked.sightings] == [TRUE_TRACK]  # the reciprocal match
    assert reranked.truncated_reason == "limit"
    # The score shown is still the cosine similarity, not the re-ranking distance.
    assert reranked.sightings[0].best_score == float(VECTORS[TRUE_TRACK - 1] @ on_circle(0.0)[0])
    assert reranked.timings.rerank > 0 and plain.timings.rerank == 0


def test_nothing_cut_means_the_same_sightings() -> None:
    plain, reranked = _search(50, None), _search(50, PARAMS)
    assert not plain.truncated and not reranked.truncated
    assert plain.sightings == reranked.sightings  # by time, with the same scores
