"""Request and response models: they document the API in OpenAPI and check what leaves."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from surveil.domain import Role


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(_Model):
    code: str = Field(description="Machine-readable: unauthorized, not_found, invalid_input…")
    message: str = Field(description="What went wrong and what to do, for a person.")


class ErrorBody(_Model):
    error: ErrorDetail


class Appearance(_Model):
    id: int
    camera_id: str
    ts: str = Field(description="ISO 8601 UTC with milliseconds.")
    frame_index: int
    label: str
    confidence: float
    bbox: list[float] = Field(description="x1, y1, x2, y2 in keyframe pixels.")
    keyframe_id: int
    crop_url: str
    keyframe_url: str


class Hit(Appearance):
    score: float = Field(description="Cosine similarity to the example, -1..1.")


class SightingOut(_Model):
    camera_id: str
    label: str
    first_seen: str
    last_seen: str
    best_score: float
    appearances: list[Hit]


class SearchResponse(_Model):
    sightings: list[SightingOut] = Field(description="Ordered by first_seen.")
    truncated: bool = Field(
        description="More appearances matched than `limit` returned (raise it or narrow filters)."
    )
    warnings: list[str] = Field(
        description="Degraded modes in effect for this result; empty when it is a full answer."
    )


class KeyframeSummary(_Model):
    id: int
    camera_id: str
    ts: str
    frame_index: int
    width: int
    height: int
    image_url: str | None
    appearances: int


class KeyframeDetail(_Model):
    id: int
    camera_id: str
    ts: str
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
    last_frame_at: str | None
    fps: float = Field(description="Frames decoded per second, over about 10 s.")
    keyframes: int = Field(description="Keyframes committed since `surveil run` started.")
    keyframes_per_s: float
    drops: int = Field(description="Keyframes given up because the models fell behind.")
    reconnects: int
    last_error: str | None = Field(description="Credentials masked.")
    updated_at: str | None = Field(description="When `surveil run` last wrote this.")


class Camera(_Model):
    id: str
    name: str
    enabled: bool
    url: str | None = Field(description="Stream address with credentials masked.")
    created_at: str
    keyframes: int
    appearances: int
    first_ts: str | None
    last_ts: str | None
    health: CameraHealth | None = Field(
        None, description="Live ingest health, or null when `surveil run` never read it."
    )


class CameraList(_Model):
    cameras: list[Camera]


class CameraCreate(_Model):
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$")
    name: str | None = Field(None, min_length=1, max_length=200)
    url: str | None = Field(None, max_length=2000)
    enabled: bool = True


class CameraUpdate(_Model):
    name: str | None = Field(None, min_length=1, max_length=200)
    url: str | None = Field(None, max_length=2000, description="An empty string clears it.")
    enabled: bool | None = None


class Me(_Model):
    id: int
    name: str
    role: Role


class KeyInfo(_Model):
    id: int
    name: str
    role: Role
    prefix: str = Field(description="The key's first characters, to tell keys apart.")
    created_at: str
    last_used_at: str | None
    revoked_at: str | None


class KeyList(_Model):
    keys: list[KeyInfo]


class KeyCreate(_Model):
    name: str = Field(min_length=1, max_length=100)
    role: Role


class KeyCreated(_Model):
    id: int
    name: str
    role: Role
    key: str = Field(description="The key itself: shown only in this response.")


class AuditOut(_Model):
    id: int
    ts: str
    key_id: int | None
    key_name: str
    role: str
    action: str
    status: str
    query_kind: str | None
    crop_sha256: str | None
    crop_url: str | None
    appearance_id: int | None
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
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No key, or an unknown or revoked key."},
    403: {"model": ErrorBody, "description": "The key's role is too low."},
}
