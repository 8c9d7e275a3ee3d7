"""The ingest side of tracking: one tracker per camera, fed each keyframe's embedded crops.

The pipeline hands every keyframe (in capture order) to `IngestTracks.assign`, which
names the track each crop joined and returns the state of every track the batch touched
or closed, for the catalog to store in the same transaction as the appearances.

Track keys are the blob key of the track's first crop: deterministic, so an interrupted
ingest that resumes (and restores its open tracks from the catalog) names its tracks
exactly as an uninterrupted one would. A recorded source's last tracks stay open when it
ends: the camera's next source (an NVR exports footage in chunks), if its first keyframe
comes within tracking.max_age of their last member, continues them the same way.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import structlog

from surveil.config import TrackingSettings
from surveil.domain import Crop, Keyframe, Space, TrackUpdate, Vectors
from surveil.ports import Catalog, IndexedTrack, OpenTrack, StoredMember, VectorIndex
from surveil.tracking import CameraTracker, Member, TrackState, crop_quality
from surveil.tracking.reuse import Continuation, ReusePlanner

log = structlog.get_logger(__name__)

#: One crop's embedding: its space, the unit vector, and the model that made it.
Embedding = tuple[Space, Vectors, str]


@dataclass(frozen=True, slots=True)
class _Meta:
    camera_id: str
    space: Space
    model_id: str


@dataclass(frozen=True, slots=True)
class Plan:
    """Per crop of a batch: its pooling quality, and the track it surely continues (or None)."""

    qualities: list[list[float]]
    continues: list[list[Continuation | None]]

    @property
    def reused(self) -> int:
        """Crops that need no embedding."""
        return sum(k is not None for frame in self.continues for k in frame)


@dataclass(slots=True)
class Assigned:
    """A batch's tracking result: each crop's track key, stored quality and embedding,
    the state of every track the batch touched or closed, and how many planned
    continuations had to be embedded after all."""

    keys: list[list[str]] = field(default_factory=list)
    qualities: list[list[float]] = field(default_factory=list)
    vectors: list[list[Embedding]] = field(default_factory=list)
    updates: list[TrackUpdate] = field(default_factory=list)
    late: int = 0


def _resolve(
    planned: Sequence[Continuation | None],
    tracks: Mapping[str, TrackState],
    joined_by_crop: Mapping[str, str],
) -> list[str | None]:
    """The track each planned continuation names, where that track is exactly as planned.

    A continuation naming an earlier crop names the track that crop joined. One whose
    track moved on since the plan (an embedded detection joined it) or that another
    continuation of this keyframe already took gets None: that crop must be embedded.
    """
    out: list[str | None] = []
    taken: set[str] = set()
    for c in planned:
        key = None if c is None else joined_by_crop.get(c.ref, c.ref)
        track = tracks.get(key) if key is not None else None
        as_planned = (
            c is not None
            and track is not None
            and (track.last_ts, track.last_bbox) == (c.last_ts, c.last_box)
        )
        if as_planned and key not in taken:
            taken.add(str(key))
            out.append(key)
        else:
            out.append(None)
    return out


def as_member(m: StoredMember) -> Member:
    """A stored member as the tracker steps it (a resume, the backfill)."""
    return Member(
        ts=m.ts,
        bbox=m.bbox,
        label=m.label,
        confidence=m.confidence,
        embedding=m.embedding,
        quality=m.quality,
    )


def track_update(
    state: TrackState, camera_id: str, space: Space, model_id: str, *, closed: bool
) -> TrackUpdate:
    """The catalog row a track's state becomes."""
    return TrackUpdate(
        key=state.key,
        camera_id=camera_id,
        space=space,
        label_group=state.group,
        first_ts=state.first_ts,
        last_ts=state.last_ts,
        appearances=state.members,
        embedding=state.pooled(),
        model_id=model_id,
        closed=closed,
    )


