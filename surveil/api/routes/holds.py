"""Legal holds on cameras and appearances, and a preview of the next retention run (admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from surveil.api.deps import Admin, ServicesDep, record_action
from surveil.api.schemas import AUTH_ERRORS, ErrorBody, Timestamp
from surveil.api.views import API
from surveil.domain import ApiKeyInfo, parse_time
from surveil.jobs.retention import retention_parts, run_retention
from surveil.jobs.runner import utc_now

router = APIRouter(prefix=API, tags=["retention"])

CameraId = Annotated[str, Path(min_length=1, max_length=64)]
AppearanceId = Annotated[int, Path(ge=1, le=2**63 - 1)]
_ERRORS = {**AUTH_ERRORS, 404: {"model": ErrorBody, "description": "No such camera/appearance."}}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CameraHold(_Model):
    camera_id: str
    legal_hold: bool = Field(description="While set, retention keeps all of the camera's data.")


class AppearanceHold(_Model):
    appearance_id: int
    legal_hold: bool = Field(description="While set, retention keeps it and its keyframe.")


class CameraTally(_Model):
    appearances: int
    keyframes: int
    files: int
    bytes: int


class Tally(_Model):
    appearances: int
    keyframes: int
    files: int
    bytes: int


class IndexCost(_Model):
    shards_dropped: int = Field(description="Day shards whose every vector goes: file deletes.")
    shards_edited: int = Field(description="Day shards that are loaded and edited.")
    seconds: float


class RetentionPreview(_Model):
    appearances: int = Field(description="Appearance rows that would be removed.")
    keyframes: int = Field(description="Keyframe rows that would be removed.")
    vectors: int = Field(description="Index vectors that would be removed.")
    files: int = Field(description="Crop and keyframe files that would be deleted.")
    bytes: int = Field(description="Their size on disk.")
    dry_run: bool
    now: str = Field(description="The time ages were judged at (ISO 8601 UTC).")
    resumed: int = Field(description="Journal entries an interrupted run left to finish.")
    per_camera: dict[str, CameraTally]
    index: IndexCost
    orphans: dict[str, Any] | None = Field(description="The orphan sweep (when asked for).")
    seconds: float
    reason: dict[str, Tally] = Field(
        description="The same counts by rule: 'age' (days) and 'budget' (size budgets)."
    )
    budget: dict[str, Any] | None = Field(
        description="The size budgets' pass: bytes stored, over, freed, and unmet (only "
        "holds and alert evidence left); null when no budget is set."
    )


def _set_camera(
    services: ServicesDep, caller: ApiKeyInfo, request: Request, camera_id: str, held: bool
) -> dict[str, Any]:
    services.retention.set_camera_hold(camera_id, held)
    action = "hold.set" if held else "hold.clear"
    record_action(services, caller, request, action, f"camera {camera_id}")
    return {"camera_id": camera_id, "legal_hold": held}


def _set_appearance(
    services: ServicesDep, caller: ApiKeyInfo, request: Request, appearance_id: int, held: bool
) -> dict[str, Any]:
    services.retention.set_appearance_holds([appearance_id], held)
    action = "hold.set" if held else "hold.clear"
    record_action(services, caller, request, action, f"appearance {appearance_id}")
    return {"appearance_id": appearance_id, "legal_hold": held}


@router.put("/cameras/{camera_id}/hold", response_model=CameraHold, responses=_ERRORS)
def hold_camera(
    camera_id: CameraId, caller: Admin, request: Request, services: ServicesDep
) -> dict[str, Any]:
    """Put a camera under legal hold: retention keeps every appearance and keyframe of it."""
    return _set_camera(services, caller, request, camera_id, True)


@router.delete("/cameras/{camera_id}/hold", response_model=CameraHold, responses=_ERRORS)
def release_camera(
    camera_id: CameraId, caller: Admin, request: Request, services: ServicesDep
) -> dict[str, Any]:
    """Lift a camera's legal hold; its data is kept by policy again."""
    return _set_camera(services, caller, request, camera_id, False)


@router.put("/appearances/{appearance_id}/hold", response_model=AppearanceHold, responses=_ERRORS)
def hold_appearance(
    appearance_id: AppearanceId, caller: Admin, request: Request, services: ServicesDep
) -> dict[str, Any]:
    """Put an appearance under legal hold: retention keeps it and its keyframe."""
    return _set_appearance(services, caller, request, appearance_id, True)


@router.delete(
    "/appearances/{appearance_id}/hold", response_model=AppearanceHold, responses=_ERRORS
)
def release_appearance(
    appearance_id: AppearanceId, caller: Admin, request: Request, services: ServicesDep
) -> dict[str, Any]:
    """Lift an appearance's legal hold."""
    return _set_appearance(services, caller, request, appearance_id, False)


@router.get(
    "/retention/preview",
    response_model=RetentionPreview,
    responses={**AUTH_ERRORS, 409: {"model": ErrorBody, "description": "A run is going on."}},
)
def retention_preview(
    _: Admin,
    services: ServicesDep,
    now: Annotated[
        Timestamp | None, Query(description="Judge ages as if it were this time (RFC 3339).")
    ] = None,
    sweep: Annotated[
        bool, Query(description="Also look for orphans (walks every crop and keyframe file).")
    ] = False,
) -> dict[str, Any]:
    """What a retention run would remove now (or at `now`): counts and bytes per camera."""
    at = parse_time(now, "now") or utc_now()
    report = run_retention(
        retention_parts(services),
        services.settings.retention,
        now=at,
        dry_run=True,
        sweep_orphans=sweep,
    )
    return report.to_dict()
