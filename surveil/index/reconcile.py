"""Keep the vector index a faithful copy of the catalog, which is the source of truth.

`reconcile` repairs drift after a crash (committed rows not yet indexed, index entries
whose rows were deleted). `rebuild` re-indexes a space from scratch, e.g. after the
embedding model changed, without ever leaving the service without a usable index.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import structlog

from surveil.domain import Space
from surveil.files import fsync_dir
from surveil.index.sharded import UNSHARDED_DAY, ShardedFaissIndex
from surveil.ports import Ids, VectorBatch, VectorIndex

log = structlog.get_logger(__name__)

DEFAULT_BATCH = 10_000
_REBUILD_PREFIX = ".rebuild-"
_OLD_SUFFIX = ".old"


class CatalogVectors(Protocol):
    """The part of the `ports.Catalog` this module reads; any Catalog satisfies it."""

    def ids_by_day(
        self, space: Space, *, days: Collection[date] | None = None
    ) -> Mapping[date, Ids]: ...

    def counts_by_day(self, space: Space) -> Mapping[date, int]: ...

    def iter_vectors(
        self, space: Space, *, ids: Sequence[int] | None = None, batch_size: int = 10_000
    ) -> Iterator[VectorBatch]: ...

    def tracks_changed_since(
        self, space: Space, since: datetime, *, day: date | None = None
    ) -> Ids: ...


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """What reconcile changed, per space, and how many days it had to compare id by id."""

    added: dict[Space, int] = field(default_factory=dict)
    removed: dict[Space, int] = field(default_factory=dict)
    #: Tracks whose pooled vector changed after their shard was saved, re-indexed.
    refreshed: dict[Space, int] = field(default_factory=dict)
    #: Days whose ids were listed; None where the whole space was (full, or unsharded).
    days_checked: dict[Space, int | None] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        """Whether the index differed from the catalog at all."""
        return (
            any(self.added.values()) or any(self.removed.values()) or any(self.refreshed.values())
        )


@dataclass(frozen=True, slots=True)
class RebuildReport:
    """How many vectors each rebuilt space now holds, and how long it took."""

    vectors: dict[Space, int]
    seconds: float


def _all_ids(by_day: Mapping[date, Ids]) -> Ids:
    if not by_day:
        return np.zeros((0,), np.int64)
    return np.unique(np.concatenate([np.asarray(v, np.int64) for v in by_day.values()]))


def _chunks(ids: Ids, size: int) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield [int(i) for i in ids[start : start + size]]


def _copy_vectors(
    index: VectorIndex,
    catalog: CatalogVectors,
    space: Space,
    ids: Ids | None,
    batch_size: int,
) -> int:
    """Add the catalog's stored embeddings (all, or just `ids`) to the index in batches."""
    added = 0
    # Ask for ids in chunks so a SQL catalog never sees a million-element IN list.
    requests: Iterator[list[int] | None] = iter([None]) if ids is None else _chunks(ids, batch_size)
    for wanted in requests:
        for batch in catalog.iter_vectors(space, ids=wanted, batch_size=batch_size):
            if len(batch.ids):
                index.add(space, batch.ids, batch.vectors, batch.days, meta=batch.meta)
                added += len(batch.ids)
    return added


def _days_to_check(index: VectorIndex, catalog: CatalogVectors, space: Space) -> set[date] | None:
    """Days whose counts differ between index and catalog; None: compare the whole space."""
    in_index = index.counts_by_day(space)
    in_catalog = catalog.counts_by_day(space)
    if UNSHARDED_DAY in in_index:
        # One shard holds every day: only its total can be compared to the catalog's.
        return set() if sum(in_index.values()) == sum(in_catalog.values()) else None
    every_day = in_index.keys() | in_catalog.keys()
    return {d for d in every_day if in_index.get(d, 0) != in_catalog.get(d, 0)}


#: A vector committed before its shard's save is taken as saved with it. Exact for one
#: writer thread per index (ingest and live commit, add, then save in one thread); a
#: coarse file clock only ever causes a needless refresh, never a missed one.
REFRESH_MARGIN = timedelta(0)


def _refresh_changed(
    index: VectorIndex, catalog: CatalogVectors, space: Space, batch_size: int
) -> int:
    """Re-index tracks whose pooled vector changed after their day's shard was last saved.

    Ids alone cannot show this: a growing track keeps its id while its vector moves.
    """
    refreshed = 0
    for day, saved in index.saved_at(space).items():
        shard_day = None if day == UNSHARDED_DAY else day
        ids = catalog.tracks_changed_since(space, saved - REFRESH_MARGIN, day=shard_day)
        if len(ids) == 0:
            continue
        index.remove(space, ids, days=None if shard_day is None else [day])
        refreshed += _copy_vectors(index, catalog, space, ids, batch_size)
    return refreshed


