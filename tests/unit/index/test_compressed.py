"""Trained (compressed) shards against real FAISS: background training, the atomic swap,
the recall record, exact re-rank, removal that leaves no float copy, and deep searches."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import faiss
import numpy as np
import pytest

from surveil.domain import Vectors
from surveil.index import factory as fx
from surveil.index.above import rounds_depth
from surveil.index.compressed import CompressedShard
from surveil.index.manifest import MANIFEST_NAME
from surveil.index.sharded import ShardedFaissIndex
from surveil.index.status import shard_lines, shard_status

DIM = 32
PAST = date(2024, 5, 1)
FLOOR = 0.8


def clustered(n: int, *, per_object: int = 10, seed: int = 0) -> Vectors:
    """Re-ID-like data: objects seen several times with small changes, unit length."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n // per_object + 1, DIM)).astype(np.float32)
    rows = centres[np.arange(n) // per_object] + 0.25 * rng.standard_normal((n, DIM)).astype(
        np.float32
    )
    out: Vectors = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return out


def exact_top(vectors: Vectors, ids: np.ndarray, query: Vectors, k: int) -> list[int]:
    scores = vectors @ query
    order = np.lexsort((ids, -scores))[:k]
    return [int(ids[i]) for i in order]


def open_auto(root: Path) -> ShardedFaissIndex:
    return ShardedFaissIndex(
        root, factory="auto", exact_below=500, train_open_above=50_000, floors={"person": FLOOR}
    )


@pytest.fixture
def data() -> Vectors:
    return clustered(3000)


@pytest.fixture
def trained(tmp_path: Path, data: Vectors) -> ShardedFaissIndex:
    index = open_auto(tmp_path / "idx")
    index.add("person", np.arange(len(data), dtype=np.int64), data, [PAST] * len(data))
    index.save()  # a past day over exact_below: training is queued, not run here
    assert index.wait_for_training(timeout=120)
    return index


def test_a_sealed_shard_is_trained_in_the_background_and_records_its_recall(
    trained: ShardedFaissIndex, tmp_path: Path
) -> None:
    record = trained.training("person")[PAST]
    assert record is not None and record.kind.startswith("IVF") and record.kind.endswith(",SQ8")
    assert 1 <= record.nprobe <= record.nlist
    assert record.floor == FLOOR and record.matches >= 50
    assert record.match_recall is not None and record.match_recall >= 0.98
    raw = json.loads((tmp_path / "idx" / "person" / MANIFEST_NAME).read_text())
    saved = raw["shards"][PAST.isoformat()]["training"]
    assert saved["nprobe"] == record.nprobe and saved["match_recall"] == record.match_recall
    files = sorted(p.name for p in (tmp_path / "idx" / "person").iterdir())
    assert files == [
        "2024-05-01.faiss",
        "2024-05-01.ids.npy",
        "2024-05-01.vectors.npy",
        MANIFEST_NAME,
    ]
    # What `surveil index status` shows, read back without loading the shard.
    fresh = open_auto(tmp_path / "idx")
    status = shard_status(fresh, "person")
    assert status[0]["type"] == record.kind and status[0]["match_recall"] == record.match_recall
    assert fresh.loaded_days("person") == []
    assert "1 compressed" in shard_lines("person", status)[0]


def test_trained_shard_returns_exact_scores_and_finds_the_true_matches(
    trained: ShardedFaissIndex, data: Vectors
) -> None:
    ids = np.arange(len(data), dtype=np.int64)
    found = wanted = 0
    for q in range(0, len(data), 97):
        hits = trained.search("person", data[q], 20)
        for hit in hits:  # scores are exact cosines from the float file, not 8-bit codes
            assert hit.score == pytest.approx(float(data[hit.id] @ data[q]), abs=1e-5)
        truth = {i for i in exact_top(data, ids, data[q], 20) if data[i] @ data[q] >= FLOOR}
        found += len(truth & {h.id for h in hits})
        wanted += len(truth)
    assert wanted > 100 and found / wanted >= 0.97


def test_search_above_on_a_trained_shard_is_one_range_search_finding_the_true_matches(
    trained: ShardedFaissIndex, data: Vectors
) -> None:
    """At the calibrated floor: every hit >= the floor with its exact cosine, at least the
    target share of the true matches, and the same hits the k-nearest rounds find."""
    found = wanted = 0
    for q in range(0, len(data), 97):
        hits = trained.search_above("person", data[q], FLOOR, 5000)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        for hit in hits:
            assert hit.score >= FLOOR
            assert hit.score == pytest.approx(float(data[hit.id] @ data[q]), abs=1e-5)
        truth = set(np.flatnonzero(data @ data[q] >= FLOOR).tolist())
        found += len(truth & {h.id for h in hits})
        wanted += len(truth)
        deep = trained.search("person", data[q], 5000)
        assert {h.id for h in hits} <= {h.id for h in deep if h.score >= FLOOR} | truth
    assert wanted > 100 and found / wanted >= 0.97
    # `limit` keeps the best: the first hits of the full answer, in order.
    full = trained.search_above("person", data[0], FLOOR, 5000)
    assert trained.search_above("person", data[0], FLOOR, 3) == full[:3]


