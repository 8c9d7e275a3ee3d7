"""The seams between surveil's rooms.

`ingest/`, `search/`, `jobs/` and `api/` talk to these Protocols only; `container.py`
is the one place that picks the concrete class behind each.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from surveil.domain import (
    ApiKeyInfo,
    AuditEntry,
    BBox,
    CameraInfo,
    CameraStats,
    Detections,
    Feedback,
    FeedbackTarget,
    Frame,
    Image,
    KeyframeRecord,
    NewAuditEntry,
    NewKeyframe,
    Role,
    SearchFilters,
    Space,
    SpaceFloor,
    StoredAppearance,
    StoredTrack,
    TrackUpdate,
    Vectors,
    Verdict,
)

Ids = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """What a recorded source says about itself before the first frame is read."""

    uri: str
    fingerprint: str
    fps: float
    frame_count: int | None
    start: datetime


class FrameSource(Protocol):
    """Decodes one camera's frames in order; an iterator that can be closed early."""

    @property
    def info(self) -> SourceInfo: ...

    def frames(self) -> Iterator[Frame]: ...

    @property
    def corrupt_frames(self) -> int: ...

    def close(self) -> None: ...


class Detector(Protocol):
    """Finds objects in a batch of images.

    `streams` names the camera each image came from, for detectors that keep state per
    camera (motion); None means lone images (a query crop) that must change no state.
    """

    @property
    def name(self) -> str: ...

    def detect(
        self, images: Sequence[Image], *, streams: Sequence[str] | None = None
    ) -> list[Detections]: ...


@runtime_checkable
class CropDetector(Detector, Protocol):
    """A detector with a cheap path for one lone query crop (search by example, no label).

    A crop of ~100 px needs no full-size detection to be told person from vehicle;
    detectors without this path are asked with `detect([crop])`.
    """

    def detect_crop(self, image: Image) -> Detections: ...


class Embedder(Protocol):
    """Maps a batch of crops to L2-normalised float32 vectors in one space."""

    @property
    def space(self) -> Space: ...

    @property
    def model_id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed(self, crops: Sequence[Image]) -> Vectors: ...


@dataclass(frozen=True, slots=True)
class IndexHit:
    """One nearest neighbour from the vector index."""

    id: int
    score: float


@dataclass(frozen=True, slots=True)
class VectorMeta:
    """What a filter inside the vector search needs of one indexed track.

    `label` is the track's label group (a car seen as a truck is one vehicle track), and
    the time span lets a time window keep every track with a member inside it.
    """

    camera_id: str
    label: str
    first_ts: datetime
    last_ts: datetime


class VectorIndex(Protocol):
    """Nearest-neighbour search by inner product, one index per space, sharded by day.

    `filters_inside` says whether `search` applies `cameras` and `labels` (label groups)
    itself, before its top-k cut (Milvus); an index without it ignores them and the
    caller filters after the cut, over-fetching (FAISS, whose time shards still honour
    since/until). `add` takes each id's metadata for those filters; an index that does
    not filter may be given none.
    """

    @property
    def filters_inside(self) -> bool: ...

    def add(
        self,
        space: Space,
        ids: Ids,
        vectors: Vectors,
        days: Sequence[date],
        *,
        meta: Sequence[VectorMeta] | None = None,
    ) -> None: ...

    def search(
        self,
        space: Space,
        vector: Vectors,
        k: int,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        cameras: Collection[str] | None = None,
        labels: Collection[str] | None = None,
    ) -> list[IndexHit]: ...

    def search_above(
        self,
        space: Space,
        vector: Vectors,
        min_score: float,
        limit: int,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        cameras: Collection[str] | None = None,
        labels: Collection[str] | None = None,
    ) -> list[IndexHit]:
        """Every id scoring >= min_score (at most `limit`, the best), best first, in one
        pass where the index can: what a search needs when its k-th hit still passes."""
        ...

    def remove(self, space: Space, ids: Ids, *, days: Collection[date] | None = None) -> int: ...

    def ids_by_day(
        self, space: Space, *, days: Collection[date] | None = None
    ) -> dict[date, Ids]: ...

    def counts_by_day(self, space: Space) -> dict[date, int]: ...

    def size(self, space: Space) -> int: ...

    def save(self) -> None: ...

    def refresh(self) -> bool: ...

    def drop_shard(self, space: Space, day: date) -> bool: ...

    def saved_at(self, space: Space) -> dict[date, datetime]: ...


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """A recorded source as the catalog knows it; `last_frame_index` says where to resume."""

    id: int
    camera_id: str
    uri: str
    fingerprint: str
    complete: bool
    last_frame_index: int | None


@dataclass(frozen=True, slots=True)
class VectorBatch:
    """Stored embeddings read back for rebuilding or reconciling an index."""

    ids: Ids
    days: list[date]
    vectors: Vectors
    #: Per-id filter fields (camera, label group, time span), for indexes that filter.
    meta: list[VectorMeta] | None = None


