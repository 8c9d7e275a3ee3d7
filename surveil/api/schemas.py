"""Request and response models: they document the API in OpenAPI and check what leaves."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from surveil.domain import Role

#: RFC 3339 date-time, what OpenAPI's `format: date-time` means (the offset is required).
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$", re.ASCII
)
_DATE_TIME = {"type": "string", "format": "date-time"}
MIN_YEAR, MAX_YEAR = 1900, 9000


def _rfc3339(value: str) -> str:
    """Refuse what the spec's `format: date-time` refuses, so validation matches the document."""
    match = _RFC3339.match(value)
    if match and match.group(1) == "60":  # a leap second is valid RFC 3339; Python has none
        value = value[: match.start(1)] + "59" + value[match.end(1) :]
    try:
        if match is None:
            raise ValueError
        parsed = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            "must be an RFC 3339 date-time with its offset, for example 2026-11-22T08:00:00Z"
        ) from None
    if not MIN_YEAR <= parsed.year <= MAX_YEAR:
        # Retention and time-window arithmetic leave Python's range near years 1 and 9999.
        raise ValueError(f"must be a time in the years {MIN_YEAR}-{MAX_YEAR}")
    return value


def _integral(value: Any) -> Any:
    """JSON Schema's `integer` takes 3.0; strict pydantic does not, so give it the int."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


#: A time the client sends: documented as `format: date-time` and checked to be one.
Timestamp = Annotated[str, AfterValidator(_rfc3339), WithJsonSchema(_DATE_TIME)]
#: A time the API returns (ISO 8601 UTC with milliseconds), documented as `format: date-time`.
TimeOut = Annotated[str, WithJsonSchema(_DATE_TIME)]
#: A whole number in a strict JSON body: 3 and 3.0 pass, "3" and true do not.
Integer = Annotated[int, BeforeValidator(_integral)]
#: Text the catalog stores: PostgreSQL cannot hold NUL characters, so the spec refuses them.
NO_NUL = r"^[^\x00]*$"
#: A camera tag, as surveil.domain.validate_tags accepts it.
TAG = r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,31}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Input(_Model):
    """A JSON request body: strict types, so `false` is no number and `1` no boolean."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ErrorDetail(_Model):
    code: str = Field(description="Machine-readable: unauthorized, not_found, invalid_input…")
    message: str = Field(description="What went wrong and what to do, for a person.")


class ErrorBody(_Model):
    error: ErrorDetail


class Appearance(_Model):
    id: int
    camera_id: str
    ts: TimeOut = Field(description="ISO 8601 UTC with milliseconds.")
    frame_index: int
    label: str
    confidence: float
    bbox: list[float] = Field(description="x1, y1, x2, y2 in keyframe pixels.")
    keyframe_id: int
    crop_url: str
    keyframe_url: str
    track_id: int | None = Field(description="The track (one object on one camera) it is in.")


class Hit(Appearance):
    score: float = Field(description="Cosine similarity of its track to the example, -1..1.")


class SightingOut(_Model):
    camera_id: str
    label: str
    first_seen: TimeOut
    last_seen: TimeOut
    best_score: float = Field(description="Cosine similarity of the track to the example.")
    appearances: list[Hit] = Field(description="The track's appearances in the filters, by time.")
    track_id: int | None = Field(description="The track this sighting is: one object, one camera.")


class LegOut(_Model):
    camera_id: str
    first_seen: TimeOut
    last_seen: TimeOut
    track_ids: list[int] = Field(description="Consecutive tracks on this camera, by time.")
    best_score: float
    overlaps: list[int] = Field(
        description="Matched tracks on other cameras seen at the same time: one of each "
        "pair is someone else (or the two cameras see the same spot)."
    )


class HopOut(_Model):
    from_camera: str
    to_camera: str
    seconds: float = Field(description="From the last leg's end to the next's start; < 0 overlap.")


class PathOut(_Model):
    legs: list[LegOut] = Field(description="One per stretch on one camera, in time order.")
    hops: list[HopOut] = Field(description="hops[i] joins legs[i] and legs[i+1].")
    overlapping: int = Field(description="Legs that overlap another camera's in time.")


class SearchResponse(_Model):
    sightings: list[SightingOut] = Field(description="Ordered by first_seen.")
    truncated: bool = Field(
        description="The result is not every match: see truncated_reason for why and what to do."
    )
    truncated_reason: Literal["limit", "max_candidates"] | None = Field(
        default=None,
        description=(
            "Present only when truncated. `limit`: more sightings matched than `limit` "
            "returned (raise it or narrow the time window). `max_candidates`: the search "
            "went search.max_candidates candidates deep and they all still matched, so more "
            "may exist (narrow the time window or cameras, or raise search.max_candidates)."
        ),
    )
    warnings: list[str] = Field(
        description="Degraded modes in effect for this result; empty when it is a full answer."
    )
    path: PathOut | None = Field(
        default=None, description="The path across cameras, when the search asked for path."
    )


