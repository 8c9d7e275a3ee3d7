"""Track what was stored before tracks existed: `surveil tracks backfill`.

Migration 0005 turned every pre-track appearance into a track of its own (same id, same
vector, so search kept working). This runs the same tracker ingest uses over those
appearances, camera by camera in capture order, from the boxes and embeddings already
stored, so an upgraded site ends up tracked like a new one. Each page is one
transaction; a run killed midway leaves every appearance in exactly one track and the
next run carries on with what is still one-member.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

import numpy as np
import structlog

from surveil.config import TrackingSettings
from surveil.domain import Space, TrackUpdate
from surveil.ingest.tracks import as_member, index_tracks, track_update
from surveil.ports import Catalog, IndexedTrack, LegacyMember, VectorIndex
from surveil.tracking import CameraTracker, TrackState

log = structlog.get_logger(__name__)

#: Appearances read and re-tracked per transaction.
PAGE = 5_000


@dataclass
class BackfillReport:
    """What the backfill did, per camera: appearances re-tracked, tracks they now form."""

    appearances: dict[str, int] = field(default_factory=dict)
    tracks: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """The `--json` object."""
        return {
            "appearances": sum(self.appearances.values()),
            "tracks": sum(self.tracks.values()),
            "cameras": {
                c: {"appearances": n, "tracks": self.tracks.get(c, 0)}
                for c, n in sorted(self.appearances.items())
            },
        }


class Backfill:
    """Re-tracks one camera's one-member legacy tracks page by page."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        index: VectorIndex,
        settings: TrackingSettings,
        label_groups: Mapping[str, Sequence[str]],
    ) -> None:
        self._catalog = catalog
        self._index = index
        self._settings = settings
        self._groups = label_groups

    def run(self, *, progress: Callable[[int], object] | None = None) -> BackfillReport:
        """Backfill every camera that still has legacy tracks; saves the index at the end."""
        report = BackfillReport()
        for camera in self._catalog.legacy_cameras():
            self._camera(camera, report, progress)
        self._index.save()
        return report

    def _camera(
        self, camera: str, report: BackfillReport, progress: Callable[[int], object] | None
    ) -> None:
        tracker = CameraTracker(self._settings, self._groups)
        meta: dict[str, tuple[Space, str]] = {}
        seen: set[str] = set()
        after: tuple[datetime, int] | None = None
        done = 0
        while page := self._catalog.legacy_members(camera_id=camera, after=after, limit=PAGE):
            last = page[-1]
            # A keyframe is stepped whole: never split one across two pages.
            if len(page) == PAGE:
                page = [m for m in page if m.keyframe_id != last.keyframe_id] or page
            after = (page[-1].member.ts, page[-1].appearance_id)
            assignments, updates = self._page(tracker, page, meta, camera)
            indexed, gone = self._catalog.retrack(assignments, updates)
            self._follow_index(indexed, gone)
            seen.update(k for _, k in assignments)
            done += len(page)
            if progress is not None:
                progress(len(page))
        for key in tracker.close_all():
            meta.pop(key, None)
        self._catalog.close_tracks(camera_id=camera)
        report.appearances[camera] = done
        report.tracks[camera] = len(seen)
        log.info("tracks.backfilled", camera_id=camera, appearances=done, tracks=len(seen))

    def _page(
        self,
        tracker: CameraTracker,
        page: Sequence[LegacyMember],
        meta: dict[str, tuple[Space, str]],
        camera: str,
    ) -> tuple[list[tuple[int, str]], list[TrackUpdate]]:
        assignments: list[tuple[int, str]] = []
        touched: dict[str, None] = {}
        closed: dict[str, TrackState] = {}
        for _, group in itertools.groupby(page, key=lambda m: m.keyframe_id):
            members = list(group)
            before = {s.key: s for s in tracker.open_tracks()}
            keys = tracker.step(
                members[0].member.ts,
                [as_member(m.member) for m in members],
                [f"backfill:{m.crop_path}" for m in members],
            )
            after = {s.key for s in tracker.open_tracks()}
            closed.update({k: s for k, s in before.items() if k not in after})
            for m, key in zip(members, keys, strict=True):
                meta.setdefault(key, (m.space, m.model_id))
                touched[key] = None
                assignments.append((m.appearance_id, key))
        open_now = {s.key: s for s in tracker.open_tracks()}
        updates = [
            track_update(s, camera, *meta[k], closed=True)
            for k, s in closed.items()
            if k not in open_now
        ]
        updates += [
            track_update(open_now[k], camera, *meta[k], closed=False)
            for k in touched
            if k in open_now
        ]
        return assignments, updates

    def _follow_index(
        self, indexed: Sequence[IndexedTrack], gone: Sequence[tuple[int, str, datetime]]
    ) -> None:
        """Emptied legacy tracks leave the index; the tracks they joined go in."""
        by_space: dict[Space, list[tuple[int, datetime]]] = {}
        for track_id, space, first_ts in gone:
            by_space.setdefault(cast(Space, space), []).append((track_id, first_ts))
        for space, items in by_space.items():
            ids = np.asarray([i for i, _ in items], dtype=np.int64)
            self._index.remove(space, ids, days={ts.date() for _, ts in items})
        index_tracks(self._index, indexed)
