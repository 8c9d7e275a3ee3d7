"""The orphan sweep: files with no row and vectors with no row go; rows with no file are told.

Orphans come from crashes outside retention's journal (an ingest batch whose files were
written but whose transaction never committed, an index saved by a process that later
lost its rows) and from hands on the data directory. Only the crop and keyframe folders
are walked: audit copies (audit/) and rule examples (rules/) are owned by their rows
elsewhere and never swept. A file younger than the grace period is left alone, because
ingest writes its files before it commits their rows.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np

from surveil.domain import SPACES, Space
from surveil.index.reconcile import CatalogVectors, reconcile
from surveil.index.sharded import UNSHARDED_DAY
from surveil.ports import BlobInventory, Ids, StoredBlob, VectorIndex
from surveil.storage.blobs.local_files import wall_clock
from surveil.storage.retention import SqlRetention
from surveil.storage.retention_sweep import Kind

#: Files younger than this are never orphans: ingest writes files, then commits rows.
SWEEP_GRACE = timedelta(hours=1)
#: The blob folders rows own, and which rows own them.
SWEPT: tuple[tuple[str, Kind], ...] = (("crops/", "appearances"), ("keyframes/", "keyframes"))
#: Keys of rows with a missing file listed in the report (the count is always complete).
EXAMPLES = 10


@dataclass
class SweepReport:
    """Orphans removed (or, in a dry run, found) and rows whose file is missing."""

    files: int = 0
    bytes: int = 0
    vectors: int = 0
    vectors_readded: int = 0
    rows_missing_files: dict[str, int] = field(
        default_factory=lambda: {kind: 0 for _, kind in SWEPT}
    )
    missing_examples: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return {
            "files": self.files,
            "bytes": self.bytes,
            "vectors": self.vectors,
            "vectors_readded": self.vectors_readded,
            "rows_missing_files": dict(self.rows_missing_files),
            "missing_examples": list(self.missing_examples),
            "seconds": round(self.seconds, 3),
        }


def merge_keys(
    stored: Iterable[str], disk: Iterable[StoredBlob]
) -> Iterator[tuple[str | None, StoredBlob | None]]:
    """Pair two key-sorted streams in one pass: (key, file), (key, None) or (None, file)."""
    keys = (key for key, _ in itertools.groupby(stored))  # rows may share a file
    files = iter(disk)
    key, file = next(keys, None), next(files, None)
    while key is not None or file is not None:
        if file is None or (key is not None and key < file.key):
            yield key, None
            key = next(keys, None)
        elif key is None or file.key < key:
            yield None, file
            file = next(files, None)
        else:
            yield key, file
            key, file = next(keys, None), next(files, None)


def sweep(
    store: SqlRetention,
    files: BlobInventory,
    index: VectorIndex,
    catalog: CatalogVectors,
    *,
    dry_run: bool,
    grace: timedelta = SWEEP_GRACE,
) -> SweepReport:
    """Find orphans in the whole store; remove them unless `dry_run` (the full sweep)."""
    started = time.perf_counter()
    report = SweepReport()
    young = wall_clock() - grace.total_seconds()
    for prefix, kind in SWEPT:
        _sweep_folder(store, files, prefix, kind, report, young=young, dry_run=dry_run)
    if dry_run:
        report.vectors = sum(stray_count(index, catalog, space) for space in SPACES)
    else:
        # Reconcile removes vectors without rows (and re-adds rows' missing vectors).
        done = reconcile(index, catalog, SPACES)
        report.vectors = sum(done.removed.values())
        report.vectors_readded = sum(done.added.values())
    report.seconds = time.perf_counter() - started
    return report


def _sweep_folder(
    store: SqlRetention,
    files: BlobInventory,
    prefix: str,
    kind: Kind,
    report: SweepReport,
    *,
    young: float,
    dry_run: bool,
) -> None:
    prune = None if dry_run else young
    disk = files.walk(prefix, prune_before=prune)
    for key, file in merge_keys(store.stored_paths(kind, prefix), disk):
        if file is None and key is not None:
            note_missing(report, kind, key)
        elif key is None and file is not None:
            st = file.stat()
            if st is None or st.st_mtime >= young:
                continue  # gone meanwhile, or maybe an ingest batch about to commit
            if dry_run or files.delete(file.key) is not None:
                report.files += 1
                report.bytes += st.st_size


def note_missing(report: SweepReport, kind: Kind, key: str) -> None:
    """Count a row whose file is gone (the first few keys are listed as examples)."""
    report.rows_missing_files[kind] += 1
    if len(report.missing_examples) < EXAMPLES:
        report.missing_examples.append(key)


def stray_count(index: VectorIndex, catalog: CatalogVectors, space: Space) -> int:
    """Vectors without a row, counted without changing anything (the dry run's sweep).

    Like reconcile, only days whose counts differ are compared id by id.
    """
    in_index, in_catalog = index.counts_by_day(space), catalog.counts_by_day(space)
    every = in_index.keys() | in_catalog.keys()
    days = {d for d in every if in_index.get(d, 0) != in_catalog.get(d, 0)}
    if not days:
        return 0
    # An unsharded index reports one pseudo-day: compare the whole space then.
    scope = None if UNSHARDED_DAY in in_index else days
    held = _all(index.ids_by_day(space, days=scope))
    rows = _all(catalog.ids_by_day(space, days=scope))
    return int(np.setdiff1d(held, rows, assume_unique=True).size)


def _all(by_day: Mapping[date, Ids]) -> Ids:
    if not by_day:
        return np.zeros((0,), np.int64)
    return np.unique(np.concatenate([np.asarray(v, np.int64) for v in by_day.values()]))
