"""The VectorIndex port's contract, run against every adapter: FAISS shards and Milvus.

Each adapter is built the way `surveil` builds it (`container.open_index` from
settings); Milvus is a real Milvus Lite gRPC server process (tests/milvus_server.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from conftest import SettingsFactory

from surveil.container import open_index
from surveil.domain import ConfigError, Space, Vectors
from surveil.ingest.tracks import index_tracks
from surveil.ports import IndexedTrack, VectorIndex, VectorMeta

DIM = 16
DAY1, DAY2, DAY3 = date(2024, 5, 1), date(2024, 5, 2), date(2024, 5, 3)
DAYS = [DAY1] * 10 + [DAY2] * 10 + [DAY3] * 10
IDS = np.arange(100, 130, dtype=np.int64)
SPACE: Space = "person"


def unit_vectors(n: int, dim: int = DIM, seed: int = 0) -> Vectors:
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    out: Vectors = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def at(day: date, hour: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def meta_for(i: int, day: date) -> VectorMeta:
    """Camera cam0/cam1/cam2 by id, label person for even ids and bag for odd, an hour long."""
    start = at(day, i % 20)
    label = "person" if i % 2 == 0 else "bag"
    return VectorMeta(f"cam{i % 3}", label, start, start + timedelta(minutes=30))


META = [meta_for(int(i), d) for i, d in zip(IDS, DAYS, strict=True)]


@pytest.fixture(params=["faiss", "milvus"])
def index(request: pytest.FixtureRequest, make_settings: SettingsFactory) -> Iterator[VectorIndex]:
    """An empty index of each backend, built from settings as surveil builds it."""
    if request.param == "milvus":
        uri = request.getfixturevalue("milvus_uri")
        prefix = request.getfixturevalue("milvus_prefix")
        settings = make_settings(
            **{
                "index.backend": "milvus",
                "index.milvus.uri": uri,
                "index.milvus.collection_prefix": prefix,
            }
        )
    else:
        settings = make_settings()
    built = open_index(settings)
    yield built
    close = getattr(built, "close", None)
    if callable(close):
        close()


@pytest.fixture
def vectors() -> Vectors:
    return unit_vectors(30)


@pytest.fixture
def filled(index: VectorIndex, vectors: Vectors) -> VectorIndex:
    """30 vectors, ids 100..129, ten per day over three days, with their filter fields."""
    index.add(SPACE, IDS, vectors, DAYS, meta=META)
    index.save()
    return index


def test_search_finds_itself_first_with_exact_cosines(
    filled: VectorIndex, vectors: Vectors
) -> None:
    hits = filled.search(SPACE, vectors[7], 5)
    assert hits[0].id == 107
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    expected = vectors @ vectors[7]
    assert [h.id for h in hits] == [int(IDS[i]) for i in np.argsort(-expected)[:5]]
    for hit in hits:
        assert hit.score == pytest.approx(float(expected[hit.id - 100]), abs=1e-5)


def test_search_above_returns_every_id_at_or_above_the_score_best_first(
    filled: VectorIndex, vectors: Vectors
) -> None:
    """Exactly the ids scoring >= min_score (exact cosines), best first; `limit` keeps the
    best; a time window keeps to its days; an empty space answers nothing."""
    scores = vectors @ vectors[4]
    ranked = np.sort(scores)
    floor = float(ranked[-12] + ranked[-13]) / 2  # twelve ids reach it (itself included)
    expected = [int(IDS[i]) for i in np.argsort(-scores)[:12]]
    hits = filled.search_above(SPACE, vectors[4], floor, 100)
    assert [h.id for h in hits] == expected
    for hit in hits:
        assert hit.score == pytest.approx(float(scores[hit.id - 100]), abs=1e-5)
    assert [h.id for h in filled.search_above(SPACE, vectors[4], floor, 5)] == expected[:5]
    in_day2 = filled.search_above(SPACE, vectors[4], floor, 100, since=at(DAY2), until=at(DAY2, 23))
    assert {h.id for h in in_day2} == {i for i in expected if 110 <= i < 120}
    assert filled.search_above("general", vectors[4], floor, 100) == []


def test_an_unknown_space_is_empty_not_an_error(index: VectorIndex, vectors: Vectors) -> None:
    assert index.search("general", vectors[0], 5) == []
    assert index.size("general") == 0
    assert index.counts_by_day("general") == {}
    assert index.ids_by_day("general") == {}
    assert index.remove("general", IDS[:3]) == 0
    assert index.drop_shard("general", DAY1) is False


def test_sizes_ids_and_counts_by_day(filled: VectorIndex) -> None:
    assert filled.size(SPACE) == 30
    assert filled.counts_by_day(SPACE) == {DAY1: 10, DAY2: 10, DAY3: 10}
    by_day = filled.ids_by_day(SPACE)
    assert sorted(by_day) == [DAY1, DAY2, DAY3]
    assert by_day[DAY2].tolist() == list(range(110, 120))
    only = filled.ids_by_day(SPACE, days={DAY3})
    assert list(only) == [DAY3] and only[DAY3].tolist() == list(range(120, 130))


def test_remove_counts_only_what_was_there_and_respects_days(
    filled: VectorIndex, vectors: Vectors
) -> None:
    assert filled.remove(SPACE, np.array([100, 101, 999], np.int64)) == 2
    # 115 lies on DAY2: asked on DAY1 only, it stays.
    assert filled.remove(SPACE, np.array([102, 115], np.int64), days={DAY1}) == 1
    assert filled.size(SPACE) == 27
    assert 115 in filled.ids_by_day(SPACE)[DAY2].tolist()
    assert all(h.id not in (100, 101, 102) for h in filled.search(SPACE, vectors[0], 30))


def test_drop_shard_forgets_a_whole_day(filled: VectorIndex) -> None:
    assert filled.drop_shard(SPACE, DAY2) is True
    assert filled.drop_shard(SPACE, DAY2) is False
    filled.save()
    assert filled.counts_by_day(SPACE) == {DAY1: 10, DAY3: 10}


def test_time_window_search_keeps_to_the_window(filled: VectorIndex, vectors: Vectors) -> None:
    hits = filled.search(SPACE, vectors[0], 30, since=at(DAY2), until=at(DAY2, 23))
    assert sorted(h.id for h in hits) == list(range(110, 120))


def test_growing_tracks_are_replaced_not_duplicated(filled: VectorIndex, vectors: Vectors) -> None:
    """The ingest path (index_tracks) re-indexes a track whose pooled vector moved."""
    moved = unit_vectors(1, seed=9)[0]
    index_tracks(filled, [IndexedTrack(105, SPACE, DAY1, moved, META[5])])
    filled.save()
    assert filled.size(SPACE) == 30
    hit = filled.search(SPACE, moved, 1)[0]
    assert hit.id == 105 and hit.score == pytest.approx(1.0, abs=1e-5)
    assert 105 not in [h.id for h in filled.search(SPACE, vectors[5], 30) if h.score > 0.999]


def test_saved_at_covers_every_written_day(index: VectorIndex, vectors: Vectors) -> None:
    before = datetime.now(UTC) - timedelta(seconds=2)  # coarse file clocks
    index.add(SPACE, IDS, vectors, DAYS, meta=META)
    index.save()
    saved = index.saved_at(SPACE)
    assert sorted(saved) == [DAY1, DAY2, DAY3]
    assert all(ts >= before for ts in saved.values())


def test_another_dimension_is_refused_with_the_fix(filled: VectorIndex) -> None:
    wrong = unit_vectors(1, dim=DIM * 2)
    with pytest.raises(ConfigError, match="index rebuild"):
        filled.add(SPACE, np.array([500], np.int64), wrong, [DAY1], meta=[META[0]])


def test_camera_and_label_filters(filled: VectorIndex, vectors: Vectors) -> None:
    """Inside the search where the index says so (k hits all passing); else ignored."""
    wanted = {"cam1"}
    hits = filled.search(SPACE, vectors[0], 5, cameras=wanted, labels={"person"})
    if not filled.filters_inside:
        assert [h.id for h in hits] == [h.id for h in filled.search(SPACE, vectors[0], 5)]
        return
    passing = [i for i, m in enumerate(META) if m.camera_id == "cam1" and m.label == "person"]
    scores = vectors[passing] @ vectors[0]
    expected = [int(IDS[passing[j]]) for j in np.argsort(-scores)[:5]]
    assert [h.id for h in hits] == expected  # the 5 best passing, not the passing of a top 5


def test_all_filters_together_inside_the_search(filled: VectorIndex, vectors: Vectors) -> None:
    if not filled.filters_inside:
        pytest.skip("this index filters cameras and labels after the search (FAISS)")
    hits = filled.search(
        SPACE, vectors[0], 30, since=at(DAY3), cameras={"cam0", "cam2"}, labels={"bag"}
    )
    expected = {
        int(i)
        for i, m in zip(IDS, META, strict=True)
        if m.camera_id in ("cam0", "cam2") and m.label == "bag" and m.last_ts >= at(DAY3)
    }
    assert expected and {h.id for h in hits} == expected


def test_an_unreachable_milvus_is_a_clear_error_without_the_token(
    make_settings: SettingsFactory,
) -> None:
    from streams import free_port

    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings = make_settings(
        **{
            "index.backend": "milvus",
            "index.milvus.uri": uri,
            "index.milvus.token": "root:hush-hush",
            "index.milvus.timeout_seconds": 2,
        }
    )
    with pytest.raises(ConfigError) as caught:
        open_index(settings)
    message = str(caught.value)
    assert uri in message and "index.milvus.uri" in message
    assert "hush-hush" not in message


def test_counts_after_saved_at_see_a_write_made_in_between(
    filled: VectorIndex, vectors: Vectors
) -> None:
    """Reconcile reads saved_at then counts_by_day; a write between must show in the counts."""
    assert sum(filled.counts_by_day(SPACE).values()) == 30
    filled.saved_at(SPACE)
    assert filled.counts_by_day(SPACE) == {DAY1: 10, DAY2: 10, DAY3: 10}
    filled.saved_at(SPACE)
    filled.add(SPACE, np.array([900], np.int64), vectors[:1], [DAY3], meta=[META[0]])
    filled.save()
    assert filled.counts_by_day(SPACE) == {DAY1: 10, DAY2: 10, DAY3: 11}
    filled.saved_at(SPACE)
    assert filled.remove(SPACE, np.array([900, 100], np.int64)) == 2
    assert filled.counts_by_day(SPACE) == {DAY1: 9, DAY2: 10, DAY3: 10}
