"""Retention: forget what policy says must be forgotten, from rows, index and disk together.

Rows go first, in bounded transactions that journal the vectors and files they leave
behind; the journal is then worked off (index, then disk) and emptied. A run killed at
any point leaves rows with everything they own, or a journal that the next run finishes
before anything else, so every run ends in the same state with no orphans. A day whose
appearances all went costs a shard file delete, never a pass over the index.
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, cast

import structlog

from surveil import telemetry
from surveil.config import RetentionSettings
from surveil.container import Services
from surveil.domain import Space
from surveil.jobs.retention_budget import AgeDoomed, apply_budget, preview_budget
from surveil.jobs.retention_files import EarlyUnlinks
from surveil.jobs.retention_parts import (
    RetentionParts,
    RetentionReport,
    Tally,
    drain,
    let_go,
    measure,
    retention_parts,
    tally,
)
from surveil.jobs.retention_slices import sweep_run
from surveil.jobs.retention_sweep import SWEEP_GRACE
from surveil.jobs.runner import Job, utc_now
from surveil.storage.retention import (
    FILE,
    VECTOR,
    RetentionPolicy,
)

log = structlog.get_logger(__name__)

JOB_NAME = "retention"
#: Journal entries worked off per round (bounds memory when a backlog is large).
JOURNAL_PAGE = 50_000
#: Journal entries a run may accumulate before working them off mid-run. Letting a whole
#: expired day accumulate first is what lets its shard be dropped instead of edited.
DRAIN_AT = 200_000
#: Budget passes per run at most (each measures again; the second is rarely needed).
BUDGET_PASSES = 3


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
            report.resumed = drain(parts, report)
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
        let_go(parts, doomed, report, kind, early)
        journalled += len(doomed) * (2 if kind == "appearances" else 1)  # vector + file
        log.debug("retention.batch", kind=kind, rows=len(doomed), last_id=after)
        if journalled >= DRAIN_AT:
            drain(parts, report, early)
            journalled = 0
    drain(parts, report, early)


# ---- the dry run ---------------------------------------------------------------------


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
        tally(parts.files, doomed, report, "appearances")
        out.appearances.update(d.id for d in doomed)
        for d in doomed:
            if d.space is not None and d.ts is not None:
                per_day[(d.space, d.ts.astimezone(UTC).date())] += 1
    after = 0
    while doomed := parts.store.expired_keyframes(policy, after_id=after, limit=batch):
        after = doomed[-1].id
        tally(parts.files, doomed, report, "keyframes")
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


__all__ = [
    "RetentionParts",
    "RetentionReport",
    "measure",
    "policy_for",
    "retention_job",
    "retention_parts",
    "run_retention",
]
