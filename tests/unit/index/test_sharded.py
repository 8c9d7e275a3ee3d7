"""ShardedFaissIndex against real FAISS: search, removal, shards on disk, atomic saves."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from surveil.domain import ConfigError, Vectors
from surveil.index import factory as fx
from surveil.index.sharded import UNSHARDED_DAY, IndexMismatchError, ShardedFaissIndex
from surveil.ports import Ids

DIM = 16
DAY1, DAY2, DAY3 = date(2024, 5, 1), date(2024, 5, 2), date(2024, 5, 3)


def unit_vectors(n: int, dim: int = DIM, seed: int = 0) -> Vectors:
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, dim)).astype(np.float32)
    out: Vectors = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def ids_of(*values: int) -> Ids:
    return np.array(values, dtype=np.int64)


def at(day: date, hour: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


@pytest.fixture
def vectors() -> Vectors:
    return unit_vectors(30)


@pytest.fixture
def filled(tmp_path: Path, vectors: Vectors) -> ShardedFaissIndex:
    """30 vectors, ids 100..129, ten per day over three days."""
    index = ShardedFaissIndex(tmp_path / "idx")
    days = [DAY1] * 10 + [DAY2] * 10 + [DAY3] * 10
    index.add("person", np.arange(100, 130, dtype=np.int64), vectors, days)
    return index


def test_search_finds_itself_first_with_cosine_scores(
    filled: ShardedFaissIndex, vectors: Vectors
) -> None:
    hits = filled.search("person", vectors[7], 5)
    assert hits[0].id == 107
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    expected = vectors @ vectors[7]
    for hit in hits:
        assert hit.score == pytest.approx(float(expected[hit.id - 100]), abs=1e-5)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_search_merges_shards_exactly_like_one_flat_scan(
    filled: ShardedFaissIndex, vectors: Vectors
) -> None:
    query = unit_vectors(1, seed=9)[0]
    want = np.argsort(-(vectors @ query))[:12] + 100
    assert [h.id for h in filled.search("person", query, 12)] == want.tolist()


def test_k_larger_than_size_returns_everything_without_padding(
    filled: ShardedFaissIndex, vectors: Vectors
) -> None:
    hits = filled.search("person", vectors[0], 1000)
    assert len(hits) == 30
    assert {h.id for h in hits} == set(range(100, 130))


def test_empty_index_and_unknown_space_search_return_nothing(tmp_path: Path) -> None:
    index = ShardedFaissIndex(tmp_path / "idx")
    assert index.search("person", unit_vectors(1)[0], 10) == []
    assert index.size("general") == 0
    assert index.ids_by_day("general") == {}


def test_time_window_touches_only_overlapping_shards(
    filled: ShardedFaissIndex, tmp_path: Path, vectors: Vectors
) -> None:
    filled.save()
    reopened = ShardedFaissIndex(tmp_path / "idx")
    assert reopened.shard_days("person") == [DAY1, DAY2, DAY3]
    assert reopened.loaded_days("person") == []

    hits = reopened.search("person", vectors[15], 30, since=at(DAY2, 3), until=at(DAY2, 20))

    assert {h.id for h in hits} == set(range(110, 120))
    assert reopened.loaded_days("person") == [DAY2]


def test_open_ended_windows(filled: ShardedFaissIndex, vectors: Vectors) -> None:
    later = filled.search("person", vectors[0], 30, since=at(DAY2, 12))
    assert {h.id for h in later} == set(range(110, 130))
    earlier = filled.search("person", vectors[0], 30, until=at(DAY1, 23))
    assert {h.id for h in earlier} == set(range(100, 110))
    # A window given in another timezone is judged by its UTC day (local 04:00 on May 3).
    local = datetime(2024, 5, 2, 23, tzinfo=UTC).astimezone(timezone(timedelta(hours=5)))
    hits = filled.search("person", vectors[0], 30, since=local, until=local)
    assert {h.id for h in hits} == set(range(110, 120))


def test_remove_counts_and_hides_ids(filled: ShardedFaissIndex, vectors: Vectors) -> None:
    assert filled.remove("person", ids_of(105, 125, 999)) == 2
    assert filled.size("person") == 28
    found = {h.id for h in filled.search("person", vectors[5], 30)}
    assert 105 not in found and 125 not in found
    assert filled.remove("person", ids_of()) == 0


def test_ids_by_day_lists_each_shard(filled: ShardedFaissIndex) -> None:
    by_day = filled.ids_by_day("person")
    assert sorted(by_day) == [DAY1, DAY2, DAY3]
    assert sorted(by_day[DAY2].tolist()) == list(range(110, 120))
    assert by_day[DAY1].dtype == np.int64


def test_save_load_round_trip(filled: ShardedFaissIndex, tmp_path: Path, vectors: Vectors) -> None:
    before = filled.search("person", vectors[3], 10)
    filled.save()
    files = sorted(p.name for p in (tmp_path / "idx" / "person").iterdir())
    assert files == ["2024-05-01.faiss", "2024-05-02.faiss", "2024-05-03.faiss", "manifest.json"]

    reopened = ShardedFaissIndex(tmp_path / "idx")
    assert reopened.search("person", vectors[3], 10) == before
    assert reopened.size("person") == 30


def test_save_writes_only_dirty_shards_and_deletes_emptied_ones(
    filled: ShardedFaissIndex, tmp_path: Path
) -> None:
    filled.save()
    folder = tmp_path / "idx" / "person"
    mtimes = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    filled.remove("person", np.arange(100, 110, dtype=np.int64))  # empties DAY1
    filled.remove("person", ids_of(115))
    filled.save()
    assert not (folder / "2024-05-01.faiss").exists()
    assert (folder / "2024-05-03.faiss").stat().st_mtime_ns == mtimes["2024-05-03.faiss"]
    assert ShardedFaissIndex(tmp_path / "idx").size("person") == 19


def test_crash_leftover_temp_file_is_ignored_and_cleaned(
    filled: ShardedFaissIndex, tmp_path: Path, vectors: Vectors
) -> None:
    filled.save()
    folder = tmp_path / "idx" / "person"
    good = (folder / "2024-05-02.faiss").read_bytes()
    leftover = folder / ".2024-05-02.faiss.tmp-4242-deadbeef"
    leftover.write_bytes(good[: len(good) // 2])  # a write that died half-way

    reopened = ShardedFaissIndex(tmp_path / "idx")
    assert reopened.size("person") == 30
    assert not leftover.exists()
    assert (folder / "2024-05-02.faiss").read_bytes() == good


def test_failed_write_leaves_existing_file_intact(
    filled: ShardedFaissIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    filled.save()
    folder = tmp_path / "idx" / "person"
    good = (folder / "2024-05-01.faiss").read_bytes()
    filled.remove("person", ids_of(100))

    def crash(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("surveil.files.os.fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        filled.save()
    assert (folder / "2024-05-01.faiss").read_bytes() == good
    assert sorted(p.name for p in folder.iterdir())[0] == "2024-05-01.faiss"
    assert all(".tmp-" not in p.name for p in folder.iterdir())


def test_dimension_mismatch_says_rebuild(filled: ShardedFaissIndex, tmp_path: Path) -> None:
    with pytest.raises(IndexMismatchError, match="surveil index rebuild"):
        filled.add("person", ids_of(1), unit_vectors(1, dim=8), [DAY1])
    filled.save()
    reopened = ShardedFaissIndex(tmp_path / "idx")  # the dimension is read back from disk
    with pytest.raises(IndexMismatchError, match="16-d"):
        reopened.search("person", unit_vectors(1, dim=8)[0], 3)
    # Another space has its own model and dimension.
    reopened.add("general", ids_of(1), unit_vectors(1, dim=8), [DAY1])


def test_drop_shard_is_a_file_delete(filled: ShardedFaissIndex, tmp_path: Path) -> None:
    filled.save()
    assert filled.drop_shard("person", DAY1) is True
    assert not (tmp_path / "idx" / "person" / "2024-05-01.faiss").exists()
    assert filled.drop_shard("person", DAY1) is False
    assert ShardedFaissIndex(tmp_path / "idx").size("person") == 20


def test_unsharded_keeps_one_file(tmp_path: Path, vectors: Vectors) -> None:
    index = ShardedFaissIndex(tmp_path / "idx", shard_by="none")
    index.add("general", np.arange(30, dtype=np.int64), vectors, [DAY1] * 15 + [DAY3] * 15)
    index.save()
    files = sorted(p.name for p in (tmp_path / "idx" / "general").iterdir())
    assert files == ["all.faiss", "manifest.json"]
    assert list(index.ids_by_day("general")) == [UNSHARDED_DAY]
    # No day shards to prune: the window is the catalog's job, the index returns candidates.
    assert len(index.search("general", vectors[0], 50, since=at(DAY3))) == 30


def test_add_rejects_misaligned_batches(tmp_path: Path) -> None:
    index = ShardedFaissIndex(tmp_path / "idx")
    with pytest.raises(ValueError, match="matching"):
        index.add("person", ids_of(1, 2), unit_vectors(2), [DAY1])


def test_unknown_factory_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SURVEIL_INDEX__FACTORY"):
        ShardedFaissIndex(tmp_path, factory="PQ16")


def test_ivf_shard_trains_once_big_enough_and_still_removes(tmp_path: Path) -> None:
    factory = "IVF4,Flat"
    index = ShardedFaissIndex(tmp_path / "idx", factory=factory)
    data = unit_vectors(400, seed=3)
    index.add("person", np.arange(100, dtype=np.int64), data[:100], [DAY1] * 100)
    shard = index._shards["person"]["2024-05-01"].index
    assert not fx.is_final(shard, factory)  # 100 < 4 * 39 training points: still Flat
    index.add("person", np.arange(100, 400, dtype=np.int64), data[100:], [DAY1] * 300)
    assert fx.is_final(index._shards["person"]["2024-05-01"].index, factory)
    assert index.search("person", data[250], 1)[0].id == 250
    assert index.remove("person", ids_of(250, 3)) == 2
    index.save()
    reopened = ShardedFaissIndex(tmp_path / "idx", factory=factory)
    assert reopened.size("person") == 398
    for i in (0, 7, 99, 100, 249, 251, 399):  # ids still point at their own vectors
        assert reopened.search("person", data[i], 1)[0].id == i


def test_hnsw_removal_rebuilds_the_shard(tmp_path: Path, vectors: Vectors) -> None:
    index = ShardedFaissIndex(tmp_path / "idx", factory="HNSW16")
    index.add("person", np.arange(30, dtype=np.int64), vectors, [DAY1] * 30)
    assert index.remove("person", ids_of(4, 5, 77)) == 2
    hits = index.search("person", vectors[6], 100)
    assert len(hits) == 28 and hits[0].id == 6
    assert {4, 5}.isdisjoint(h.id for h in hits)