@dataclass(frozen=True, slots=True)
class IndexedTrack:
    """What the vector index needs of a committed track: id, space, shard day, vector."""

    id: int
    space: Space
    day: date
    vector: Vectors
    meta: VectorMeta | None = None


@dataclass(frozen=True, slots=True)
class StoredMember:
    """One member of an open track, as a resumed tracker rebuilds its state from it."""

    appearance_id: int
    ts: datetime
    bbox: BBox
    label: str
    confidence: float
    embedding: Vectors
    quality: float


@dataclass(frozen=True, slots=True)
class OpenTrack:
    """A track left open by an earlier run, with its members in time order."""

    key: str
    label_group: str
    space: Space
    model_id: str
    members: tuple[StoredMember, ...]


@dataclass(frozen=True, slots=True)
class LegacyMember:
    """A pre-track appearance still in its migrated one-member track, for the backfill."""

    appearance_id: int
    keyframe_id: int
    track_id: int
    crop_path: str
    space: Space
    model_id: str
    member: StoredMember


@dataclass(frozen=True, slots=True)
class MemberVectors:
    """Members of some tracks as three aligned arrays: what a search re-scores them by.

    Row i is appearance `ids[i]` of track `tracks[i]` with stored vector `vectors[i]`:
    no per-member objects, so re-scoring a few thousand members is one matrix product.
    """

    tracks: Ids
    ids: Ids
    vectors: Vectors


@dataclass(frozen=True, slots=True)
class CommittedBatch:
    """Ids a committed batch got: appearances per keyframe, and every track it touched."""

    appearance_ids: list[list[int]]
    tracks: list[IndexedTrack]


class Catalog(Protocol):
    """The system of record: cameras, sources, keyframes and appearances."""

    def ensure_camera(self, camera_id: str, *, name: str | None = None) -> None: ...

    def camera_ids(self) -> list[str]: ...

    def open_source(
        self, *, camera_id: str, uri: str, fingerprint: str, start: datetime, fps: float
    ) -> SourceRecord: ...

    def finish_source(self, *, source_id: int, frames_read: int) -> None: ...

    def get_source(self, *, source_id: int) -> SourceRecord | None: ...

    def source_blob_keys(self, *, source_id: int) -> set[str]: ...

    def add_keyframes(self, batch: Sequence[NewKeyframe]) -> list[list[int]]: ...

    def add_tracked(
        self, batch: Sequence[NewKeyframe], tracks: Sequence[TrackUpdate] = ()
    ) -> CommittedBatch: ...

    def track_members(
        self, track_ids: Sequence[int], *, filters: SearchFilters | None = None
    ) -> dict[int, list[StoredAppearance]]: ...

    def member_vectors(
        self, space: Space, track_ids: Sequence[int], *, filters: SearchFilters | None = None
    ) -> MemberVectors: ...

    def tracks(self, track_ids: Sequence[int]) -> list[StoredTrack]: ...

    def track_vectors(self, space: Space, track_ids: Sequence[int]) -> tuple[Ids, Vectors]: ...

    def track_embedding(self, track_id: int) -> tuple[Space, Vectors]: ...

    def open_tracks(self, *, camera_id: str, since: datetime) -> list[OpenTrack]: ...

    def close_tracks(self, *, camera_id: str, keys: Sequence[str] | None = None) -> int: ...

    def count_tracks(self, space: Space | None = None) -> int: ...

    def tracks_changed_since(
        self, space: Space, since: datetime, *, day: date | None = None
    ) -> Ids: ...

    # ---- the backfill of appearances stored before tracks --------------------------------

    def legacy_cameras(self) -> list[str]: ...

    def legacy_members(
        self, *, camera_id: str, after: tuple[datetime, int] | None, limit: int
    ) -> list[LegacyMember]: ...

    def retrack(
        self, assignments: Sequence[tuple[int, str]], tracks: Sequence[TrackUpdate]
    ) -> tuple[list[IndexedTrack], list[tuple[int, str, datetime]]]: ...

    def appearances(
        self, ids: Sequence[int], *, filters: SearchFilters | None = None
    ) -> list[StoredAppearance]: ...

    def appearance_embedding(self, appearance_id: int) -> tuple[Space, Vectors]: ...

    def appearance_vectors(self, space: Space, ids: Sequence[int]) -> dict[int, Vectors]: ...

    def iter_vectors(
        self, space: Space, *, ids: Sequence[int] | None = None, batch_size: int = 10_000
    ) -> Iterator[VectorBatch]: ...

    def ids_by_day(
        self, space: Space, *, days: Collection[date] | None = None
    ) -> dict[date, Ids]: ...

    def counts_by_day(self, space: Space) -> dict[date, int]: ...

    def count_appearances(self, space: Space | None = None) -> int: ...

    def best_appearance(self, *, label: str) -> StoredAppearance | None: ...

    # ---- browsing and administration (the API and console) -----------------------------

    def get_keyframe(self, *, keyframe_id: int) -> KeyframeRecord | None: ...

    def keyframe_appearances(self, *, keyframe_id: int) -> list[StoredAppearance]: ...

    def stats(self) -> list[CameraStats]: ...

    def list_cameras(self) -> list[CameraInfo]: ...

    def get_camera(self, camera_id: str) -> CameraInfo: ...

    def create_camera(
        self,
        *,
        camera_id: str,
        name: str | None,
        url: str | None,
        enabled: bool = True,
        tags: Sequence[str] = (),
    ) -> CameraInfo: ...

    def update_camera(
        self,
        camera_id: str,
        *,
        name: str | None = None,
        url: str | None = None,
        enabled: bool | None = None,
        tags: Sequence[str] | None = None,
    ) -> CameraInfo: ...

    def camera_keyframes(
        self,
        *,
        camera_id: str,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 60,
    ) -> list[tuple[KeyframeRecord, int]]: ...


