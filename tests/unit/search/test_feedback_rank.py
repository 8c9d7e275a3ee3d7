"""Re-ranking with feedback as pure functions: fusion by max, the rejected-hit penalty."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from surveil.domain import Sighting
from surveil.search.by_example import SearchResult
from surveil.search.feedback_rank import fuse_max, mean_query, penalty, rerank

T = datetime(2026, 1, 1, tzinfo=UTC)


def _s(track: int, score: float) -> Sighting:
    return Sighting("cam", "person", T, T, score, (), track_id=track)


def _result(*pairs: tuple[int, float]) -> SearchResult:
    return SearchResult([_s(t, s) for t, s in pairs], candidates=len(pairs), rounds=1, seconds=0.0)


def test_fusion_keeps_each_tracks_best_score_over_the_examples() -> None:
    fused = fuse_max([_result((1, 0.9), (2, 0.5)), _result((2, 0.8), (3, 0.7))])
    assert {t: s.best_score for t, s in fused.items()} == {1: 0.9, 2: 0.8, 3: 0.7}


def test_mean_query_is_the_renormalised_mean() -> None:
    q = mean_query(np.array([[1, 0], [0, 1]], np.float32))
    assert q == pytest.approx([2**-0.5, 2**-0.5]) and q.dtype == np.float32


def test_penalty_only_for_tracks_closer_to_a_rejected_hit_than_to_the_query() -> None:
    assert penalty(0.8, 0.6, 1.0) == 0.0
    assert penalty(0.6, 0.9, 1.0) == pytest.approx(0.3)
    assert penalty(0.6, 0.9, 0.5) == pytest.approx(0.15)


def test_rerank_drops_rejected_and_pushes_near_duplicates_under_the_floor() -> None:
    e = np.eye(3, dtype=np.float32)
    found = {1: _s(1, 0.9), 2: _s(2, 0.7), 3: _s(3, 0.65), 4: _s(4, 0.8)}
    vectors = {1: e[0], 2: e[1], 3: (e[1] + e[2]) / np.sqrt(2), 4: e[2]}
    shown, cut = rerank(
        found,
        track_vectors=vectors,
        rejected=e[1:2],  # track 2's vector: track 3 is its near-duplicate
        rejected_tracks={2},
        floor=0.5,
        weight=1.0,
        limit=10,
    )
    scores = {s.track_id: round(s.best_score, 3) for s in shown}
    assert scores == {1: 0.9, 3: round(0.65 - (2**-0.5 - 0.65), 3), 4: 0.8} and not cut
    shown, cut = rerank(
        found,
        track_vectors=vectors,
        rejected=e[1:2],
        rejected_tracks={2},
        floor=0.62,
        weight=1.0,
        limit=1,
    )
    assert [s.track_id for s in shown] == [1] and cut  # 3 fell under the floor, 4 over the limit
