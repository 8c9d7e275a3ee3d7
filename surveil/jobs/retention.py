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
from collections.abc import Callable, Iterable, Sequence
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
from surveil.jobs.retention_budget import BudgetReport, Pick, plan_budget
from surveil.jobs.retention_files import EarlyUnlinks
from surveil.jobs.retention_slices import STATE_NAME, sweep_run
from surveil.jobs.retention_sweep import SWEEP_GRACE, SweepReport
from surveil.jobs.runner import Job, utc_now
from surveil.jobs.usage import Usage, measure_usage
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
from surveil.storage.usage import OldFrame, SqlUsage

log = structlog.get_logger(__name__)

JOB_NAME = "retention"
#: Journal entries worked off per round (bounds memory when a backlog is large).
JOURNAL_PAGE = 50_000
#: Journal entries a run may accumulate before working them off mid-run. Letting a whole
#: expired day accumulate first is what lets its shard be dropped instead of edited.
DRAIN_AT = 200_000
#: Budget passes per run at most (each measures again; the second is rarely needed).
BUDGET_PASSES = 3


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
    #: What each rule removed: "age" (days) and "budget" (size budgets, high water).
    reason: dict[str, Tally] = field(default_factory=lambda: {"age": Tally(), "budget": Tally()})
    budget: BudgetReport | None = None

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
            "reason": {why: vars(t) for why, t in self.reason.items()},
            "budget": None if self.budget is None else self.budget.to_dict(),
        }

    def totals(self) -> Tally:
        """The run's counts so far, to tell one rule's part from the next."""
        return Tally(self.appearances, self.keyframes, self.files, self.bytes)

    def charge(self, why: str, before: Tally) -> None:
        """Count what happened since `before` against rule `why`."""
        now = self.totals()
        self.reason[why] = Tally(
            *(a - b for a, b in zip(vars(now).values(), vars(before).values(), strict=True))
        )


@dataclass(frozen=True)
class RetentionParts:
    """What a run works on: the catalog's retention queries, the index and the blob files."""

    store: SqlRetention
    catalog: CatalogVectors
    index: VectorIndex
    files: BlobInventory
    usage: SqlUsage
    #: Bytes the vector index takes (its files; a shared index's vectors).
    index_bytes: Callable[[], int]
    #: The folder media is stored under, for the disk's high-water mark (None on S3).
    media_root: Path | None
    #: Where the incremental sweep keeps its rotation (None: every sweep is a full one).
    sweep_state: Path | None = None


def retention_parts(services: Services) -> RetentionParts:
    """The parts of a service container retention uses."""
    return RetentionParts(
        services.retention,
        services.catalog,
        services.index,
        services.blobs.inventory(),
        services.usage,
        services.index_bytes,
        services.media_root(),
        services.settings.storage.root / STATE_NAME,
    )


def measure(parts: RetentionParts) -> Usage:
    """What is stored now, per camera, in real bytes."""
    return measure_usage(parts.usage, parts.files, parts.index_bytes())


def budgets_set(settings: RetentionSettings) -> bool:
    """Whether any size budget is configured."""
    return settings.max_bytes is not None or bool(settings.camera_max_bytes)


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
    disk_excess: int = 0,
) -> RetentionReport:
    """Remove (or, dry, only count) what expired as of `now`, then what is over budget.

    `disk_excess` (from the storage check) asks the budget part to free at least that
    many bytes more, oldest first. The orphan sweep comes last: this run's slice
    (`retention.sweep_slices`, see retention_slices), or the whole store if `full_sweep`.
    """
    started = time.perf_counter()
    report = RetentionReport(now=now.astimezone(UTC), dry_run=dry_run)
    policy = policy_for(settings, now)
    with parts.files.run_lock():
        parts.index.refresh()  # shards other processes saved or dropped since we loaded
        if dry_run:
            doomed = _preview(parts, policy, settings.batch_size, report)
            report.charge("age", Tally())
            if budgets_set(settings) or disk_excess:
                preview_budget(parts, settings, report, doomed, disk_excess)
        else:
            report.resumed = _drain(parts, report)
            if report.resumed:
                log.warning("retention.resumed", entries=report.resumed)
            before = report.totals()
            with EarlyUnlinks(parts.files) as early:
                # Appearances first: a keyframe goes only once nothing it shows is left.
                _delete(parts, policy, settings.batch_size, report, "appearances", early)
                _delete(parts, policy, settings.batch_size, report, "keyframes", early)
            report.charge("age", before)
            if budgets_set(settings) or disk_excess:
                before = report.totals()
                apply_budget(parts, settings, report, disk_excess)
                report.charge("budget", before)
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


@dataclass
class AgeDoomed:
    """What a dry run's age part would delete (the budget preview leaves it out)."""

    appearances: set[int] = field(default_factory=set)
    keyframes: set[int] = field(default_factory=set)