class AccessStore(Protocol):
    """API keys (stored hashed) and the append-only audit trail."""

    def create_key(self, *, name: str, role: Role) -> tuple[ApiKeyInfo, str]: ...

    def authenticate(self, key: str, *, touch_after: timedelta) -> ApiKeyInfo | None: ...

    def list_keys(self, *, include_revoked: bool = True) -> list[ApiKeyInfo]: ...

    def revoke_key(self, key_id: int) -> ApiKeyInfo: ...

    def record(self, entry: NewAuditEntry) -> int: ...

    def audit_entries(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        action: str | None = None,
        key_id: int | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]: ...

    def audit_entry(self, entry_id: int) -> AuditEntry: ...

    def audit_hits(self, entry_id: int) -> list[tuple[int, float]]: ...


class FeedbackStore(Protocol):
    """Operators' verdicts on hits, one per (query, hit), and calibrated space floors."""

    def mark(
        self,
        target: FeedbackTarget,
        *,
        verdict: Verdict,
        space: Space,
        score: float | None,
        key_id: int | None,
        key_name: str,
    ) -> Feedback: ...

    def clear(self, target: FeedbackTarget) -> bool: ...

    def for_search(self, audit_id: int) -> list[Feedback]: ...

    def for_rule(self, rule_id: int) -> list[Feedback]: ...

    def for_space(self, space: Space) -> list[Feedback]: ...

    def floor(self, space: Space) -> SpaceFloor | None: ...

    def set_floor(
        self, space: Space, *, min_score: float, precision: float, labels: int, by: str
    ) -> SpaceFloor: ...


class BlobStat(Protocol):
    """What retention reads of a stored blob (os.stat_result fits, as do S3 listings)."""

    @property
    def st_size(self) -> int: ...

    @property
    def st_mtime(self) -> float: ...


class StoredBlob(Protocol):
    """A blob met in a walk: its key now, its size and age only when asked."""

    @property
    def key(self) -> str: ...

    def stat(self) -> BlobStat | None: ...


class BlobInventory(Protocol):
    """Retention's view of a blob store: weigh, delete in bulk, walk in key order, lock.

    Sizes and deletes return None for keys that are already gone, so a re-run after a
    crash counts only what it removed itself. `walk` yields keys in code-point order
    (the sweep merges it with the catalog's sorted keys) and lists each page before
    yielding it, so callers may delete what they are given. `folders` lists the
    subfolders of a folder key (one level, sorted): the units an incremental sweep
    takes a slice of without listing every file.
    """

    def size(self, key: str) -> int | None: ...

    def sizes(self, keys: Sequence[str]) -> list[int | None]: ...

    def delete(self, key: str) -> int | None: ...

    def delete_many(self, keys: Sequence[str]) -> list[int | None]: ...

    def walk(self, prefix: str, *, prune_before: float | None = None) -> Iterator[StoredBlob]: ...

    def folders(self, prefix: str) -> list[str]: ...

    def run_lock(self) -> AbstractContextManager[None]: ...


class BlobStore(Protocol):
    """Crop and keyframe JPEGs, addressed by relative keys; writes are atomic.

    `get` raises FileNotFoundError for a key with no blob; a store that cannot be
    reached raises BlobStoreUnavailableError (a ConfigError naming what to check).
    `claim` is a cross-process exclusive hold on a name (ConflictError when another
    process holds it), released when the holder exits or dies: how an ingest tells that
    nobody else is writing a source's files right now.
    """

    def put(self, key: str, data: bytes) -> None: ...

    def put_many(self, items: Sequence[tuple[str, bytes]]) -> None: ...

    def get(self, key: str) -> bytes: ...

    def delete(self, key: str) -> bool: ...

    def exists(self, key: str) -> bool: ...

    def keys(self, prefix: str) -> Iterator[str]: ...

    def claim(self, name: str) -> AbstractContextManager[None]: ...

    def inventory(self) -> BlobInventory: ...

    def close(self) -> None: ...


class Clock(Protocol):
    """Where 'now' comes from, so jobs and tests can pin it."""

    def now(self) -> datetime: ...
