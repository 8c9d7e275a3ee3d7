"""The search loop over small in-memory ports: deepening past filters and through ties."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import cast

import numpy as np

from surveil.domain import SearchFilters, SearchQuery, StoredAppearance
from surveil.ports import Catalog, IndexHit, VectorIndex
from surveil.search.by_example import search_by_example

T0 = datetime(2026, 1, 1, tzinfo=UTC)
GROUPS = {"person": ["person"]}


class MemoryIndex:
    """Brute-force inner product; counts calls so tests can see the search go deeper."""

    def __init__(self, ids: list[int], vectors: np.ndarray) -> None:
        self.ids, self.vectors, self.calls = np.array(ids), vectors, 0

    def search(
        self, space: str, vector: np.ndarray, k: int, *, since: object = None, until: object = None
    ) -> list[IndexHit]:
        self.calls += 1
        scores = self.vectors @ vector
        order = np.argsort(-scores, kind="stable")[:k]
        return [IndexHit(int(self.ids[i]), float(scores[i])) for i in order]


class MemoryCatalog:
    def __init__(self, rows: dict[int, StoredAppearance]) -> None:
        self.rows = rows

    def appearances(
        self, ids: Sequence[int], *, filters: SearchFilters | None = None
    ) -> list[StoredAppearance]:
        out = [self.rows[i] for i in ids if i in self.rows]
        if filters and filters.cameras:
            out = [a for a in out if a.camera_id in filters.cameras]
        return out


def appearance(app_id: int, camera: str) -> StoredAppearance:
    return StoredAppearance(
        id=app_id,
        keyframe_id=app_id,
        camera_id=camera,
        ts=T0 + timedelta(seconds=app_id * 60),
        frame_index=app_id,
        label="person",
        confidence=0.9,
        bbox=(0, 0, 1, 1),
        space="person",
        model_id="m",
        crop_path=f"{app_id}.jpg",
    )


def world(scores: list[float], cameras: list[str]) -> tuple[MemoryIndex, MemoryCatalog]:
    # Unit vectors at a chosen cosine to the query e0.
    vecs = np.array([[s, np.sqrt(1 - s * s)] for s in scores], np.float32)
    ids = list(range(1, len(scores) + 1))
    rows = {i: appearance(i, c) for i, c in zip(ids, cameras, strict=True)}
    return MemoryIndex(ids, vecs), MemoryCatalog(rows)


def run(
    index: MemoryIndex, catalog: MemoryCatalog, filters: SearchFilters | None = None
) -> list[int]:
    query = SearchQuery(
        space="person",
        vector=np.array([1, 0], np.float32),
        filters=filters or SearchFilters(),
        limit=3,
    )
    # The loop only calls search() and appearances(); the doubles implement just those.
    result = search_by_example(
        query,
        index=cast(VectorIndex, index),
        catalog=cast(Catalog, catalog),
        overfetch=1,
        max_candidates=1000,
        label_groups=GROUPS,
    )
    return sorted(h.appearance.id for s in result.sightings for h in s.hits)


def test_filtered_search_goes_deeper_instead_of_losing_matches() -> None:
    scores = [0.99, 0.98, 0.97, 0.96, 0.95, 0.5, 0.4, 0.3]
    cams = ["a", "a", "a", "a", "a", "b", "b", "b"]
    index, catalog = world(scores, cams)
    assert run(index, catalog, SearchFilters(cameras=frozenset({"b"}))) == [6, 7, 8]
    assert index.calls >= 2


def test_min_score_stops_the_search_early() -> None:
    index, catalog = world([0.9, 0.8, 0.2, 0.1], ["a", "b", "b", "b"])
    assert run(index, catalog, SearchFilters(cameras=frozenset({"b"}), min_score=0.5)) == [2]


def test_a_tie_at_the_cut_is_fetched_whole_and_broken_by_id() -> None:
    index, catalog = world([0.9, 0.7, 0.7, 0.7, 0.7], ["a"] * 5)
    assert run(index, catalog) == [1, 2, 3]
    assert index.calls >= 2  # the first round's k=3 cut through the 0.7 tie


def _result(index: MemoryIndex, catalog: MemoryCatalog, min_score: float) -> bool:
    query = SearchQuery(
        space="person",
        vector=np.array([1, 0], np.float32),
        filters=SearchFilters(min_score=min_score),
        limit=3,
    )
    result = search_by_example(
        query,
        index=cast(VectorIndex, index),
        catalog=cast(Catalog, catalog),
        overfetch=2,
        max_candidates=1000,
        label_groups=GROUPS,
    )
    return result.truncated


def test_a_result_cut_at_the_limit_says_so() -> None:
    index, catalog = world([0.9, 0.8, 0.7, 0.6, 0.5], ["a"] * 5)
    assert _result(index, catalog, min_score=0.0) is True  # five matched, three returned
    assert _result(index, catalog, min_score=0.75) is False  # only two matched: all returned
