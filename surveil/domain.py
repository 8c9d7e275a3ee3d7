"""Plain data that flows through surveil; no framework imports live here.

Images are numpy arrays in OpenCV's BGR order, HxWx3 uint8. Boxes are
``(x1, y1, x2, y2)`` float pixels in the original frame. Times are aware UTC
datetimes.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]
Vectors = npt.NDArray[np.float32]
BBox = tuple[float, float, float, float]

#: Embedding spaces: each has its own model and its own vector index.
Space = Literal["person", "general"]
SPACES: tuple[Space, ...] = ("person", "general")


class SurveilError(Exception):
    """An error whose message is meant for the operator, one line, saying what to do."""


class InputError(SurveilError):
    """Bad input from the user (file, filter, crop); nothing was changed."""


class AlreadyIngestedError(InputError):
    """The same content was already ingested completely for this camera."""


class ConfigError(SurveilError):
    """Settings that cannot work (missing model file, bad key)."""


class BlobStoreUnavailableError(ConfigError):
    """The blob store cannot be reached or refuses us (endpoint, bucket, credentials).

    A ConfigError so the CLI prints its one line and the API answers 503: retrying
    helps only once the operator fixed what the message names.
    """


class ModelMismatchError(ConfigError):
    """The configured embedder is not the model a space's stored vectors came from."""


class NotFoundError(InputError):
    """The named thing (appearance, keyframe, camera, key) does not exist."""


class ConflictError(InputError):
    """The change collides with what exists (a camera id already taken)."""


_CAMERA_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}")


def validate_camera_id(camera_id: str) -> str:
    """Refuse camera ids that could not safely name a folder (they become blob key parts)."""
    if not _CAMERA_ID.fullmatch(camera_id):
        raise InputError(
            f"camera id {camera_id!r} is not allowed: use 1-64 letters, digits, '.', '_' "
            "or '-', not starting with '.'"
        )
    return camera_id


_TAG = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,31}")


def validate_tags(tags: Sequence[str]) -> tuple[str, ...]:
    """Camera tags ("gpu", "heavy") that pin cameras to workers; sorted, no duplicates.

    They are stored comma-separated, so a tag is a short name without commas or spaces.
    """
    for tag in tags:
        if not _TAG.fullmatch(tag):
            raise InputError(
                f"camera tag {tag!r} is not allowed: use 1-32 letters, digits, '.', '_' or '-'"
            )
    return tuple(sorted(set(tags)))


_SECRET_QUERY_KEYS = ("pass", "pwd", "token", "secret", "key", "auth", "sig")


def mask_credentials(url: str) -> str:
    """A stream URL safe to log or show: password and secret-looking query values hidden."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
    query = urlencode(
        [
            (k, "***" if any(s in k.lower() for s in _SECRET_QUERY_KEYS) else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="*",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def parse_time(text: str | None, option: str) -> datetime | None:
    """ISO 8601 to aware UTC; a time without an offset is taken as UTC."""
    if text is None:
        return None
    try:
        ts = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InputError(
            f"{option} '{text}' is not an ISO 8601 time (for example 2026-11-22T08:00:00Z)"
        ) from None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _require_utc(ts: datetime, what: str) -> None:
    if ts.tzinfo is None or ts.utcoffset() != timedelta(0):
        raise ValueError(f"{what} must be an aware UTC datetime, got {ts!r}")


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame of a source, with its capture time."""

    camera_id: str
    index: int
    ts: datetime
    image: Image

    def __post_init__(self) -> None:
        _require_utc(self.ts, "Frame.ts")


@dataclass(frozen=True, slots=True)
class Keyframe:
    """A frame kept by keyframe selection, and why it was kept."""

    frame: Frame
    reason: Literal["first", "motion", "histogram", "heartbeat", "all"]


