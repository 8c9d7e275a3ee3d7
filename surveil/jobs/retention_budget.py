"""Size budgets: when footage takes more than its budget, the oldest goes first.

Per-camera budgets (`retention.camera_max_bytes`) are met first, then the global one
(`retention.max_bytes`), then the disk's high-water mark when a storage check asks.
Each walks keyframes oldest first and picks what may go until the excess is covered:
appearances that are neither under legal hold nor an alert's evidence, and a keyframe
once nothing on it is kept. Held and evidence footage is never picked; when only that
is left, the budget is reported unmet with how many bytes of evidence remain.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import structlog

from surveil import telemetry
from surveil.config import RetentionSettings
from surveil.jobs.retention_files import EarlyUnlinks
from surveil.jobs.retention_parts import (
    BudgetReport,
    RetentionParts,
    RetentionReport,
    drain,
    let_go,
    measure,
)
from surveil.jobs.usage import Usage
from surveil.search.render import iso
from surveil.storage.usage import OldFrame, Overheads, SqlUsage

log = structlog.get_logger(__name__)

#: Keyframes read per round of the oldest-first walk.
WALK_PAGE = 2000


@dataclass
class Pick:
    """What a budget chose to delete, and why."""

    appearance_ids: list[int] = field(default_factory=list)
    keyframe_ids: list[int] = field(default_factory=list)
    bytes: int = 0
    #: Of `bytes`, those of files (crops, keyframe images); the rest is rows and vectors.
    file_bytes: int = 0
    files: int = 0
    per_camera: dict[str, int] = field(default_factory=dict)


def frame_cost(frame: OldFrame, o: Overheads) -> tuple[int, bool]:
    """Bytes deleting `frame`'s free appearances (and the frame, if all go) would free."""
    freed = frame.free_crop_bytes + round(len(frame.free_ids) * o.per_appearance)
    whole = frame.kept == 0
    if whole:
        freed += frame.image_bytes + round(o.per_keyframe)
    return freed, whole


def _walk(store: SqlUsage, camera: str | None) -> Iterator[OldFrame]:
    after: tuple[datetime, int] | None = None
    while page := store.oldest_frames(camera=camera, after=after, limit=WALK_PAGE):
        yield from page
        after = (page[-1].ts, page[-1].id)


def pick_oldest(
    store: SqlUsage,
    usage: Usage,
    excess: int,
    *,
    camera: str | None,
    taken: set[int],
    skip: Callable[[OldFrame], bool] | None = None,
) -> tuple[Pick, int, datetime | None]:
    """Oldest footage (of `camera`, or all) worth `excess` bytes; frames in `taken` skipped.

    Returns the pick, the held/evidence bytes passed on the way, and the oldest kept
    frame's time (what an operator must release to free more).
    """
    pick, kept_bytes, oldest_kept = Pick(), 0, None
    o = usage.overheads
    for frame in _walk(store, camera):
        if pick.bytes >= excess:
            break
        if frame.id in taken or (skip is not None and skip(frame)):
            continue
        if frame.kept:
            kept_bytes += frame.kept_crop_bytes + frame.image_bytes
            oldest_kept = oldest_kept or frame.ts
        freed, whole = frame_cost(frame, o)
        if not freed:
            continue
        taken.add(frame.id)
        pick.appearance_ids.extend(frame.free_ids)
        pick.file_bytes += frame.free_crop_bytes
        pick.files += len(frame.free_ids)
        if whole:
            pick.keyframe_ids.append(frame.id)
            pick.file_bytes += frame.image_bytes
            pick.files += 1 if frame.image_bytes else 0
        pick.bytes += freed
        pick.per_camera[frame.camera_id] = pick.per_camera.get(frame.camera_id, 0) + freed
    return pick, kept_bytes, oldest_kept


def plan_budget(
    store: SqlUsage,
    usage: Usage,
    *,
    budget: int | None,
    camera_budgets: dict[str, int],
    disk_excess: int = 0,
    skip: Callable[[OldFrame], bool] | None = None,
    already: Mapping[str, int] | None = None,
) -> tuple[list[Pick], BudgetReport]:
    """Picks that bring each camera under its budget, then all under the global budget.

    `disk_excess` asks for at least that many bytes more (a disk over its high-water
    mark). A dry run, whose age part deleted nothing, passes what that part would free
    per camera as `already` and skips those frames with `skip`.
    """
    gone = already or {}
    report = BudgetReport(budget=budget, stored=usage.total - sum(gone.values()))
    picks: list[Pick] = []
    taken: set[int] = set()
    remaining = report.stored
    for cam, cam_budget in sorted(camera_budgets.items()):
        have = usage.cameras.get(cam)
        over = (have.bytes if have else 0) - gone.get(cam, 0) - cam_budget
        if over <= 0:
            continue
        pick, kept, oldest = pick_oldest(store, usage, over, camera=cam, taken=taken, skip=skip)
        picks.append(pick)
        remaining -= pick.bytes
        report.excess += over
        report.cameras[cam] = {
            "budget_bytes": cam_budget,
            "excess_bytes": over,
            "freed_bytes": pick.bytes,
        }
        _unmet(report, over - pick.bytes, kept, oldest)
    over = max(remaining - budget if budget is not None else 0, disk_excess)
    if over > 0:
        pick, kept, oldest = pick_oldest(store, usage, over, camera=None, taken=taken, skip=skip)
        picks.append(pick)
        report.excess += over
        _unmet(report, over - pick.bytes, kept, oldest)
    report.freed = sum(p.bytes for p in picks)
    return picks, report


def _unmet(report: BudgetReport, short: int, kept: int, oldest: datetime | None) -> None:
    if short <= 0:
        return
    report.unmet += short
    report.kept_bytes += kept
    if oldest is not None and (report.oldest_kept is None or oldest < report.oldest_kept):
        report.oldest_kept = oldest


# ---- running them ----------------------------------------------------------------------

#: Budget passes per run at most (each measures again; the second is rarely needed).
BUDGET_PASSES = 3


@dataclass
class AgeDoomed:
    """What a dry run's age part would delete (the budget preview leaves it out)."""

    appearances: set[int] = field(default_factory=set)
    keyframes: set[int] = field(default_factory=set)


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
    """Delete the picks batch by batch, each committed batch's files going at once in the
    background (as age deletes do), then work off the journal per pick."""
    with EarlyUnlinks(parts.files) as early:
        for pick in picks:
            _delete_ids(parts, pick.appearance_ids, size, report, "appearances", early)
            _delete_ids(parts, pick.keyframe_ids, size, report, "keyframes", early)
            drain(parts, report, early)


def _delete_ids(
    parts: RetentionParts,
    ids: Sequence[int],
    size: int,
    report: RetentionReport,
    kind: Literal["appearances", "keyframes"],
    early: EarlyUnlinks,
) -> None:
    """One kind of picked rows, in batches; holds and evidence re-checked under the lock."""
    delete = (
        parts.store.delete_appearances_by_id
        if kind == "appearances"
        else parts.store.delete_keyframes_by_id
    )
    for start in range(0, len(ids), size):
        let_go(parts, delete(ids[start : start + size]), report, kind, early)


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
        cam: t.bytes + o.share(t.appearances, t.keyframes) for cam, t in report.per_camera.items()
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