def _preview(
    parts: RetentionParts, policy: RetentionPolicy, batch: int, report: RetentionReport
) -> AgeDoomed:
    """Count what a run would remove now (its pending journal included); change nothing."""
    out = AgeDoomed()
    pending = parts.store.journal_counts()
    report.resumed = sum(pending.values())
    per_day: dict[tuple[str, date], int] = defaultdict(int)
    after = 0
    while doomed := parts.store.expired_appearances(policy, after_id=after, limit=batch):
        after = doomed[-1].id
        _tally(parts.files, doomed, report, "appearances")
        out.appearances.update(d.id for d in doomed)
        for d in doomed:
            if d.space is not None and d.ts is not None:
                per_day[(d.space, d.ts.astimezone(UTC).date())] += 1
    after = 0
    while doomed := parts.store.expired_keyframes(policy, after_id=after, limit=batch):
        after = doomed[-1].id
        _tally(parts.files, doomed, report, "keyframes")
        out.keyframes.update(d.id for d in doomed)
    tallies = report.per_camera.values()
    report.vectors = report.appearances + pending.get(VECTOR, 0)
    report.files = sum(t.files for t in tallies) + pending.get(FILE, 0)
    report.bytes = sum(t.bytes for t in tallies)
    _preview_index(parts, per_day, report)
    return out


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


# ---- size budgets ----------------------------------------------------------------------


def apply_budget(
    parts: RetentionParts, settings: RetentionSettings, report: RetentionReport, disk_excess: int
) -> None:
    """Delete the oldest footage over the budgets (journalled like age deletes), then drain.

    Measured again after each pass: a track that keeps other members keeps its row and
    vector, so a pass can free a little less than planned; the next pass takes the rest.
    """
    first: BudgetReport | None = None
    last: BudgetReport | None = None
    freed = 0
    for _ in range(BUDGET_PASSES):
        picks, last = plan_budget(
            parts.usage,
            measure(parts),
            budget=settings.max_bytes,
            camera_budgets=dict(settings.camera_max_bytes),
            disk_excess=max(0, disk_excess - freed),
        )
        first = first or last
        if not any(p.appearance_ids or p.keyframe_ids for p in picks):
            break
        _delete_picks(parts, picks, settings.batch_size, report)
        freed += last.freed
    assert first is not None and last is not None  # BUDGET_PASSES >= 1
    first.freed, first.unmet, first.kept_bytes = freed, last.unmet, last.kept_bytes
    first.oldest_kept = last.oldest_kept
    report.budget = first
    _warn_unmet(first)


def _delete_picks(
    parts: RetentionParts, picks: Sequence[Pick], size: int, report: RetentionReport
) -> None:
    for pick in picks:
        for start in range(0, len(pick.appearance_ids), size):
            chunk = pick.appearance_ids[start : start + size]
            _tally(parts.files, parts.store.delete_appearances_by_id(chunk), report, "appearances")
        for start in range(0, len(pick.keyframe_ids), size):
            chunk = pick.keyframe_ids[start : start + size]
            _tally(parts.files, parts.store.delete_keyframes_by_id(chunk), report, "keyframes")
        _drain(parts, report)


def preview_budget(
    parts: RetentionParts,
    settings: RetentionSettings,
    report: RetentionReport,
    doomed: AgeDoomed,
    disk_excess: int,
) -> None:
    """What the budget part would pick after the age part; counted under reason "budget"."""
    usage = measure(parts)
    o = usage.overheads
    already = {
        cam: t.bytes + round(t.appearances * o.per_appearance + t.keyframes * o.per_keyframe)
        for cam, t in report.per_camera.items()
    }

    def skip(frame: OldFrame) -> bool:
        if frame.id in doomed.keyframes:
            return True
        return bool(frame.free_ids) and set(frame.free_ids) <= doomed.appearances

    picks, report.budget = plan_budget(
        parts.usage,
        usage,
        budget=settings.max_bytes,
        camera_budgets=dict(settings.camera_max_bytes),
        disk_excess=disk_excess,
        skip=skip,
        already=already,
    )
    tally = report.reason["budget"]
    for pick in picks:
        tally.appearances += len(pick.appearance_ids)
        tally.keyframes += len(pick.keyframe_ids)
        tally.files += pick.files
        tally.bytes += pick.file_bytes
    report.appearances += tally.appearances
    report.keyframes += tally.keyframes
    report.vectors += tally.appearances
    report.files += tally.files
    report.bytes += tally.bytes
    _warn_unmet(report.budget)


def _warn_unmet(budget: BudgetReport) -> None:
    telemetry.BUDGET_UNMET.set(budget.unmet)
    if budget.unmet > 0:
        log.warning(
            "retention.budget_unmet",
            unmet_bytes=budget.unmet,
            held_or_evidence_bytes=budget.kept_bytes,
            oldest_kept=iso(budget.oldest_kept) if budget.oldest_kept else None,
            hint="only legal holds and alert evidence are left to delete: release holds, "
            "raise retention.max_bytes or shorten retention.evidence_days",
        )


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
