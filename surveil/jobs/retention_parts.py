"""What a retention run works on and reports: its parts, its report, and the journal drain.

Shared by the age rules (surveil/jobs/retention.py) and the size budgets
(surveil/jobs/retention_budget.py): both delete rows through SqlRetention, which journals
what they leave in the index and on disk, and both end with `drain`, which works the
journal off (index, then disk) and empties it.
"""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np

from surveil.container import Services
from surveil.domain import Space
from surveil.index.reconcile import CatalogVectors
from surveil.index.sharded import UNSHARDED_DAY
from surveil.jobs.retention_files import EarlyUnlinks
from surveil.jobs.retention_slices import STATE_NAME
from surveil.jobs.retention_sweep import SweepReport
from surveil.jobs.usage import Usage, measure_usage
from surveil.ports import BlobInventory, Ids, VectorIndex
from surveil.search.render import iso
from surveil.storage.retention import FILE, VECTOR, Doomed, JournalEntry, SqlRetention
from surveil.storage.usage import SqlUsage

#: Journal entries worked off per round (bounds memory when a backlog is large).
JOURNAL_PAGE = 50_000


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
class BudgetReport:
    """One budget pass: bytes over, bytes picked, and what could not be freed."""

    budget: int | None
    stored: int
    excess: int = 0
    freed: int = 0
    unmet: int = 0
    kept_bytes: int = 0
    oldest_kept: datetime | None = None
    cameras: dict[str, dict[str, int]] = field(default_factory=dict)
    disk_target: int | None = None

    def to_dict(self) -> dict[str, object]:
        """Plain counts for --json and the job's summary."""
        return {
            "budget_bytes": self.budget,
            "stored_bytes": self.stored,
            "excess_bytes": self.excess,
            "freed_bytes": self.freed,
            "unmet_bytes": self.unmet,
            "held_or_evidence_bytes": self.kept_bytes,
            "disk_target_bytes": self.disk_target,
            "cameras": self.cameras,
        }


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


def tally(
    files: BlobInventory,
    doomed: Sequence[Doomed],
    report: RetentionReport,
    kind: Literal["appearances", "keyframes"],
) -> None:
    """Count rows and their files per camera; the totals count actual deletes (drain).

    A file's size comes from its row where ingest recorded it; only rows without one
    (stored before migration 0011) ask the blob store, in one call for the batch (an
    object store answers in parallel). Files already missing are counted by the sweep's
    "rows whose file is missing", not here.
    """
    unknown = [d.path for d in doomed if d.path and d.size is None]
    asked = iter(files.sizes(unknown) if unknown else [])
    for d in doomed:
        tally = report.per_camera[d.camera_id]
        if kind == "appearances":
            tally.appearances += 1
        else:
            tally.keyframes += 1
        if not d.path:
            continue
        size = d.size if d.size is not None else next(asked)
        if size is not None:
            tally.files += 1
            tally.bytes += size
    if kind == "appearances":
        report.appearances += len(doomed)
    else:
        report.keyframes += len(doomed)


def let_go(
    parts: RetentionParts,
    doomed: Sequence[Doomed],
    report: RetentionReport,
    kind: Literal["appearances", "keyframes"],
    early: EarlyUnlinks,
) -> None:
    """A committed batch's rows: counted first (sizes may come from the files, which are
    about to go), then their files unlinked in the background."""
    tally(parts.files, doomed, report, kind)
    early.submit([d.path for d in doomed if d.path])


def drain(parts: RetentionParts, report: RetentionReport, early: EarlyUnlinks | None = None) -> int:
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