class KeyframeSummary(_Model):
    id: int
    camera_id: str
    ts: TimeOut
    frame_index: int
    width: int
    height: int
    image_url: str | None
    appearances: int


class KeyframeDetail(_Model):
    id: int
    camera_id: str
    ts: TimeOut
    frame_index: int
    width: int
    height: int
    image_url: str | None
    appearances: list[Appearance]


class KeyframeList(_Model):
    keyframes: list[KeyframeSummary]


class CameraHealth(_Model):
    id: str
    state: str = Field(description="connecting, online, stalled, offline or stopped.")
    last_frame_at: TimeOut | None
    fps: float = Field(description="Frames decoded per second, over about 10 s.")
    keyframes: int = Field(description="Keyframes committed since `surveil run` started.")
    keyframes_per_s: float
    drops: int = Field(description="Keyframes given up because the models fell behind.")
    reconnects: int
    last_error: str | None = Field(description="Credentials masked.")
    updated_at: TimeOut | None = Field(description="When `surveil run` last wrote this.")


class CameraLease(_Model):
    worker: str = Field(description="The `surveil run` worker reading the camera.")
    host: str | None = Field(description="The worker's host (null once it deregistered).")
    acquired_at: TimeOut
    age_seconds: float = Field(description="Seconds since this worker took the camera.")
    lease_until: TimeOut
    live: bool = Field(description="False once the lease expired unrenewed (worker gone).")


class Worker(_Model):
    id: str
    host: str
    pid: int
    started_at: TimeOut
    heartbeat_at: TimeOut
    index_backend: str
    cameras: list[str] = Field(description="Cameras this worker reads now.")
    pinned_cameras: list[str] = Field(description="live.cameras: only these (empty: any).")
    pinned_tags: list[str] = Field(description="live.camera_tags: only these (empty: any).")


class WorkerList(_Model):
    workers: list[Worker]


class Camera(_Model):
    id: str
    name: str
    enabled: bool
    tags: list[str] = Field(description="Labels pinning the camera to workers (live.camera_tags).")
    lease: CameraLease | None = Field(
        None, description="Which live worker reads the camera now; null when none does."
    )
    url: str | None = Field(description="Stream address with credentials masked.")
    created_at: TimeOut
    keyframes: int
    appearances: int
    first_ts: TimeOut | None
    last_ts: TimeOut | None
    health: CameraHealth | None = Field(
        None, description="Live ingest health, or null when `surveil run` never read it."
    )


class CameraList(_Model):
    cameras: list[Camera]


class CameraCreate(_Input):
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$")
    name: str | None = Field(None, min_length=1, max_length=200, pattern=NO_NUL)
    url: str | None = Field(None, max_length=2000, pattern=NO_NUL)
    enabled: bool = True
    tags: list[Annotated[str, Field(pattern=TAG)]] = Field(default_factory=list, max_length=16)


class CameraUpdate(_Input):
    name: str | None = Field(None, min_length=1, max_length=200, pattern=NO_NUL)
    url: str | None = Field(
        None, max_length=2000, pattern=NO_NUL, description="An empty string clears it."
    )
    enabled: bool | None = None
    tags: list[Annotated[str, Field(pattern=TAG)]] | None = Field(
        None, max_length=16, description="Replaces the tags; [] clears them."
    )


class Me(_Model):
    id: int
    name: str
    role: Role
    max_upload_bytes: int = Field(
        description="The largest request body the server takes (setting api.max_upload_bytes): "
        "the console checks a crop's size against it before uploading."
    )


class KeyInfo(_Model):
    id: int
    name: str
    role: Role
    prefix: str = Field(description="The key's first characters, to tell keys apart.")
    created_at: TimeOut
    last_used_at: TimeOut | None
    revoked_at: TimeOut | None


class KeyList(_Model):
    keys: list[KeyInfo]


class KeyCreate(_Input):
    name: str = Field(min_length=1, max_length=100, pattern=NO_NUL)
    role: Role


class KeyCreated(_Model):
    id: int
    name: str
    role: Role
    key: str = Field(description="The key itself: shown only in this response.")


class AuditOut(_Model):
    id: int
    ts: TimeOut
    key_id: int | None
    key_name: str
    role: str
    action: str
    status: str
    query_kind: str | None
    crop_sha256: str | None
    crop_url: str | None
    appearance_id: int | None
    track_id: int | None = None
    keyframe_id: int | None
    box: list[float] | None
    filters: dict[str, Any]
    result_count: int | None
    client: str | None
    detail: str | None


class AuditList(_Model):
    entries: list[AuditOut]


class Health(_Model):
    status: str


class Readiness(_Model):
    status: str
    checks: dict[str, str]


#: Error responses every authenticated route can give, for the OpenAPI document.
#: 400 (malformed input) and 503 (database unreachable) are added to every operation by
#: surveil.api.spec, which also removes FastAPI's default 422 (the API answers 400).
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No key, or an unknown or revoked key."},
    403: {"model": ErrorBody, "description": "The key's role is too low."},
}
