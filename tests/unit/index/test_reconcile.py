"""reconcile and rebuild against a real ShardedFaissIndex and an in-memory Catalog."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from surveil.domain import Space, Vectors
from surveil.index.reconcile import CatalogVectors, rebuild, reconcile
from surveil.index.sharded import ShardedFaissIndex
from surveil.ports import Catalog, Ids, VectorBatch

DIM = 12
START = date(2024, 6, 1)


#: When the fixture's rows last changed: long before any shard is saved.
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


class MemoryCatalog:
    """Just the Catalog methods the index needs: ids and counts per day, stored vectors."""

    def __init__(self) -> None:
        self.rows: dict[Space, dict[int, tuple[date, Vectors]]] = {"person": {}, "general": {}}
        self.updated: dict[int, datetime] = {}
        self.requests: list[int | None] = []
        self.listed: list[set[date] | None] = []

    def put(
        self,
        space: Space,
        ids: Sequence[int],
        vectors: Vectors,
        days: Sequence[date],
        *,
        updated: datetime = LONG_AGO,
    ) -> None:
        for i, v, d in zip(ids, vectors, days, strict=True):
            self.rows[space][int(i)] = (d, v)
            self.updated[int(i)] = updated

    def tracks_changed_since(
        self, space: Space, since: datetime, *, day: date | None = None
    ) -> Ids:
        return np.array(
            sorted(
                i
                for i, (d, _) in self.rows[space].items()
                if self.updated[i] >= since and (day is None or d == day)
            ),
            np.int64,
        )

    def ids_by_day(self, space: Space, *, days: Collection[date] | None = None) -> dict[date, Ids]:
        self.listed.append(None if days is None else set(days))
        out: dict[date, list[int]] = {}
        for i, (d, _) in self.rows[space].items():
            if days is None or d in days:
                out.setdefault(d, []).append(i)
        return {d: np.array(sorted(v), np.int64) for d, v in out.items()}

    def counts_by_day(self, space: Space) -> dict[date, int]:
        out: dict[date, int] = {}
        for d, _ in self.rows[space].values():
            out[d] = out.get(d, 0) + 1
        return out

    def iter_vectors(
        self, space: Space, *, ids: Sequence[int] | None = None, batch_size: int = 10_000
    ) -> Iterator[VectorBatch]:
        self.requests.append(None if ids is None else len(ids))
        wanted = sorted(self.rows[space] if ids is None else set(ids) & set(self.rows[space]))
        for start in range(0, len(wanted), batch_size):
            chunk = wanted[start : start + batch_size]
            yield VectorBatch(
                ids=np.array(chunk, np.int64),
                days=[self.rows[space][i][0] for i in chunk],
                vectors=np.stack([self.rows[space][i][1] for i in chunk]).astype(np.float32),
            )


def unit_vectors(n: int, seed: int = 0) -> Vectors:
    v = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    out: Vectors = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


@pytest.fixture
def catalog() -> MemoryCatalog:
    cat = MemoryCatalog()
    days = [START + timedelta(days=i % 5) for i in range(50)]
    cat.put("person", range(50), unit_vectors(50), days)
    cat.put("general", range(1000, 1020), unit_vectors(20, seed=1), [START] * 20)
    return cat


def index_ids(index: ShardedFaissIndex, space: Space) -> set[int]:
    return {int(i) for ids in index.ids_by_day(space).values() for i in ids}


def test_reconcile_fills_an_empty_index_in_batches(catalog: MemoryCatalog, tmp_path: Path) -> None:
    index = ShardedFaissIndex(tmp_path / "idx")
    report = reconcile(index, catalog, ["person", "general"], batch_size=16)
    assert report.added == {"person": 50, "general": 20}
    assert report.removed == {"person": 0, "general": 0}
    assert catalog.requests == [16, 16, 16, 2, 16, 4]  # chunked id lists, never one-by-one
    assert index_ids(index, "person") == set(range(50))
    # ...and saved: a fresh process sees the same, shard per day.
    reopened = ShardedFaissIndex(tmp_path / "idx")
    assert reopened.size("person") == 50
    assert len(reopened.shard_days("person")) == 5


def test_reconcile_adds_missing_and_removes_strays(catalog: MemoryCatalog, tmp_path: Path) -> None:
    index = ShardedFaissIndex(tmp_path / "idx")
    reconcile(index, catalog, ["person"])
    # A crash after the catalog committed 3 rows but before the index saw them ...
    catalog.put("person", [50, 51, 52], unit_vectors(3, seed=7), [START] * 3)
    # ... and a retention run that deleted rows while the index kept them.
    for i in (0, 1):
        del catalog.rows["person"][i]

    report = reconcile(index, catalog, ["person"])

    assert report.added == {"person": 3}
    assert report.removed == {"person": 2}
    assert report.changed
    assert index_ids(index, "person") == set(range(2, 53))
    hit = index.search("person", unit_vectors(3, seed=7)[1], 1)[0]
    assert hit.id == 51
    assert hit.score == pytest.approx(1.0, abs=1e-5)


def test_reconcile_when_in_sync_is_a_no_op(catalog: MemoryCatalog, tmp_path: Path) -> None:
    index = ShardedFaissIndex(tmp_path / "idx")
    reconcile(index, catalog, ["person", "general"])
    folder = tmp_path / "idx" / "person"
    mtimes = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    catalog.requests.clear()

    report = reconcile(index, catalog, ["person", "general"])

    assert not report.changed
    assert catalog.requests == []
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == mtimes


def test_rebuild_matches_reconciled_search_and_replaces_old_files(
    catalog: MemoryCatalog, tmp_path: Path
) -> None:
    root = tmp_path / "idx"
    live = ShardedFaissIndex(root)
    reconcile(live, catalog, ["person", "general"])
    query = unit_vectors(1, seed=42)[0]
    before = live.search("person", query, 20)
    # A stale shard (e.g. from an old model) that the catalog knows nothing about.
    live.add("person", np.array([999], np.int64), unit_vectors(1, seed=5), [date(2020, 1, 1)])
    live.save()

    report = rebuild(root, catalog, ["person"], factory="Flat", shard_by="day")

    assert report.vectors == {"person": 50}
    fresh = ShardedFaissIndex(root)
    assert fresh.search("person", query, 20) == before
    assert date(2020, 1, 1) not in fresh.shard_days("person")
    assert fresh.size("general") == 20  # spaces not rebuilt are left alone
    assert sorted(p.name for p in root.iterdir()) == ["general", "person"]


def test_rebuild_can_change_factory_and_sharding(catalog: MemoryCatalog, tmp_path: Path) -> None:
    root = tmp_path / "idx"
    rebuild(root, catalog, ["person"], factory="HNSW16", shard_by="none")
    index = ShardedFaissIndex(root, factory="HNSW16", shard_by="none")
    assert sorted(p.name for p in (root / "person").iterdir()) == ["all.faiss", "manifest.json"]
    assert index.search("person", unit_vectors(50)[9], 1)[0].id == 9


def test_rebuild_recovers_from_a_crash_between_the_renames(
    catalog: MemoryCatalog, tmp_path: Path
) -> None:
    root = tmp_path / "idx"
    reconcile(ShardedFaissIndex(root), catalog, ["person"])
    (root / "person").replace(root / "person.old")  # the crash: old moved aside, no new yet
    (root / ".rebuild-dead").mkdir()

    rebuild(root, catalog, ["person"], factory="Flat", shard_by="day")

    assert sorted(p.name for p in root.iterdir()) == ["person"]
    assert ShardedFaissIndex(root).size("person") == 50


def test_rebuild_failure_leaves_old_index_usable(
    catalog: MemoryCatalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "idx"
    reconcile(ShardedFaissIndex(root), catalog, ["person"])

    def broken(*_: object, **__: object) -> Iterator[VectorBatch]:
        raise RuntimeError("database went away")
        yield  # pragma: no cover

    monkeypatch.setattr(catalog, "iter_vectors", broken)
    with pytest.raises(RuntimeError, match="went away"):
        rebuild(root, catalog, ["person"], factory="Flat", shard_by="day")
    assert ShardedFaissIndex(root).size("person") == 50
    assert sorted(p.name for p in root.iterdir()) == ["person"]


def test_reconcile_in_sync_loads_no_shard(catalog: MemoryCatalog, tmp_path: Path) -> None:
    reconcile(ShardedFaissIndex(tmp_path / "idx"), catalog, ["person", "general"])
    catalog.listed.clear()
    fresh = ShardedFaissIndex(tmp_path / "idx")  # as at the start of every command

    report = reconcile(fresh, catalog, ["person", "general"])

    assert not report.changed
    assert report.days_checked == {"person": 0, "general": 0}
    assert catalog.listed == []
    assert fresh.loaded_days("person") == [] and fresh.loaded_days("general") == []


def test_reconcile_repairs_only_the_day_whose_count_differs(
    catalog: MemoryCatalog, tmp_path: Path
) -> None:
    reconcile(ShardedFaissIndex(tmp_path / "idx"), catalog, ["person"])
    bad_day = START + timedelta(days=2)
    catalog.put("person", [60, 61], unit_vectors(2, seed=9), [bad_day] * 2)  # never indexed
    stray = ShardedFaissIndex(tmp_path / "idx")
    stray.add("person", np.array([70], np.int64), unit_vectors(1, seed=3), [START])
    stray.save()  # an id the catalog no longer has, on another day
    fresh = ShardedFaissIndex(tmp_path / "idx")
    catalog.listed.clear()

    report = reconcile(fresh, catalog, ["person"])

    assert report.added == {"person": 2} and report.removed == {"person": 1}
    assert report.days_checked == {"person": 2}
    assert catalog.listed == [{START, bad_day}]
    assert fresh.loaded_days("person") == [START, bad_day]
    assert index_ids(ShardedFaissIndex(tmp_path / "idx"), "person") == set(range(50)) | {60, 61}


def test_full_reconcile_catches_changes_that_keep_counts(
    catalog: MemoryCatalog, tmp_path: Path
) -> None:
    index = ShardedFaissIndex(tmp_path / "idx")
    reconcile(index, catalog, ["person"])
    del catalog.rows["person"][0]  # same day, same count: only a full comparison sees it
    catalog.put("person", [99], unit_vectors(1, seed=4), [START])

    assert not reconcile(index, catalog, ["person"]).changed
    report = reconcile(index, catalog, ["person"], full=True)

    assert report.added == {"person": 1} and report.removed == {"person": 1}
    assert report.days_checked == {"person": None}
    assert 99 in index_ids(index, "person") and 0 not in index_ids(index, "person")


def test_reconcile_unsharded_index_compares_totals(catalog: MemoryCatalog, tmp_path: Path) -> None:
    root = tmp_path / "idx"
    reconcile(ShardedFaissIndex(root, shard_by="none"), catalog, ["person"])
    fresh = ShardedFaissIndex(root, shard_by="none")
    assert reconcile(fresh, catalog, ["person"]).days_checked == {"person": 0}
    assert fresh.loaded_days("person") == []

    catalog.put("person", [80], unit_vectors(1, seed=6), [START])
    report = reconcile(fresh, catalog, ["person"])

    assert report.added == {"person": 1} and report.removed == {"person": 0}
    assert report.days_checked == {"person": None}
    assert fresh.size("person") == 51


def _any_catalog_will_do(catalog: Catalog) -> CatalogVectors:
    """Checked by mypy: reconcile/rebuild accept every ports.Catalog implementation."""
    return catalog


def test_reconcile_refreshes_a_track_whose_vector_moved_after_the_save(
    catalog: MemoryCatalog, tmp_path: Path
) -> None:
    """Same id, new pooled vector committed but never saved: only reconcile can see it."""
    index = ShardedFaissIndex(tmp_path / "idx")
    reconcile(index, catalog, ["person"])
    moved = unit_vectors(1, seed=99)
    catalog.put("person", [7], moved, [START + timedelta(days=2)], updated=datetime.now(UTC))
    fresh = ShardedFaissIndex(tmp_path / "idx")  # the process that saved died before adding
    assert fresh.search("person", moved[0], 1)[0].id != 7
    report = reconcile(fresh, catalog, ["person"])
    assert report.refreshed == {"person": 1}
    assert report.added == {"person": 0} and report.removed == {"person": 0}
    top = fresh.search("person", moved[0], 1)[0]
    assert top.id == 7 and top.score == pytest.approx(1.0, abs=1e-5)
    assert fresh.size("person") == 50
