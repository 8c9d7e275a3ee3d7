"""The incremental orphan sweep: one slice of the store per run, the whole store per cycle.

A full sweep walks every stored file and compares every shard with the catalog: at 1M
stored appearances that is seconds a run, even when nothing is due. Orphans do not
appear everywhere at once, though: they come from an ingest that crashed between writing
files and committing rows (in the folder of a source written to lately) and, rarely,
from hands on the data. So a run sweeps

* the source folders (`crops/<camera>/<source>/`, `keyframes/...`) of sources written
  to since the previous sweep (less the grace period, so files too young then are
  looked at again), and the index shards saved since then;
* plus one rotating slice: the source folders and UTC days whose stable hash falls in
  slice `run % slices`, so every folder and every day is swept once per `slices` runs.

A folder's files are compared with the keys its source's rows reference (an index lookup
through keyframes.source_id); a file no row of that source references is deleted only
after an exact check that no row anywhere references it, and only past the grace period.
Files outside a source folder (straight under `crops/` or a camera folder) are left to
`surveil retention run --full-sweep`. The run counter and the time of the last sweep are
kept in a small JSON file beside the index (`SweepState`): the catalog has no table for
it, and losing it only makes one run sweep its slice without the "written since" part.
"""

from __future__ import annotations

import json
import os
import time
import zlib
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import cast

import numpy as np
import structlog

from surveil.domain import SPACES, Space
from surveil.index.reconcile import CatalogVectors, reconcile
from surveil.index.sharded import UNSHARDED_DAY
from surveil.jobs.retention_sweep import SWEPT, SweepReport, note_missing, stray_count, sweep
from surveil.ports import BlobInventory, Ids, VectorIndex
from surveil.storage.blobs.local_files import wall_clock
from surveil.storage.retention import SqlRetention
from surveil.storage.retention_sweep import Kind

log = structlog.get_logger(__name__)

#: The sweep state's file name, beside the index folder in the storage root.
STATE_NAME = "retention-sweep.json"


@dataclass
class SweepState:
    """Where the rotation stands: runs swept so far and when the last one started."""

    runs: int = 0
    #: Epoch seconds (wall clock) the last real sweep started; None before the first.
    since: float | None = None

    @classmethod
    def load(cls, path: Path | None) -> SweepState:
        """The saved state; a fresh one when there is none or it cannot be read."""
        if path is None:
            return cls()
        try:
            raw = json.loads(path.read_text())
            return cls(runs=int(raw["runs"]), since=_float_or_none(raw.get("since")))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("retention.sweep_state_unreadable", path=str(path), error=str(exc))
            return cls()

    def save(self, path: Path | None) -> None:
        """Write atomically (temp file, then rename): a crash leaves the old state."""
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(asdict(self)))
        tmp.replace(path)


def _float_or_none(value: object) -> float | None:
    return None if value is None else float(cast(float, value))


def in_slice(name: str, run: int, slices: int) -> bool:
    """Whether `name` (a folder key below its top folder, or a day) is swept in this run."""
    return zlib.crc32(name.encode()) % slices == run % slices


def sweep_run(
    store: SqlRetention,
    files: BlobInventory,
    index: VectorIndex,
    catalog: CatalogVectors,
    *,
    state_path: Path | None,
    slices: int,
    dry_run: bool,
    grace: timedelta,
) -> SweepReport:
    """This run's slice (a full sweep when `slices` is 1 or nowhere keeps the rotation).

    A real run moves the rotation on; a dry run previews the slice the next run takes.
    """
    state = SweepState.load(state_path)
    started = wall_clock()
    if slices == 1 or state_path is None:
        done = sweep(store, files, index, catalog, dry_run=dry_run, grace=grace)
    else:
        done = sweep_slice(
            store,
            files,
            index,
            catalog,
            state=state,
            slices=slices,
            dry_run=dry_run,
            grace=grace,
        )
    if not dry_run:
        SweepState(runs=state.runs + 1, since=started).save(state_path)
    return done


def sweep_slice(
    store: SqlRetention,
    files: BlobInventory,
    index: VectorIndex,
    catalog: CatalogVectors,
    *,
    state: SweepState,
    slices: int,
    dry_run: bool,
    grace: timedelta,
) -> SweepReport:
    """Sweep this run's slice plus what was written since the last sweep."""
    started = time.perf_counter()
    report = SweepReport()
    young = wall_clock() - grace.total_seconds()
    since = None if state.since is None else state.since - grace.total_seconds()
    touched = [] if since is None else store.sources_updated_since(_utc(since))
    folders = 0
    for prefix, kind in SWEPT:
        chosen = _slice_folders(files, prefix, state.runs, slices)
        chosen |= {f"{prefix}{cam}/{src}/" for cam, src in touched}
        folders += len(chosen)
        _sweep_folders(store, files, kind, sorted(chosen), report, young=young, dry_run=dry_run)
    days = _sweep_vectors(store, index, catalog, state, slices, since, report, dry_run=dry_run)
    report.seconds = time.perf_counter() - started
    log.info(
        "retention.sweep_slice",
        run=state.runs,
        slices=slices,
        folders=folders,
        touched_sources=len(touched),
        days=days,
        seconds=round(report.seconds, 3),
    )
    return report


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _slice_folders(files: BlobInventory, prefix: str, run: int, slices: int) -> set[str]:
    """Source folders (`<prefix><camera>/<source>/`) in this run's slice."""
    chosen: set[str] = set()
    for camera in files.folders(prefix):
        for source in files.folders(camera):
            if in_slice(source[len(prefix) :], run, slices):
                chosen.add(source)
    return chosen


def _source_id(folder: str) -> int | None:
    name = folder.rstrip("/").rpartition("/")[2]
    return int(name) if name.isdigit() else None