def test_search_above_deeper_than_calibrated_probes_as_many_lists_as_rounds_would(
    tmp_path: Path,
) -> None:
    """A query with more matches than a calibrated depth holds is searched again with the
    probes the k-nearest rounds would have reached (200, 800, 3200, ...): it finds as many
    of them as the rounds do."""
    assert [rounds_depth(m) for m in (0, 199, 200, 799, 800, 3199, 3200)] == [
        200,
        200,
        800,
        800,
        3200,
        3200,
        12800,
    ]
    crowd = clustered(1500, per_object=1500, seed=3)  # one crowd: every pair scores high
    data = np.concatenate([clustered(3000), crowd])
    index = open_auto(tmp_path / "idx")
    index.add("person", np.arange(len(data), dtype=np.int64), data, [PAST] * len(data))
    index.save()
    assert index.wait_for_training(timeout=120)
    query = crowd[0]
    truth = set(np.flatnonzero(data @ query >= FLOOR).tolist())
    assert len(truth) > 1000
    above = {h.id for h in index.search_above("person", query, FLOOR, 20_000)}
    k, hits = 200, index.search("person", query, 200)
    while len(hits) == k and hits[-1].score >= FLOOR:
        k *= 4
        hits = index.search("person", query, k)
    by_rounds = {h.id for h in hits if h.score >= FLOOR}
    assert len(above & truth) >= len(by_rounds & truth) >= 0.97 * len(truth)


def test_search_above_under_the_calibrated_floor_goes_by_rounds(
    trained: ShardedFaissIndex, data: Vectors
) -> None:
    """Below the floor the probes were measured at, the shard answers by k-nearest rounds
    (which probe more lists as they go deeper): every hit passes and scores are exact."""
    low = FLOOR - 0.2
    hits = trained.search_above("person", data[5], low, 10_000)
    assert hits and all(h.score >= low for h in hits)
    truth = set(np.flatnonzero(data @ data[5] >= low).tolist())
    assert len(truth & {h.id for h in hits}) >= 0.97 * len(truth)
    for hit in hits[:50]:
        assert hit.score == pytest.approx(float(data[hit.id] @ data[5]), abs=1e-5)


def test_reopened_trained_shard_serves_the_same_answers(
    trained: ShardedFaissIndex, data: Vectors, tmp_path: Path
) -> None:
    before = [trained.search("person", data[q], 10) for q in (0, 500, 2999)]
    reopened = open_auto(tmp_path / "idx")
    after = [reopened.search("person", data[q], 10) for q in (0, 500, 2999)]
    assert after == before
    shard = reopened._shards["person"][PAST.isoformat()].index
    assert isinstance(shard, CompressedShard)
    assert isinstance(shard._vectors, np.memmap)  # floats are mapped, not loaded


def test_removal_from_a_trained_shard_leaves_no_float_copy_on_disk(
    trained: ShardedFaissIndex, data: Vectors, tmp_path: Path
) -> None:
    gone = np.array([7, 8, 2500], dtype=np.int64)
    assert trained.remove("person", gone) == 3
    trained.save()
    reopened = open_auto(tmp_path / "idx")
    assert reopened.size("person") == len(data) - 3
    assert {7, 8, 2500}.isdisjoint(h.id for h in reopened.search("person", data[7], 50))
    folder = tmp_path / "idx" / "person"
    stored_ids = np.load(folder / "2024-05-01.ids.npy")
    floats = np.load(folder / "2024-05-01.vectors.npy")
    rows = np.searchsorted(stored_ids, gone)
    assert not floats[rows].any()  # deleted means gone from the disk, not only unindexed
    assert floats[np.searchsorted(stored_ids, [9])].any()


def test_adds_after_training_are_searchable_and_survive_a_reopen(
    trained: ShardedFaissIndex, tmp_path: Path
) -> None:
    extra = clustered(20, seed=9)
    new_ids = np.arange(10_000, 10_020, dtype=np.int64)
    trained.add("person", new_ids, extra, [PAST] * 20)
    assert trained.search("person", extra[3], 1)[0].id == 10_003
    trained.save()
    assert (tmp_path / "idx" / "person" / "2024-05-01.tail.npz").exists()
    reopened = open_auto(tmp_path / "idx")
    hit = reopened.search("person", extra[3], 1)[0]
    assert hit.id == 10_003 and hit.score == pytest.approx(1.0, abs=1e-5)