def _member(ts: datetime, crop: Crop, vec: Embedding, quality: float) -> Member:
    return Member(
        ts=ts,
        bbox=crop.bbox,
        label=crop.label,
        confidence=crop.confidence,
        embedding=vec[1],
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
            # Footage ingested out of order (an earlier file after a later one) never
            # continues a track backwards in time.
            opened = [t for t in opened if t.members and t.members[-1].ts <= now]
            tracker.restore([self._restored(camera_id, t) for t in opened])
            if opened:
                log.info("tracks.restored", camera_id=camera_id, tracks=len(opened))
            self._trackers[camera_id] = tracker
        return tracker

    def _restored(self, camera_id: str, track: OpenTrack) -> TrackState:
        self._meta[track.key] = _Meta(camera_id, track.space, track.model_id)
        members = [as_member(m) for m in track.members]
        return TrackState.from_members(track.key, track.label_group, members)

    def plan(
        self,
        batch: Sequence[Keyframe],
        crops: Sequence[Sequence[Crop]],
        crop_keys: Sequence[Sequence[str]],
    ) -> Plan:
        """Which crops of the batch surely continue an object, so need no embedding.

        Each camera's keyframes are planned in order from its tracks as they stand before
        the batch (`ReusePlanner`); `assign` then steps every keyframe.
        """
        planners: dict[str, ReusePlanner] = {}
        qualities: list[list[float]] = []
        continues: list[list[Continuation | None]] = []
        for kf, frame_crops, frame_keys in zip(batch, crops, crop_keys, strict=True):
            ts, camera = kf.frame.ts, kf.frame.camera_id
            quality = [
                crop_quality(c.image, c.bbox, c.confidence, self._settings) for c in frame_crops
            ]
            planner = planners.get(camera)
            if planner is None:
                tracks = self._tracker(camera, ts).open_tracks()
                planner = planners[camera] = ReusePlanner(self._settings, self._groups, tracks)
            boxes, labels = [c.bbox for c in frame_crops], [c.label for c in frame_crops]
            continues.append(planner.keyframe(ts, frame_keys, boxes, labels, quality))
            qualities.append(quality)
        return Plan(qualities, continues)

    def assign(
        self,
        batch: Sequence[Keyframe],
        crops: Sequence[Sequence[Crop]],
        plan: Plan,
        embedded: Sequence[Sequence[Embedding | None]],
        crop_keys: Sequence[Sequence[str]],
        embed: Callable[[Sequence[Crop]], list[Embedding]],
    ) -> Assigned:
        """Step each keyframe's camera tracker, in batch order (capture order per camera).

        `embedded` holds the embedder's vector of every crop the plan did not continue;
        a continued crop takes its track's latest vector, with pooling weight 0. A
        continuation whose track is no longer as planned is embedded now with `embed`.
        """
        out = Assigned()
        #: Crop key -> the track it joined, for continuations that name an earlier crop.
        joined_by_crop: dict[str, str] = {}
        touched: dict[str, None] = {}
        closed: dict[str, TrackState] = {}
        for k, kf in enumerate(batch):
            tracker = self._tracker(kf.frame.camera_id, kf.frame.ts)
            before = {s.key: s for s in tracker.open_tracks()}
            continues = _resolve(plan.continues[k], before, joined_by_crop)
            full, late = self._vectors(
                crops[k], embedded[k], plan.continues[k], continues, before, embed
            )
            out.late += late
            weights = [0.0 if c else q for q, c in zip(plan.qualities[k], continues, strict=True)]
            joined = tracker.step(
                kf.frame.ts,
                [_member(kf.frame.ts, *m) for m in zip(crops[k], full, weights, strict=True)],
                list(crop_keys[k]),
                continues,
            )
            closed.update({key: s for key, s in before.items() if key not in tracker.open_keys()})
            joined_by_crop.update(zip(crop_keys[k], joined, strict=True))
            for key, vec, crop_key in zip(joined, full, crop_keys[k], strict=True):
                if key == crop_key:
                    self._meta[key] = _Meta(kf.frame.camera_id, vec[0], vec[2])
                touched[key] = None
            out.keys.append(joined)
            out.qualities.append(weights)
            out.vectors.append(full)
        out.updates = self._updates(closed, touched)
        return out

    def _vectors(
        self,
        crops: Sequence[Crop],
        embedded: Sequence[Embedding | None],
        planned: Sequence[Continuation | None],
        continues: Sequence[str | None],
        tracks: Mapping[str, TrackState],
        embed: Callable[[Sequence[Crop]], list[Embedding]],
    ) -> tuple[list[Embedding], int]:
        """A keyframe's vectors: embedded, carried from the track continued, or (for a
        continuation that did not hold) embedded now; and how many were embedded now."""
        late = [n for n, (p, c) in enumerate(zip(planned, continues, strict=True)) if p and not c]
        now = dict(zip(late, embed([crops[n] for n in late]), strict=True))
        out: list[Embedding] = []
        for n, (vec, key) in enumerate(zip(embedded, continues, strict=True)):
            found = self._carried(tracks[key]) if key else now.get(n, vec)
            if found is None:
                raise ValueError("a crop has neither an embedding nor a track to continue")
            out.append(found)
        return out, len(late)

    def _updates(
        self, closed: Mapping[str, TrackState], touched: Mapping[str, None]
    ) -> list[TrackUpdate]:
        """The catalog state of every track a batch closed or touched."""
        open_now = {s.key: s for t in self._trackers.values() for s in t.open_tracks()}
        updates = [self._update(closed[k], closed=True) for k in closed if k not in open_now]
        updates += [self._update(open_now[k], closed=False) for k in touched if k in open_now]
        return updates

    def _carried(self, track: TrackState) -> Embedding:
        """The vector a continued crop carries: its track's latest, in the track's space."""
        meta = self._meta[track.key]
        return (meta.space, track.last_embedding, meta.model_id)

    def _update(self, state: TrackState, *, closed: bool) -> TrackUpdate:
        meta = self._meta[state.key]
        if closed:
            self._meta.pop(state.key, None)
        return track_update(state, meta.camera_id, meta.space, meta.model_id, closed=closed)


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
        metas = [t.meta for t in group if t.meta is not None]
        index.add(space, ids, vectors, days, meta=metas if len(metas) == len(group) else None)