@dataclass(frozen=True, slots=True, eq=False)
class Detections:
    """Boxes found in one image; arrays are shape-checked so adapters cannot drift."""

    xyxy: npt.NDArray[np.float32]
    confidence: npt.NDArray[np.float32]
    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        n = len(self.labels)
        if self.xyxy.shape != (n, 4):
            raise ValueError(f"xyxy must have shape ({n}, 4), got {self.xyxy.shape}")
        if self.confidence.shape != (n,):
            raise ValueError(f"confidence must have shape ({n},), got {self.confidence.shape}")

    def __len__(self) -> int:
        return len(self.labels)

    @classmethod
    def empty(cls) -> Detections:
        return cls(
            xyxy=np.zeros((0, 4), np.float32), confidence=np.zeros((0,), np.float32), labels=()
        )

    def select(self, keep: npt.NDArray[np.bool_]) -> Detections:
        """Subset by a boolean mask, keeping the three arrays aligned."""
        return Detections(
            xyxy=self.xyxy[keep],
            confidence=self.confidence[keep],
            labels=tuple(lbl for lbl, k in zip(self.labels, keep, strict=True) if k),
        )


@dataclass(frozen=True, slots=True)
class Crop:
    """One detected object cut out of a keyframe, ready to embed."""

    bbox: BBox
    label: str
    confidence: float
    image: Image


@dataclass(frozen=True, slots=True)
class NewAppearance:
    """An appearance about to be stored; the catalog assigns its id."""

    bbox: BBox
    label: str
    confidence: float
    space: Space
    embedding: Vectors
    model_id: str
    crop_path: str
    #: Pooling weight in its track's vector (crop quality); 1.0 where nothing better is known.
    quality: float = 1.0
    #: The tracker's key of the track it joined; None stores it as a track of its own.
    track_key: str | None = None
    #: Bytes of the stored crop (what size budgets count); None: not known, sized later.
    crop_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class TrackUpdate:
    """A track as the tracker holds it after a batch: the catalog row is set to this."""

    key: str
    camera_id: str
    space: Space
    label_group: str
    first_ts: datetime
    last_ts: datetime
    appearances: int
    embedding: Vectors
    model_id: str
    closed: bool = False


@dataclass(frozen=True, slots=True)
class NewKeyframe:
    """A keyframe about to be stored together with its appearances, in one transaction."""

    camera_id: str
    source_id: int
    frame_index: int
    ts: datetime
    width: int
    height: int
    image_path: str | None
    appearances: tuple[NewAppearance, ...]
    #: Bytes of the stored image (what size budgets count); None: not known, sized later.
    image_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class StoredAppearance:
    """An appearance as the catalog holds it (the embedding is loaded only on demand)."""

    id: int
    keyframe_id: int
    camera_id: str
    ts: datetime
    frame_index: int
    label: str
    confidence: float
    bbox: BBox
    space: Space
    model_id: str
    crop_path: str
    track_id: int | None = None


@dataclass(frozen=True, slots=True)
class StoredTrack:
    """A track as the catalog holds it (its pooled vector is loaded only on demand)."""

    id: int
    camera_id: str
    space: Space
    label: str
    label_group: str
    first_ts: datetime
    last_ts: datetime
    appearances: int
    best_appearance_id: int | None
    closed: bool


@dataclass(frozen=True, slots=True)
class KeyframeRecord:
    """A stored keyframe, for showing the whole scene of a result."""

    id: int
    camera_id: str
    source_id: int
    frame_index: int
    ts: datetime
    width: int
    height: int
    image_path: str | None


@dataclass(frozen=True, slots=True)
class CameraStats:
    """What the catalog holds for one camera."""

    camera_id: str
    sources: int
    keyframes: int
    appearances: int
    first_ts: datetime | None
    last_ts: datetime | None


