"""The shard manifest: counts without loading shards, and a safe fall-back when it lies."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from surveil.domain import Vectors
from surveil.index.manifest import MANIFEST_NAME, read_manifest
from surveil.index.sharded import ShardedFaissIndex

DIM = 8
DAY1, DAY2, DAY3 = date(2024, 5, 1), date(2024, 5, 2), date(2024, 5, 3)
COUNTS = {DAY1: 4, DAY2: 6, DAY3: 2}


def unit_vectors(n: int, seed: int = 0) -> Vectors:
    v = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    out: Vectors = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A saved index: 4, 6 and 2 vectors on three days."""
    index = ShardedFaissIndex(tmp_path / "idx")
    days = [d for d, n in COUNTS.items() for _ in range(n)]
    index.add("person", np.arange(len(days), dtype=np.int64), unit_vectors(len(days)), days)
    index.save()
    return tmp_path / "idx"


def manifest(root: Path) -> Path:
    return root / "person" / MANIFEST_NAME


def test_manifest_round_trips_and_counts_load_nothing(root: Path) -> None:
    raw = json.loads(manifest(root).read_text())
    assert raw["dim"] == DIM
    assert {stem: e["ntotal"] for stem, e in raw["shards"].items()} == {
        d.isoformat(): n for d, n in COUNTS.items()
    }
    fresh = ShardedFaissIndex(root)
    assert fresh.counts_by_day("person") == COUNTS
    assert fresh.size("person") == 12
    assert fresh.loaded_days("person") == []
    assert fresh.counts_by_day("general") == {}


@pytest.mark.parametrize("damage", ["missing", "corrupt", "wrong_version"])
def test_missing_or_corrupt_manifest_falls_back_then_heals(root: Path, damage: str) -> None:
    if damage == "missing":
        manifest(root).unlink()
    elif damage == "corrupt":
        manifest(root).write_text('{"version": 1, "shards": {"2024-05-01": {"ntot')
    else:
        manifest(root).write_text('{"version": 99, "shards": {}}')
    fresh = ShardedFaissIndex(root)
    assert fresh.counts_by_day("person") == COUNTS
    assert fresh.loaded_days("person") == [DAY1, DAY2, DAY3]
    fresh.save()  # nothing dirty, but the manifest is rewritten from what was loaded
    healed = ShardedFaissIndex(root)
    assert healed.counts_by_day("person") == COUNTS
    assert healed.loaded_days("person") == []


def test_shard_saved_after_the_manifest_is_loaded_not_trusted(root: Path) -> None:
    stale = manifest(root).read_bytes()
    index = ShardedFaissIndex(root)
    index.add("person", np.array([100, 101], np.int64), unit_vectors(2, seed=1), [DAY2] * 2)
    index.add("person", np.array([200], np.int64), unit_vectors(1, seed=2), [date(2024, 5, 9)])
    index.save()
    manifest(root).write_bytes(stale)  # as if the process died before the manifest save

    fresh = ShardedFaissIndex(root)
    assert fresh.counts_by_day("person") == COUNTS | {DAY2: 8, date(2024, 5, 9): 1}
    assert fresh.loaded_days("person") == [DAY2, date(2024, 5, 9)]  # only the changed ones


def test_manifest_entry_without_shard_file_is_ignored(root: Path) -> None:
    (root / "person" / "2024-05-03.faiss").unlink()  # e.g. retention, then a crash
    fresh = ShardedFaissIndex(root)
    assert fresh.counts_by_day("person") == {DAY1: 4, DAY2: 6}
    assert fresh.loaded_days("person") == []


def test_save_and_drop_keep_the_manifest_current(root: Path) -> None:
    index = ShardedFaissIndex(root)
    index.remove("person", np.arange(4, dtype=np.int64), days=[DAY1])  # empties DAY1
    assert index.drop_shard("person", DAY3)
    index.save()
    assert set(read_manifest(root / "person")) == {"2024-05-02"}
    fresh = ShardedFaissIndex(root)
    assert fresh.counts_by_day("person") == {DAY2: 6}
    assert fresh.loaded_days("person") == []


def test_days_filter_loads_only_those_shards(root: Path) -> None:
    index = ShardedFaissIndex(root)
    assert list(index.ids_by_day("person", days=[DAY2, date(2030, 1, 1)])) == [DAY2]
    assert index.remove("person", np.array([0, 5], np.int64), days=[DAY2]) == 1  # 0 is DAY1's
    assert index.loaded_days("person") == [DAY2]