def reconcile(
    index: VectorIndex,
    catalog: CatalogVectors,
    spaces: Sequence[Space],
    *,
    batch_size: int = DEFAULT_BATCH,
    full: bool = False,
) -> ReconcileReport:
    """Make the index hold exactly the catalog's ids (adding from stored embeddings), then save.

    By default only days whose vector counts differ are compared id by id, so a start-up
    over an index in sync reads no shard the manifest vouches for. A day where deletions
    and additions cancel out to the same count is only caught with `full=True`.
    """
    added: dict[Space, int] = {}
    removed: dict[Space, int] = {}
    refreshed: dict[Space, int] = {}
    checked: dict[Space, int | None] = {}
    for space in spaces:
        refreshed[space] = _refresh_changed(index, catalog, space, batch_size)
        days = None if full else _days_to_check(index, catalog, space)
        checked[space] = None if days is None else len(days)
        if days is not None and not days:
            added[space] = removed[space] = 0
            continue
        # The index first, then the catalog: writers commit a row before indexing it, so
        # an id seen in the index and then not in the catalog was really deleted. The
        # other order would remove a track a live worker (another process, with a shared
        # index) committed and indexed between the two reads.
        in_index = _all_ids(index.ids_by_day(space, days=days))
        in_catalog = _all_ids(catalog.ids_by_day(space, days=days))
        stray = np.setdiff1d(in_index, in_catalog, assume_unique=True)
        missing = np.setdiff1d(in_catalog, in_index, assume_unique=True)
        removed[space] = index.remove(space, stray, days=days) if len(stray) else 0
        added[space] = _copy_vectors(index, catalog, space, missing, batch_size)
        log.info(
            "index.reconciled",
            space=space,
            added=added[space],
            removed=removed[space],
            days_checked="all" if days is None else len(days),
        )
    index.save()
    return ReconcileReport(added=added, removed=removed, refreshed=refreshed, days_checked=checked)


def _recover(index_root: Path, spaces: Sequence[Space]) -> None:
    """Undo what a crash in the middle of a swap or build left behind."""
    for space in spaces:
        old = index_root / f"{space}{_OLD_SUFFIX}"
        if old.exists() and not (index_root / space).exists():
            old.replace(index_root / space)  # crashed between the two renames: restore
            log.warning("index.rebuild_swap_restored", space=space)
        elif old.exists():
            shutil.rmtree(old)
    for leftover in index_root.glob(f"{_REBUILD_PREFIX}*"):
        shutil.rmtree(leftover, ignore_errors=True)


def _swap_in(index_root: Path, staged: Path, space: Space) -> None:
    """Replace index_root/space with staged/space by two renames on the same filesystem."""
    live, old, new = index_root / space, index_root / f"{space}{_OLD_SUFFIX}", staged / space
    if live.exists():
        live.replace(old)
    if new.exists():
        new.replace(live)
    fsync_dir(index_root)
    if old.exists():
        shutil.rmtree(old)


def rebuild(
    index_root: Path,
    catalog: CatalogVectors,
    spaces: Sequence[Space],
    *,
    factory: str,
    shard_by: Literal["day", "none"],
    batch_size: int = DEFAULT_BATCH,
    open_index: Callable[[Path], ShardedFaissIndex] | None = None,
) -> RebuildReport:
    """Build the spaces' indexes from the catalog alone in a staging dir, then swap them in.

    Until the swap the old files are untouched, so a crash leaves the old index usable
    (and `reconcile` at the next start covers anything it lacked). Live
    ShardedFaissIndex objects over index_root must be re-opened afterwards.
    `open_index` builds the staging index with the site's index settings (recall target,
    training thresholds); shards due for training are trained before the swap, so the
    rebuilt index is the final one.
    """
    started = time.perf_counter()
    index_root.mkdir(parents=True, exist_ok=True)
    _recover(index_root, spaces)
    staged = index_root / f"{_REBUILD_PREFIX}{uuid.uuid4().hex[:8]}"
    try:
        fresh = (
            open_index(staged)
            if open_index is not None
            else ShardedFaissIndex(staged, factory=factory, shard_by=shard_by)
        )
        counts = {space: _copy_vectors(fresh, catalog, space, None, batch_size) for space in spaces}
        fresh.save()
        fresh.wait_for_training()
        for space in spaces:
            _swap_in(index_root, staged, space)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    seconds = time.perf_counter() - started
    log.info("index.rebuilt", vectors=counts, seconds=round(seconds, 3), factory=factory)
    return RebuildReport(vectors=counts, seconds=seconds)
