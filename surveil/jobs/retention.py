"""Retention: forget what policy says must be forgotten, from rows, index and disk together.

Rows go first, in bounded transactions that journal the vectors and files they leave
behind; the journal is then worked off (index, then disk) and emptied. A run killed at
any point leaves rows with everything they own, or a journal that the next run finishes
before anything else, so every run ends in the same state with no orphans. A day whose
appearances all went costs a shard file delete, never a pass over the index.
"""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import structlog

from surveil import telemetry
from surveil.config import RetentionSettings
from surveil.container import Services
from surveil.domain import Space
from surveil.index.reconcile import CatalogVectors
from surveil.index.sharded import UNSHARDED_DAY
from surveil.jobs.retention_files import EarlyUnlinks
from surveil.jobs.retention_slices import STATE_NAME, sweep_run
from surveil.jobs.retention_sweep import SWEEP_GRACE, SweepReport
from surveil.jobs.runner import Job, utc_now
from surveil.ports import BlobInventory, Ids, VectorIndex
from surveil.search.render import iso
from surveil.storage.retention import (
    FILE,
    VECTOR,
    Doomed,
    JournalEntry,
    RetentionPolicy,
    SqlRetention,
)

log = structlog.get_logger(__name__)

JOB_NAME = "retention"
#: Journal entries worked off per round (bounds memory when a backlog is large).
JOURNAL_PAGE = 50_000
#: Journal entries a run may accumulate before working them off mid-run. Letting a whole
#: expired day accumulate first is what lets its shard be dropped instead of edited.
DRAIN_AT = 200_000


@dataclass
class Tally:
    """What went (or would go) for one camera."""

    appearances: int = 0
    keyframes: int = 0
    files: int = 0
    bytes: int = 0


@dataclass
class IndexCost:
    """What the vector index work cost: whole-day shards dropped vs. shards edited."""

    shards_dropped: int = 0
    shards_edited: int = 0
    seconds: float = 0.0


@dataclass
class RetentionReport:
    """One run's (or dry run's) counts; `to_dict` is the CLI's --json contract."""

    now: datetime
    dry_run: bool
    appearances: int = 0
    keyframes: int = 0
    vectors: int = 0
    files: int = 0
    bytes: int = 0
    resumed: int = 0
    per_camera: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    index: IndexCost = field(default_factory=IndexCost)
    orphans: SweepReport | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The five contract counts first, then per camera, index cost, orphans, timing."""
        return {
            "appearances": self.appearances,
            "keyframes": self.keyframes,
            "vectors": self.vectors,
            "files": self.files,
            "bytes": self.bytes,
            "dry_run": self.dry_run,
            "now": iso(self.now),
            "resumed": self.resumed,
            "per_camera": {cam: vars(t) for cam, t in sorted(self.per_camera.items())},
            "index": {
                "shards_dropped": self.index.shards_dropped,
                "shards_edited": self.index.shards_edited,
                "seconds": round(self.index.seconds, 3),
            },
            "orphans": None if self.orphans is None else self.orphans.to_dict(),
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class RetentionParts:
    """What a run works on: the catalog's retention queries, the index and the blob files."""

    store: SqlRetention
    catalog: CatalogVectors
    index: VectorIndex
    files: BlobInventory
    #: Where the incremental sweep keeps its rotation (None: every sweep is a full one).
    sweep_state: Path | None = None


def retention_parts(services: Services) -> RetentionParts:
    """The parts of a service container retention uses."""
    return RetentionParts(
        services.retention,
        services.catalog,
        services.index,
        services.blobs.inventory(),
        services.settings.storage.root / STATE_NAME,
    )


def policy_for(settings: RetentionSettings, now: datetime) -> RetentionPolicy:
    """The configured policy as of `now`."""
    return RetentionPolicy(
        now=now.astimezone(UTC),
        days=settings.days,
        cameras=dict(settings.cameras),
        labels=dict(settings.labels),
        evidence_days=settings.evidence_days,
    )


