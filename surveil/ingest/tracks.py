"""The ingest side of tracking: one tracker per camera, fed each keyframe's embedded crops.

The pipeline hands every keyframe (in capture order) to `IngestTracks.assign`, which
names the track each crop joined and returns the state of every track the batch touched
or closed, for the catalog to store in the same transaction as the appearances.

Track keys are the blob key of the track's first crop: deterministic, so an interrupted
ingest that resumes (and restores its open tracks from the catalog) names its tracks
exactly as an uninterrupted one would.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import structlog

from surveil.config import TrackingSettings
from surveil.domain import Crop, Keyframe, Space, TrackUpdate, Vectors
from surveil.ports import Catalog, IndexedTrack, OpenTrack, VectorIndex
from surveil.search.grouping import label_group
from surveil.tracking import CameraTracker, Member, TrackState, crop_quality

log = structlog.get_logger(__name__)

#: One crop's embedding: its space, the unit vector, and the model that made it.
Embedding = tuple[Space, Vectors, str]


@dataclass(frozen=True, slots=True)
class _Meta:
    camera_id: str
    space: Space
    model_id: str


@dataclass(frozen=True, slots=True)
class Assigned:
    """A batch's tracking result: each crop's track key and quality, and the tracks' state."""

    keys: list[list[str]]
    qualities: list[list[float]]
    updates: list[TrackUpdate]


def _member(ts: datetime, crop: Crop, vec: Vectors, quality: float) -> Member:
    return Member(
        ts=ts,
        bbox=crop.bbox,
        label=crop.label,
        confidence=crop.confidence,
        embedding=vec,
        quality=quality,
    )


class IngestTracks:
    """Per-camera trackers for one pipeline; state restored from the catalog on first use."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        settings: TrackingSettings,
        label_groups: Mapping[str, Sequence[str]],
    ) -> None:
        self._catalog = catalog
        self._settings = settings
        self._groups = label_groups
        self._trackers: dict[str, CameraTracker] = {}
        self._meta: dict[str, _Meta] = {}

    def reset(self) -> None:
        """Forget every tracker (a recorded ingest starts; state comes back from the catalog)."""
        self._trackers.clear()
        self._meta.clear()

    def _tracker(self, camera_id: str, now: datetime) -> CameraTracker:
        tracker = self._trackers.get(camera_id)
        if tracker is None:
            tracker = CameraTracker(self._settings, self._groups)
            since = now - timedelta(seconds=self._settings.max_age_seconds)
            opened = self._catalog.open_tracks(camera_id=camera_id, since=since)
            tracker.restore([self._restored(camera_id, t) for t in opened])
            if opened:
                log.info("tracks.restored", camera_id=camera_id, tracks=len(opened))
            self._trackers[camera_id] = tracker
        return tracker

    def _restored(self, camera_id: str, track: OpenTrack) -> TrackState:
        self._meta[track.key] = _Meta(camera_id, track.space, track.model_id)
        members = [
            Member(
                ts=m.ts,
                bbox=m.bbox,
                label=m.label,
                confidence=m.confidence,
                embedding=m.embedding,
                quality=m.quality,
            )
            for m in track.members
        ]
        return TrackState.from_members(track.key, track.label_group, members)

    def assign(
        self,
        batch: Sequence[Keyframe],
        crops: Sequence[Sequence[Crop]],
        vectors: Sequence[Sequence[Embedding]],
        crop_keys: Sequence[Sequence[str]],
    ) -> Assigned:
        """Step each keyframe's camera tracker, in batch order (capture order per camera)."""
        keys: list[list[str]] = []
        qualities: list[list[float]] = []
        touched: dict[str, None] = {}
        closed: dict[str, TrackState] = {}
        for kf, frame_crops, frame_vecs, frame_keys in zip(
            batch, crops, vectors, crop_keys, strict=True
        ):
            ts, camera = kf.frame.ts, kf.frame.camera_id
            tracker = self._tracker(camera, ts)
            quality = [
                crop_quality(c.image, c.bbox, c.confidence, self._settings) for c in frame_crops
            ]
            members = [
                _member(ts, c, v[1], q)
                for c, v, q in zip(frame_crops, frame_vecs, quality, strict=True)
            ]
            before = {s.key: s for s in tracker.open_tracks()}
            joined = tracker.step(ts, members, list(frame_keys))
            after = {s.key for s in tracker.open_tracks()}
            closed.update({k: s for k, s in before.items() if k not in after})
            for key, vec, crop_key in zip(joined, frame_vecs, frame_keys, strict=True):
                if key == crop_key:
                    self._meta[key] = _Meta(camera, vec[0], vec[2])
                touched[key] = None
            keys.append(joined)
            qualities.append(quality)
        open_now = {s.key: s for tracker in self._trackers.values() for s in tracker.open_tracks()}
        updates = [self._update(closed[k], closed=True) for k in closed if k not in open_now]
        updates += [self._update(open_now[k], closed=False) for k in touched if k in open_now]
        return Assigned(keys, qualities, updates)

    def _update(self, state: TrackState, *, closed: bool) -> TrackUpdate:
        meta = self._meta[state.key]
        if closed:
            self._meta.pop(state.key, None)
        return TrackUpdate(
            key=state.key,
            camera_id=meta.camera_id,
            space=meta.space,
            label_group=state.group,
            first_ts=state.first_ts,
            last_ts=state.last_ts,
            appearances=state.members,
            embedding=state.pooled(),
            model_id=meta.model_id,
            closed=closed,
        )

    def finish(self, camera_id: str) -> None:
        """A recorded source ended: close its camera's tracks, here and in the catalog."""
        tracker = self._trackers.pop(camera_id, None)
        if tracker is not None:
            for key in tracker.close_all():
                self._meta.pop(key, None)
        self._catalog.close_tracks(camera_id=camera_id)

    def group_of(self, label: str) -> str:
        """The label group a detection is tracked in."""
        return label_group(label, self._groups)


def index_tracks(index: VectorIndex, tracks: Sequence[IndexedTrack]) -> None:
    """Put each track's latest pooled vector in the index, one remove+add per space.

    A growing track's vector changes with every member, so its old entry goes first.
    """
    by_space: dict[Space, list[IndexedTrack]] = defaultdict(list)
    for track in tracks:
        by_space[track.space].append(track)
    for space, group in by_space.items():
        ids = np.asarray([t.id for t in group], dtype=np.int64)
        days = [t.day for t in group]
        index.remove(space, ids, days=set(days))
        vectors = np.ascontiguousarray(np.stack([t.vector for t in group]), dtype=np.float32)
        index.add(space, ids, vectors, days)
