"""Size budgets: when footage takes more than its budget, the oldest goes first.

Per-camera budgets (`retention.camera_max_bytes`) are met first, then the global one
(`retention.max_bytes`), then the disk's high-water mark when a storage check asks.
Each walks keyframes oldest first and picks what may go until the excess is covered:
appearances that are neither under legal hold nor an alert's evidence, and a keyframe
once nothing on it is kept. Held and evidence footage is never picked; when only that
is left, the budget is reported unmet with how many bytes of evidence remain.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from surveil.jobs.usage import Usage
from surveil.storage.usage import OldFrame, Overheads, SqlUsage

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
    gone = dict(already or {})
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
        report.cameras[cam] = {"budget_bytes": cam_budget, "excess_bytes": over}
        report.cameras[cam]["freed_bytes"] = pick.bytes
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