def run_retention(
    parts: RetentionParts,
    settings: RetentionSettings,
    *,
    now: datetime,
    dry_run: bool = False,
    sweep_orphans: bool | None = None,
    full_sweep: bool = False,
    grace: timedelta = SWEEP_GRACE,
) -> RetentionReport:
    """Remove (or, dry, only count) what expired as of `now`, then sweep orphans.

    The sweep takes this run's slice (`retention.sweep_slices`, see retention_slices);
    `full_sweep` walks the whole store instead.
    """
    started = time.perf_counter()
    report = RetentionReport(now=now.astimezone(UTC), dry_run=dry_run)
    policy = policy_for(settings, now)
    with parts.files.run_lock():
        parts.index.refresh()  # shards other processes saved or dropped since we loaded
        if dry_run:
            _preview(parts, policy, settings.batch_size, report)
        else:
            report.resumed = _drain(parts, report)
            if report.resumed:
                log.warning("retention.resumed", entries=report.resumed)
            with EarlyUnlinks(parts.files) as early:
                # Appearances first: a keyframe goes only once nothing it shows is left.
                _delete(parts, policy, settings.batch_size, report, "appearances", early)
                _delete(parts, policy, settings.batch_size, report, "keyframes", early)
        if settings.sweep if sweep_orphans is None else sweep_orphans:
            report.orphans = sweep_run(
                parts.store,
                parts.files,
                parts.index,
                parts.catalog,
                state_path=parts.sweep_state,
                slices=1 if full_sweep else settings.sweep_slices,
                dry_run=dry_run,
                grace=grace,
            )
    report.seconds = time.perf_counter() - started
    _log(report)
    if not dry_run:
        telemetry.RETENTION_ROWS.labels("appearance").inc(report.appearances)
        telemetry.RETENTION_ROWS.labels("keyframe").inc(report.keyframes)
        telemetry.RETENTION_FILES.inc(report.files)
        telemetry.RETENTION_BYTES.inc(report.bytes)
    return report


def _log(report: RetentionReport) -> None:
    summary = report.to_dict()
    orphans = summary.pop("orphans") or {}
    summary.pop("per_camera")
    log.info(
        "retention.dry_run" if report.dry_run else "retention.done",
        **summary,
        orphan_files=orphans.get("files", 0),
        orphan_vectors=orphans.get("vectors", 0),
        rows_missing_files=orphans.get("rows_missing_files", {}),
    )


# ---- the real run --------------------------------------------------------------------


def _delete(
    parts: RetentionParts,
    policy: RetentionPolicy,
    batch: int,
    report: RetentionReport,
    kind: Literal["appearances", "keyframes"],
    early: EarlyUnlinks,
) -> None:
    """Delete expired rows batch by batch (each one's files going at once, in the
    background), then work off the journal they wrote."""
    store = parts.store
    delete = store.delete_appearances if kind == "appearances" else store.delete_keyframes
    journalled, after = 0, 0
    while doomed := delete(policy, after_id=after, limit=batch):
        after = doomed[-1].id
        _tally(parts.files, doomed, report, kind)  # sizes first: the files are about to go
        early.submit([d.path for d in doomed if d.path])
        journalled += len(doomed) * (2 if kind == "appearances" else 1)  # vector + file
        log.debug("retention.batch", kind=kind, rows=len(doomed), last_id=after)
        if journalled >= DRAIN_AT:
            _drain(parts, report, early)
            journalled = 0
    _drain(parts, report, early)


def _tally(
    files: BlobInventory,
    doomed: Sequence[Doomed],
    report: RetentionReport,
    kind: Literal["appearances", "keyframes"],
) -> None:
    """Count rows and their (still present) files per camera; totals count actual deletes."""
    # One call for the batch: an object store answers the sizes in parallel.
    sizes = files.sizes([d.path for d in doomed if d.path])
    sized = iter(sizes)
    for d in doomed:
        tally = report.per_camera[d.camera_id]
        if kind == "appearances":
            tally.appearances += 1
        else:
            tally.keyframes += 1
        size = next(sized) if d.path else None
        if size is not None:
            tally.files += 1
            tally.bytes += size
    if kind == "appearances":
        report.appearances += len(doomed)
    else:
        report.keyframes += len(doomed)


def _drain(
    parts: RetentionParts, report: RetentionReport, early: EarlyUnlinks | None = None
) -> int:
    """Work off the journal: vectors out of the index (saved), files off disk, entries gone.

    Each step is idempotent, so entries a crash left behind are simply done again. Files
    `early` already deleted are counted from its results, not deleted again.
    """
    done = 0
    if early is not None:
        early.settle()
    while entries := parts.store.journal(limit=JOURNAL_PAGE):
        started = time.perf_counter()
        report.vectors += _remove_vectors(parts, [e for e in entries if e.kind == VECTOR], report)
        parts.index.save()
        report.index.seconds += time.perf_counter() - started
        paths = [e.path for e in entries if e.kind == FILE and e.path]
        gone, paths = early.take(paths) if early is not None else ([], paths)
        for size in [*gone, *parts.files.delete_many(paths)]:
            if size is not None:
                report.files += 1
                report.bytes += size
        parts.store.forget([e.id for e in entries])
        done += len(entries)
    if early is not None:
        early.forget()
    return done