def _sweep_folders(
    store: SqlRetention,
    files: BlobInventory,
    kind: Kind,
    folders: list[str],
    report: SweepReport,
    *,
    young: float,
    dry_run: bool,
) -> None:
    """Compare each folder's files with its source's keys; remove what no row references."""
    if not folders:
        return
    sources = {s for s in map(_source_id, folders) if s is not None}
    stored = store.source_paths(kind, sources)
    seen: set[str] = set()
    candidates: list[tuple[str, int]] = []
    prune = None if dry_run else young
    for folder in folders:
        for file in files.walk(folder, prune_before=prune):
            if file.key in stored:
                seen.add(file.key)
                continue
            st = file.stat()
            if st is None or st.st_mtime >= young:
                continue  # gone meanwhile, or maybe an ingest batch about to commit
            candidates.append((file.key, st.st_size))
    wanted = set(folders)
    for key in sorted(stored - seen):
        if key.rpartition("/")[0] + "/" in wanted:
            note_missing(report, kind, key)
    if not candidates:
        return
    # A row of another source (or of no source folder at all) may still own the file.
    owned = store.referenced(kind, [key for key, _ in candidates])
    orphans = [(key, size) for key, size in candidates if key not in owned]
    if dry_run:
        report.files += len(orphans)
        report.bytes += sum(size for _, size in orphans)
        return
    for size in files.delete_many([key for key, _ in orphans]):
        if size is not None:
            report.files += 1
            report.bytes += size


def _sweep_vectors(
    store: SqlRetention,
    index: VectorIndex,
    catalog: CatalogVectors,
    state: SweepState,
    slices: int,
    since: float | None,
    report: SweepReport,
    *,
    dry_run: bool,
) -> int:
    """Compare this run's days (slice + shards saved since) of each space; returns days."""
    checked = 0
    for space in SPACES:
        in_index = index.counts_by_day(space)
        if UNSHARDED_DAY in in_index:  # one file holds every day: compare the space whole
            if dry_run:
                report.vectors += stray_count(index, catalog, space)
            else:
                done = reconcile(index, catalog, [space])
                report.vectors += sum(done.removed.values())
                report.vectors_readded += sum(done.added.values())
            continue
        saved = index.saved_at(space)
        days = {
            d for d in _known_days(store, space, in_index) if in_slice(str(d), state.runs, slices)
        }
        if since is not None:
            days |= {d for d, at in saved.items() if at.timestamp() >= since}
        checked += len(days)
        if not days:
            continue
        if not dry_run:  # as reconcile does; not an orphan, so not in the report
            _refresh(store, index, catalog, space, days, saved)
        counts = store.track_counts(space, days)
        differ = {d for d in days if in_index.get(d, 0) != counts.get(d, 0)}
        if differ:
            _repair(index, catalog, space, differ, report, dry_run=dry_run)
    if not dry_run:
        index.save()
    return checked


def _known_days(store: SqlRetention, space: str, in_index: Collection[date]) -> set[date]:
    """Days with a shard, and every day between the catalog's first and last track."""
    days = set(in_index)
    span = store.track_day_span(space)
    if span is not None:
        first, last = span
        days.update(first + timedelta(days=i) for i in range((last - first).days + 1))
    return days


def _refresh(
    store: SqlRetention,
    index: VectorIndex,
    catalog: CatalogVectors,
    space: Space,
    days: Collection[date],
    saved: dict[date, datetime],
) -> int:
    """Re-index tracks whose pooled vector changed after their day's shard was saved
    (as reconcile does), found with one query for all the days checked."""
    shards = {d: saved[d] for d in days if d in saved}
    if not shards:
        return 0
    changed = store.tracks_updated_since(space, min(shards.values()))
    by_day: dict[date, list[int]] = {}
    for track, day, at in changed:
        if day in shards and at >= shards[day]:
            by_day.setdefault(day, []).append(track)
    refreshed = 0
    for day, tracks in sorted(by_day.items()):
        ids = np.asarray(tracks, np.int64)
        index.remove(space, ids, days=[day])
        refreshed += _add(index, catalog, space, ids)
    return refreshed


def _repair(
    index: VectorIndex,
    catalog: CatalogVectors,
    space: Space,
    days: Collection[date],
    report: SweepReport,
    *,
    dry_run: bool,
) -> None:
    """Vectors without a row go, rows without a vector are indexed (days whose counts differ).

    The index is read before the catalog, as in `reconcile`: a row a live writer commits
    and indexes between the two reads is then seen in the catalog, never removed.
    """
    held = _all(index.ids_by_day(space, days=days))
    rows = _all(catalog.ids_by_day(space, days=days))
    stray = np.setdiff1d(held, rows, assume_unique=True)
    if dry_run:
        report.vectors += int(stray.size)
        return
    if stray.size:
        report.vectors += index.remove(space, stray, days=days)
    missing = np.setdiff1d(rows, held, assume_unique=True)
    if missing.size:
        report.vectors_readded += _add(index, catalog, space, missing)


def _add(index: VectorIndex, catalog: CatalogVectors, space: Space, ids: Ids) -> int:
    added = 0
    for start in range(0, len(ids), 10_000):
        wanted = [int(i) for i in ids[start : start + 10_000]]
        for batch in catalog.iter_vectors(space, ids=wanted):
            if len(batch.ids):
                index.add(space, batch.ids, batch.vectors, batch.days, meta=batch.meta)
                added += len(batch.ids)
    return added


def _all(by_day: Mapping[date, Ids]) -> Ids:
    if not by_day:
        return np.zeros((0,), np.int64)
    return np.unique(np.concatenate([np.asarray(v, np.int64) for v in by_day.values()]))