@dataclass(frozen=True, slots=True)
class SearchFilters:
    """What an operator narrows a search by; empty means no restriction."""

    cameras: frozenset[str] = frozenset()
    since: datetime | None = None
    until: datetime | None = None
    labels: frozenset[str] = frozenset()
    #: Cosine floor; None: the searched space's calibrated default (search settings).
    min_score: float | None = None

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            ts = getattr(self, name)
            if ts is not None:
                _require_utc(ts, f"SearchFilters.{name}")
        if self.since and self.until and self.since > self.until:
            raise InputError(
                f"--since {self.since.isoformat()} is after --until {self.until.isoformat()}"
            )
        if self.min_score is not None and not -1.0 <= self.min_score <= 1.0:
            raise InputError(f"--min-score must be between -1 and 1, got {self.min_score}")


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """A search by example: one query vector in one space, plus filters."""

    space: Space
    vector: Vectors
    filters: SearchFilters = field(default_factory=SearchFilters)
    limit: int = 50


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One stored appearance that matched, with its similarity score."""

    appearance: StoredAppearance
    score: float


@dataclass(frozen=True, slots=True)
class Sighting:
    """One track that matched: what an operator reads as 'seen here', hits ordered by time."""

    camera_id: str
    label: str
    first_seen: datetime
    last_seen: datetime
    best_score: float
    hits: tuple[SearchHit, ...]
    track_id: int | None = None


@dataclass(frozen=True, slots=True)
class IngestStats:
    """Counts an ingest run reports; timings are seconds spent per stage."""

    source_id: int
    frames_read: int
    keyframes: int
    appearances: int
    corrupt_frames: int = 0
    resumed_from: int | None = None
    reused_embeddings: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    #: Degraded modes and retention notices: said in --json and the summary.
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        """The documented `surveil ingest --json` object."""
        return {
            "source_id": self.source_id,
            "frames_read": self.frames_read,
            "keyframes": self.keyframes,
            "appearances": self.appearances,
            "corrupt_frames": self.corrupt_frames,
            "resumed_from": self.resumed_from,
            "reused_embeddings": self.reused_embeddings,
            "seconds": {k: round(v, 3) for k, v in sorted(self.seconds.items())},
            "warnings": list(self.warnings),
        }

    def summary(self) -> str:
        """One line for people."""
        total = sum(self.seconds.values())
        text = (
            f"source #{self.source_id}: read {self.frames_read} frames, kept {self.keyframes} "
            f"keyframes, stored {self.appearances} appearances in {total:.1f}s"
        )
        if self.corrupt_frames:
            text += f" ({self.corrupt_frames} corrupt frames skipped)"
        if self.resumed_from is not None:
            text += f" (resumed after frame {self.resumed_from})"
        return "\n".join([text, *(f"warning: {w}" for w in self.warnings)])


def as_vectors(rows: Sequence[Sequence[float]] | Vectors) -> Vectors:
    """Coerce to a C-contiguous float32 matrix, the only layout FAISS and our blobs accept."""
    return np.ascontiguousarray(np.asarray(rows, dtype=np.float32))


def space_for(label: str, person_labels: Collection[str]) -> Space:
    """The embedding space a detection label is embedded in."""
    return "person" if label in person_labels else "general"


def label_group(label: str, groups: Mapping[str, Sequence[str]]) -> str:
    """The group a label belongs to; a label in no group is its own group.

    Detectors flip between 'car' and 'truck' on the same vehicle, so tracks are formed
    per group rather than per raw label.
    """
    for name, labels in groups.items():
        if label in labels:
            return name
    return label


# ---- access control and audit ------------------------------------------------------------

Role = Literal["viewer", "operator", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "admin")
#: Keys start with this so a leaked one is recognisable by secret scanners.
KEY_PREFIX = "svk_"


def role_allows(role: str, needed: Role) -> bool:
    """Roles are ordered: an admin may do what an operator may, an operator what a viewer may."""
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


def new_api_key() -> str:
    """A fresh key with 256 bits of randomness: shown once, stored only as its hash."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    """SHA-256 hex of a key; random 256-bit keys need no salt or slow hash to resist guessing."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """An API key as listed: never the key itself, only a short prefix to recognise it."""

    id: int
    name: str
    role: Role
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewAuditEntry:
    """What one audited action records: who, what, with which crop and filters, outcome."""

    action: str
    key_id: int | None
    key_name: str
    role: str
    status: str = "ok"
    query_kind: str | None = None
    crop_sha256: str | None = None
    crop_path: str | None = None
    appearance_id: int | None = None
    keyframe_id: int | None = None
    box: BBox | None = None
    filters: dict[str, object] = field(default_factory=dict)
    #: The stored track a 'find similar' search started from (its pooled vector).
    track_id: int | None = None
    result_count: int | None = None
    client: str | None = None
    detail: str | None = None
    #: A search's sightings as returned, in rank order: (track id, best score) each.
    hits: tuple[tuple[int, float], ...] = ()


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """A stored audit row."""

    id: int
    ts: datetime
    entry: NewAuditEntry


@dataclass(frozen=True, slots=True)
class CameraInfo:
    """A camera as administered: its URL keeps credentials, so show it masked."""

    id: str
    name: str
    enabled: bool
    url: str | None
    created_at: datetime
    #: Labels that pin the camera to workers asking for them (`live.camera_tags`).
    tags: tuple[str, ...] = ()


#: An operator's verdict on one hit of a query.
Verdict = Literal["confirmed", "rejected"]
VERDICTS: tuple[Verdict, ...] = ("confirmed", "rejected")


@dataclass(frozen=True, slots=True)
class FeedbackTarget:
    """Which query (a search's audit id, or an alert rule) and which hit (track or appearance)."""

    audit_id: int | None = None
    rule_id: int | None = None
    alert_id: int | None = None
    track_id: int | None = None
    appearance_id: int | None = None

    def __post_init__(self) -> None:
        # An alert names its rule and its own hit, so it may stand alone.
        if self.audit_id is not None and (self.rule_id, self.alert_id) != (None, None):
            raise InputError("feedback is for a search or for a rule's alert, not both")
        if self.audit_id is None and self.rule_id is None and self.alert_id is None:
            raise InputError("feedback needs a query: a search's audit id, a rule or an alert")
        hits = (self.track_id is not None) + (self.appearance_id is not None)
        if hits > 1 or (hits == 0 and self.alert_id is None):
            raise InputError("feedback needs exactly one hit: a track (sighting) or an appearance")

    @property
    def query_key(self) -> str:
        """The query as one key ("search:12" or "rule:3")."""
        return f"search:{self.audit_id}" if self.audit_id is not None else f"rule:{self.rule_id}"

    @property
    def hit_key(self) -> str:
        """The hit as one key ("track:7" or "appearance:9")."""
        if self.track_id is not None:
            return f"track:{self.track_id}"
        return f"appearance:{self.appearance_id}"


@dataclass(frozen=True, slots=True)
class Feedback:
    """A stored verdict: who gave it, when, on what, and the hit's score for that query."""

    id: int
    ts: datetime
    key_id: int | None
    key_name: str
    target: FeedbackTarget
    space: Space
    verdict: Verdict
    score: float | None


@dataclass(frozen=True, slots=True)
class SpaceFloor:
    """A space's min_score calibrated from feedback, and what it was calibrated on."""

    space: Space
    min_score: float
    precision: float
    labels: int
    set_at: datetime
    set_by: str


@dataclass(frozen=True, slots=True)
class SpaceModel:
    """The embedding model a vector space's stored vectors (and its index) come from."""

    space: Space
    model_id: str
    dim: int
    #: How that model was configured (JSON of its embedder settings), if known.
    embedder: str | None = None
    #: A re-embed to this model has started and not yet swapped.
    pending_model_id: str | None = None
    #: The catalog has swapped to `model_id` but the index is not rebuilt yet.
    index_stale: bool = False
