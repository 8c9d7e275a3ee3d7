"""The search loop over small in-memory ports: deepening past filters and through ties."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest

from surveil.domain import SearchFilters, SearchQuery, StoredAppearance
from surveil.index.sharded import ShardedFaissIndex
from surveil.ports import Catalog, IndexHit, MemberVectors, VectorIndex
from surveil.search.by_example import SearchResult, search_by_example

T0 = datetime(2026, 1, 1, tzinfo=UTC)
GROUPS = {"person": ["person"]}


class MemoryIndex:
    """Brute-force inner product; counts calls so tests can see the search go deeper."""

    def __init__(self, ids: list[int], vectors: np.ndarray) -> None:
        self.ids, self.vectors, self.calls = np.array(ids), vectors, 0

    filters_inside = False

    def search(
        self,
        space: str,
        vector: np.ndarray,
        k: int,
        *,
        since: object = None,
        until: object = None,
        cameras: object = None,
        labels: object = None,
    ) -> list[IndexHit]:
        self.calls += 1
        scores = self.vectors @ vector
        order = np.argsort(-scores, kind="stable")[:k]
        return [IndexHit(int(self.ids[i]), float(scores[i])) for i in order]


class MemoryCatalog:
    """Appearances by id; each belongs to the track named by its track_id."""

    def __init__(
        self, rows: dict[int, StoredAppearance], vectors: dict[int, np.ndarray] | None = None
    ) -> None:
        self.rows, self.vectors = rows, vectors or {}

    def member_vectors(
        self, space: str, track_ids: Sequence[int], *, filters: SearchFilters | None = None
    ) -> MemberVectors:
        """Every member has its own vector, as in the catalog (NOT NULL embedding)."""
        members = [
            a for apps in self.track_members(track_ids, filters=filters).values() for a in apps
        ]
        return MemberVectors(
            tracks=np.array([a.track_id for a in members], np.int64),
            ids=np.array([a.id for a in members], np.int64),
            vectors=np.array([self.vectors[a.id] for a in members], np.float32).reshape(
                len(members), 2
            ),
        )

    def track_members(
        self, track_ids: Sequence[int], *, filters: SearchFilters | None = None
    ) -> dict[int, list[StoredAppearance]]:
        out: dict[int, list[StoredAppearance]] = {}
        for app in sorted(self.rows.values(), key=lambda a: (a.ts, a.id)):
            if app.track_id not in track_ids:
                continue
            if filters and filters.cameras and app.camera_id not in filters.cameras:
                continue
            out.setdefault(int(app.track_id or 0), []).append(app)
        return out


def appearance(
    app_id: int, camera: str, *, track: int | None = None, seconds: float | None = None
) -> StoredAppearance:
    return StoredAppearance(
        id=app_id,
        keyframe_id=app_id,
        camera_id=camera,
        ts=T0 + timedelta(seconds=app_id * 60 if seconds is None else seconds),
        frame_index=app_id,
        label="person",
        confidence=0.9,
        bbox=(0, 0, 1, 1),
        space="person",
        model_id="m",
        crop_path=f"{app_id}.jpg",
        track_id=app_id if track is None else track,
    )


def world(scores: list[float], cameras: list[str]) -> tuple[MemoryIndex, MemoryCatalog]:
    # Unit vectors at a chosen cosine to the query e0.
    vecs = np.array([[s, np.sqrt(1 - s * s)] for s in scores], np.float32)
    ids = list(range(1, len(scores) + 1))
    rows = {i: appearance(i, c) for i, c in zip(ids, cameras, strict=True)}
    return MemoryIndex(ids, vecs), MemoryCatalog(rows, dict(zip(ids, vecs, strict=True)))


def run(
    index: MemoryIndex, catalog: MemoryCatalog, filters: SearchFilters | None = None
) -> list[int]:
    query = SearchQuery(
        space="person",
        vector=np.array([1, 0], np.float32),
        filters=filters or SearchFilters(),
        limit=3,
    )
    # The loop calls search(), member_vectors() and track_members(): the doubles' all.
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


class FilteringIndex(MemoryIndex):
    """Applies camera filters before its cut, as Milvus does; records what it was asked."""

    filters_inside = True

    def __init__(self, ids: list[int], vectors: np.ndarray, cameras: list[str]) -> None:
        super().__init__(ids, vectors)
        self.cameras = cameras
        self.asked: list[tuple[int, object, object]] = []

    def search(
        self,
        space: str,
        vector: np.ndarray,
        k: int,
        *,
        since: object = None,
        until: object = None,
        cameras: object = None,
        labels: object = None,
    ) -> list[IndexHit]:
        self.asked.append((k, cameras, labels))
        hits = super().search(space, vector, len(self.ids))
        wanted = cast(frozenset[str], cameras)
        keep = [h for h in hits if not wanted or self.cameras[h.id - 1] in wanted]
        return keep[:k]


def test_an_index_that_filters_inside_is_asked_once_with_the_filters() -> None:
    """No over-fetch, no deeper round: the index already cut among passing tracks only.

    Labels reach it as their groups (the index keeps one label group per track).
    """
    scores = [0.99, 0.98, 0.97, 0.96, 0.95, 0.5, 0.4, 0.3]
    cams = ["a", "a", "a", "a", "a", "b", "b", "b"]
    plain, catalog = world(scores, cams)
    index = FilteringIndex(plain.ids.tolist(), plain.vectors, cams)
    filters = SearchFilters(cameras=frozenset({"b"}), labels=frozenset({"person"}))
    assert run(index, catalog, filters) == [6, 7, 8]
    # limit + 1: one past the cut shows whether the cut splits a tie.
    assert index.asked == [(4, frozenset({"b"}), frozenset({"person"}))]


def test_min_score_stops_the_search_early() -> None:
    index, catalog = world([0.9, 0.8, 0.2, 0.1], ["a", "b", "b", "b"])
    assert run(index, catalog, SearchFilters(cameras=frozenset({"b"}), min_score=0.5)) == [2]


def test_a_tie_at_the_cut_is_fetched_whole_and_broken_by_id() -> None:
    index, catalog = world([0.9, 0.7, 0.7, 0.7, 0.7], ["a"] * 5)
    assert run(index, catalog) == [1, 2, 3]
    assert index.calls >= 2  # the first round's k=3 cut through the 0.7 tie


def _result(
    index: MemoryIndex,
    catalog: MemoryCatalog,
    min_score: float,
    *,
    limit: int = 3,
    max_candidates: int = 1000,
) -> SearchResult:
    query = SearchQuery(
        space="person",
        vector=np.array([1, 0], np.float32),
        filters=SearchFilters(min_score=min_score),
        limit=limit,
    )
    return search_by_example(
        query,
        index=cast(VectorIndex, index),
        catalog=cast(Catalog, catalog),
        overfetch=2,
        max_candidates=max_candidates,
        label_groups=GROUPS,
    )


def test_a_result_cut_at_the_limit_says_so() -> None:
    index, catalog = world([0.9, 0.8, 0.7, 0.6, 0.5], ["a"] * 5)
    cut = _result(index, catalog, min_score=0.0)  # five matched, three returned
    assert (cut.truncated, cut.truncated_reason) == (True, "limit")
    whole = _result(index, catalog, min_score=0.75)  # only two matched: all returned
    assert (whole.truncated, whole.truncated_reason) == (False, None)


def test_a_search_stopped_at_max_candidates_says_so() -> None:
    """Every candidate at the deepest k still matched: more may lie deeper, though the
    sightings found fit the limit."""
    index, catalog = world([0.9, 0.8, 0.7, 0.6, 0.5], ["a"] * 5)
    cut = _result(index, catalog, min_score=0.0, limit=4, max_candidates=4)
    assert len(cut.sightings) == 4
    assert (cut.truncated, cut.truncated_reason) == (True, "max_candidates")
    whole = _result(index, catalog, min_score=0.0, limit=4, max_candidates=8)
    assert (whole.truncated, whole.truncated_reason) == (True, "limit")  # found the fifth
    deep = _result(index, catalog, min_score=0.0, limit=5, max_candidates=8)
    assert (deep.truncated, deep.truncated_reason) == (False, None)


def test_the_search_times_its_own_stages() -> None:
    index, catalog = world([0.9, 0.8, 0.7, 0.6, 0.5], ["a"] * 5)
    timings = _result(index, catalog, min_score=0.0).timings
    assert timings.index > 0 and timings.hydrate > 0 and timings.group > 0
    assert timings.embed == 0 and timings.audit == 0  # the callers' stages, not the loop's
    assert timings.rerank == 0  # off unless asked
    assert list(timings.ms()) == ["embed", "index", "hydrate", "rerank", "group", "audit"]


def test_a_track_is_one_sighting_with_its_members_in_time_order() -> None:
    """Two people through one camera seconds apart stay two sightings: tracks never merge."""
    rows = {
        11: appearance(11, "a", track=1, seconds=4),
        10: appearance(10, "a", track=1, seconds=0),
        12: appearance(12, "a", track=2, seconds=6),  # a stranger 2 s after
    }
    vecs = np.array([[0.9, np.sqrt(1 - 0.81)], [0.6, 0.8]], np.float32)
    own = {10: vecs[0], 11: vecs[0], 12: vecs[1]}  # each member as its track's mean
    index, catalog = MemoryIndex([1, 2], vecs), MemoryCatalog(rows, own)
    query = SearchQuery(space="person", vector=np.array([1, 0], np.float32), limit=5)
    result = search_by_example(
        query,
        index=cast(VectorIndex, index),
        catalog=cast(Catalog, catalog),
        overfetch=1,
        max_candidates=1000,
        label_groups=GROUPS,
    )
    assert [s.track_id for s in result.sightings] == [1, 2]
    first, second = result.sightings
    assert [h.appearance.id for h in first.hits] == [10, 11]
    assert first.best_score == pytest.approx(0.9) and second.best_score == pytest.approx(0.6)
    assert (first.first_seen, first.last_seen) == (T0, T0 + timedelta(seconds=4))


def test_each_member_gets_its_own_score_and_the_best_member_lifts_its_track() -> None:
    """The example is one stored crop: its member scores ~1 though the pooled vector less."""
    rows = {
        20: appearance(20, "a", track=1, seconds=0),
        21: appearance(21, "a", track=1, seconds=1),
        22: appearance(22, "a", track=2, seconds=9),
    }
    own = {20: np.array([1.0, 0.0]), 21: np.array([0.6, 0.8]), 22: np.array([0.9, 0.436])}
    pooled = np.array([[0.9, 0.436], [0.9, 0.436]], np.float32)
    index = MemoryIndex([1, 2], pooled)
    catalog = MemoryCatalog(rows, {k: v.astype(np.float32) for k, v in own.items()})
    query = SearchQuery(space="person", vector=np.array([1, 0], np.float32), limit=5)
    result = search_by_example(
        query,
        index=cast(VectorIndex, index),
        catalog=cast(Catalog, catalog),
        overfetch=1,
        max_candidates=1000,
        label_groups=GROUPS,
    )
    first, second = result.sightings
    assert [round(h.score, 2) for h in first.hits] == [1.0, 0.6]
    assert first.best_score == pytest.approx(1.0) and second.best_score == pytest.approx(0.9)


def test_a_track_just_under_the_floor_is_kept_when_a_member_reaches_it() -> None:
    """A crop from one end of a long track is far from its mean: its members decide."""
    rows = {30: appearance(30, "a", track=1, seconds=0), 31: appearance(31, "a", track=1)}
    own = {30: np.array([0.95, 0.312], np.float32), 31: np.array([0.2, 0.98], np.float32)}
    index = MemoryIndex([1], np.array([[0.6, 0.8]], np.float32))
    catalog = MemoryCatalog(rows, own)

    def found(margin: float) -> list[int | None]:
        query = SearchQuery(
            space="person",
            vector=np.array([1, 0], np.float32),
            filters=SearchFilters(min_score=0.7),
            limit=5,
        )
        result = search_by_example(
            query,
            index=cast(VectorIndex, index),
            catalog=cast(Catalog, catalog),
            overfetch=1,
            max_candidates=1000,
            label_groups=GROUPS,
            refine_margin=margin,
        )
        return [s.track_id for s in result.sightings]

    assert found(0.0) == [] and found(0.2) == [1]


class CountingFaissIndex(ShardedFaissIndex):
    """The real sharded FAISS index, counting the questions the search loop asks it."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.knn_calls = 0
        self.above_calls = 0

    def search(self, *args: Any, **kwargs: Any) -> list[IndexHit]:
        self.knn_calls += 1
        return super().search(*args, **kwargs)

    def search_above(self, *args: Any, **kwargs: Any) -> list[IndexHit]:
        self.above_calls += 1
        return super().search_above(*args, **kwargs)


def test_a_deeper_round_with_a_floor_is_one_search_above_not_repeated_searches(
    tmp_path: Path,
) -> None:
    """With min_score, going deeper asks the index once for everything at the floor and
    takes deeper slices of that; the matches are those an exhaustive search finds."""
    scores = [0.99, 0.98, 0.97, 0.96, 0.95, 0.94, 0.93, 0.92, 0.91, 0.9]
    scores += [0.89, 0.88, 0.87, 0.86, 0.85, 0.8, 0.75, 0.72, 0.3, 0.2]
    cams = ["a"] * 15 + ["b"] * 5
    plain, catalog = world(scores, cams)
    index = CountingFaissIndex(tmp_path / "index")
    index.add("person", plain.ids.astype(np.int64), plain.vectors, [T0.date()] * len(scores))
    filters = SearchFilters(cameras=frozenset({"b"}), min_score=0.7)
    assert run(cast(MemoryIndex, index), catalog, filters) == [16, 17, 18]
    # k=3 found only camera a; k=12, k=48 would each have searched again.
    assert (index.knn_calls, index.above_calls) == (1, 1)
