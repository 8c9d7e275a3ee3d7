"""A long-running reader (the API) sees what another process saved: ShardedFaissIndex.refresh."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np

from surveil.domain import Vectors
from surveil.index.sharded import ShardedFaissIndex

DIM = 16
DAY1, DAY2 = date(2024, 5, 1), date(2024, 5, 2)


def _vectors(n: int, seed: int) -> Vectors:
    v = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    out: Vectors = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def _ids(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def _top(index: ShardedFaissIndex, vector: Vectors) -> int:
    return index.search("person", vector, 1)[0].id


def test_reader_picks_up_new_vectors_new_shards_and_deletions(tmp_path: Path) -> None:
    writer = ShardedFaissIndex(tmp_path)
    reader = ShardedFaissIndex(tmp_path)
    first = _vectors(3, seed=1)
    writer.add("person", _ids(1, 2, 3), first, [DAY1] * 3)
    writer.save()
    assert _top(reader, first[1]) == 2  # loads DAY1 as saved

    later = _vectors(2, seed=2)
    writer.add("person", _ids(4, 5), later, [DAY1, DAY2])
    writer.save()
    assert reader.refresh() is True
    assert _top(reader, later[0]) == 4  # the changed DAY1 shard was reloaded
    assert _top(reader, later[1]) == 5  # the new DAY2 shard was discovered
    assert reader.size("person") == 5

    assert writer.drop_shard("person", DAY2)
    assert reader.refresh() is True
    assert reader.shard_days("person") == [DAY1]
    assert reader.refresh() is False  # nothing new: only stats were paid


def test_refresh_keeps_unsaved_changes(tmp_path: Path) -> None:
    a, b = ShardedFaissIndex(tmp_path), ShardedFaissIndex(tmp_path)
    vec = _vectors(2, seed=3)
    a.add("person", _ids(1), vec[:1], [DAY1])
    a.save()
    b.add("person", _ids(2), vec[1:], [DAY1])  # b has unsaved work on the same shard
    os.utime(tmp_path / "person" / f"{DAY1.isoformat()}.faiss", (1, 1))  # disk "changed"
    b.refresh()
    assert {h.id for h in b.search("person", vec[1], 2)} == {1, 2}


def test_window_search_after_refresh_touches_only_its_days(tmp_path: Path) -> None:
    writer, reader = ShardedFaissIndex(tmp_path), ShardedFaissIndex(tmp_path)
    vec = _vectors(2, seed=4)
    writer.add("person", _ids(1, 2), vec, [DAY1, DAY2])
    writer.save()
    reader.search("person", vec[0], 1)
    reader.refresh()
    since = datetime(2024, 5, 2, tzinfo=UTC)
    assert [h.id for h in reader.search("person", vec[1], 5, since=since)] == [2]