def test_changes_made_while_training_runs_are_kept_by_the_swap(tmp_path: Path) -> None:
    data = clustered(30_000, seed=4)
    index = open_auto(tmp_path / "idx")
    index.add("person", np.arange(len(data), dtype=np.int64), data, [PAST] * len(data))
    index.save()
    extra = clustered(10, seed=5)
    # Searches and changes go on while the trainer works on its snapshot.
    assert index._trainer.pending() == 1, "training finished too early to test the swap"
    assert index.search("person", data[42], 1)[0].id == 42
    index.add("person", np.arange(50_000, 50_010, dtype=np.int64), extra, [PAST] * 10)
    index.remove("person", np.array([42, 43], dtype=np.int64))
    assert index._trainer.pending() == 1, "training finished before the changes were made"
    assert index.wait_for_training(timeout=300)
    assert index.training("person")[PAST] is not None
    assert index.size("person") == len(data) + 10 - 2
    assert index.search("person", extra[0], 1)[0].id == 50_000
    assert {42, 43}.isdisjoint(h.id for h in index.search("person", data[42], 20))
    reopened = open_auto(tmp_path / "idx")
    assert reopened.size("person") == len(data) + 8
    assert reopened.search("person", extra[0], 1)[0].id == 50_000
    assert isinstance(reopened._shards["person"][PAST.isoformat()].index, CompressedShard)


def test_today_and_small_shards_stay_exact(tmp_path: Path) -> None:
    today = datetime.now(UTC).date()
    index = open_auto(tmp_path / "idx")
    data = clustered(1200)
    days = [today] * 1000 + [PAST] * 200  # today is filling; the past day is small
    index.add("person", np.arange(1200, dtype=np.int64), data, days)
    index.save()
    assert index.wait_for_training(timeout=60)
    assert set(index.training("person").values()) == {None}


def test_deep_search_over_skewed_shards_equals_one_exact_scan(tmp_path: Path) -> None:
    # Every vector near the query sits on one small day: its first share of k is too
    # small, so the search must go deeper there and nowhere else.
    rng = np.random.default_rng(1)
    query = rng.standard_normal(DIM).astype(np.float32)
    query /= np.linalg.norm(query)
    near = query + 0.3 * rng.standard_normal((150, DIM)).astype(np.float32)
    far = rng.standard_normal((2000, DIM)).astype(np.float32)
    vectors = np.concatenate([near, far])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.arange(len(vectors), dtype=np.int64)
    days = [PAST] * 150 + [PAST + timedelta(days=1 + i % 10) for i in range(2000)]
    index = ShardedFaissIndex(tmp_path / "idx", factory="Flat")
    index.add("person", ids, vectors, days)
    hits = index.search("person", query, 120)
    assert [h.id for h in hits] == exact_top(vectors, ids, query, 120)


@pytest.mark.skipif(fx.gpu_count() == 0, reason="needs faiss-gpu and a CUDA device")
def test_gpu_search_deeper_than_2048_answers_from_the_cpu_copy(tmp_path: Path) -> None:
    vectors = clustered(5000, seed=2)
    ids = np.arange(len(vectors), dtype=np.int64)
    index = ShardedFaissIndex(tmp_path / "idx", factory="Flat")
    index.add("person", ids, vectors, [PAST] * len(vectors))
    hits = index.search("person", vectors[0], 3000)
    assert len(hits) == 3000
    assert [h.id for h in hits[:100]] == exact_top(vectors, ids, vectors[0], 100)
    assert (
        "Gpu"
        in type(faiss.downcast_index(index._shards["person"]["2024-05-01"].device_copy)).__name__
    )


def test_an_upgraded_site_trains_its_exact_shards_on_demand(tmp_path: Path) -> None:
    # Shards written before 'auto' (exact, never loaded by today's ingest) are trained by
    # `surveil index train` (train_now), the same way background training does it.
    data = clustered(1200, seed=6)
    old = ShardedFaissIndex(tmp_path / "idx", factory="Flat")
    old.add(
        "person", np.arange(1200, dtype=np.int64), data, [PAST] * 600 + [PAST + timedelta(1)] * 600
    )
    old.save()
    index = open_auto(tmp_path / "idx")
    assert index.train_now() == 2
    assert all(r is not None for r in index.training("person").values())
    reopened = open_auto(tmp_path / "idx")
    assert reopened.search("person", data[700], 1)[0].id == 700
    assert open_auto(tmp_path / "idx").train_now() == 0  # nothing left to do