def _remove_vectors(
    parts: RetentionParts, entries: Sequence[JournalEntry], report: RetentionReport
) -> int:
    """Remove journalled vectors per (space, day): drop a day's shard when no row is left."""
    by_space: dict[str, dict[date, list[int]]] = defaultdict(lambda: defaultdict(list))
    for e in entries:
        if e.item_id is not None and e.space is not None and e.ts is not None:
            by_space[e.space][e.ts.astimezone(UTC).date()].append(e.item_id)
    removed = 0
    for space_name, days in by_space.items():
        space = cast(Space, space_name)  # the catalog's check constraint vouches for it
        counts = parts.index.counts_by_day(space)
        if UNSHARDED_DAY in counts:  # shard_by="none": one file holds every day
            every = _ids(days.values())
            removed += parts.index.remove(space, every)
            removed -= _readd_surviving(parts, space, [int(i) for i in every])
            report.index.shards_edited += 1
            continue
        for day, ids in sorted(days.items()):
            if day not in counts:
                continue  # already dropped (an earlier round or run), or never indexed
            if parts.store.has_tracks_on(space, day):
                removed += parts.index.remove(space, _ids([ids]), days=[day])
                removed -= _readd_surviving(parts, space, ids)
                report.index.shards_edited += 1
            elif parts.index.drop_shard(space, day):
                removed += counts[day]
                report.index.shards_dropped += 1
    return removed


def _readd_surviving(parts: RetentionParts, space: Space, track_ids: Sequence[int]) -> int:
    """Tracks that lost only some members keep their row: index their recomputed vector.

    Returns how many were re-added, so `vectors` counts only tracks that went.
    """
    added = 0
    for batch in parts.catalog.iter_vectors(space, ids=track_ids):
        if len(batch.ids):
            parts.index.add(space, batch.ids, batch.vectors, batch.days, meta=batch.meta)
            added += len(batch.ids)
    return added


def _ids(groups: Iterable[list[int]]) -> Ids:
    return np.fromiter(itertools.chain.from_iterable(groups), dtype=np.int64)


# ---- the dry run ---------------------------------------------------------------------


def _preview(
    parts: RetentionParts, policy: RetentionPolicy, batch: int, report: RetentionReport
) -> None:
    """Count what a run would remove now (its pending journal included); change nothing."""
    pending = parts.store.journal_counts()
    report.resumed = sum(pending.values())
    per_day: dict[tuple[str, date], int] = defaultdict(int)
    after = 0
    while doomed := parts.store.expired_appearances(policy, after_id=after, limit=batch):
        after = doomed[-1].id
        _tally(parts.files, doomed, report, "appearances")
        for d in doomed:
            if d.space is not None and d.ts is not None:
                per_day[(d.space, d.ts.astimezone(UTC).date())] += 1
    after = 0
    while doomed := parts.store.expired_keyframes(policy, after_id=after, limit=batch):
        after = doomed[-1].id
        _tally(parts.files, doomed, report, "keyframes")
    tallies = report.per_camera.values()
    report.vectors = report.appearances + pending.get(VECTOR, 0)
    report.files = sum(t.files for t in tallies) + pending.get(FILE, 0)
    report.bytes = sum(t.bytes for t in tallies)
    _preview_index(parts, per_day, report)


def _preview_index(
    parts: RetentionParts, per_day: dict[tuple[str, date], int], report: RetentionReport
) -> None:
    """Which shards the run would drop whole (every row of the day expires) or edit."""
    for space in sorted({s for s, _ in per_day}):
        in_catalog = parts.catalog.counts_by_day(cast(Space, space))
        in_index = parts.index.counts_by_day(cast(Space, space))
        for (s, day), n in per_day.items():
            if s != space or day not in in_index:
                continue
            if n >= in_catalog.get(day, 0):
                report.index.shards_dropped += 1
            else:
                report.index.shards_edited += 1


# ---- the scheduled job ---------------------------------------------------------------


def retention_job(services: Services) -> Job:
    """The daily cleanup for the scheduler; its first run waits one interval after install."""
    settings = services.settings.retention
    interval = timedelta(hours=settings.interval_hours)

    def run() -> dict[str, Any]:
        report = run_retention(retention_parts(services), settings, now=utc_now())
        summary = report.to_dict()
        summary.pop("per_camera")
        return summary

    return Job(JOB_NAME, interval, run, first_delay=interval)
