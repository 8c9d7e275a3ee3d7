"""Cameras: everyone may list them and browse their keyframes; admins change them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from surveil.api.deps import Admin, ServicesDep, Viewer, record_action
from surveil.api.schemas import (
    AUTH_ERRORS,
    Camera,
    CameraCreate,
    CameraList,
    CameraUpdate,
    ErrorBody,
    KeyframeList,
    Timestamp,
    WorkerList,
)
from surveil.api.views import API, camera_view, keyframe_summary, lease_views, worker_views
from surveil.container import Services
from surveil.domain import CameraInfo, parse_time

router = APIRouter(prefix=API, tags=["cameras"])

CameraId = Annotated[str, Path(min_length=1, max_length=64)]
_ERRORS = {**AUTH_ERRORS, 404: {"model": ErrorBody, "description": "No such camera."}}
MAX_KEYFRAMES_PAGE = 500


def _leases(services: Services) -> dict[str, dict[str, Any]]:
    """Which live worker holds each camera (from the catalog: any worker, any host)."""
    return lease_views(services.leases.leases(), services.leases.workers(), datetime.now(UTC))


def _views(services: Services, cams: list[CameraInfo]) -> list[dict[str, Any]]:
    stats = {s.camera_id: s for s in services.catalog.stats()}
    health = {h.camera_id: h for h in services.health.read()}
    leases = _leases(services)
    return [camera_view(c, stats.get(c.id), health.get(c.id), leases.get(c.id)) for c in cams]


def _view(services: Services, cam: CameraInfo) -> dict[str, Any]:
    return _views(services, [cam])[0]


@router.get("/cameras", response_model=CameraList, responses=AUTH_ERRORS)
def list_cameras(_: Viewer, services: ServicesDep) -> dict[str, Any]:
    """Every camera with what the catalog holds for it, its health and the worker reading it."""
    return {"cameras": _views(services, services.catalog.list_cameras())}


@router.get("/workers", response_model=WorkerList, responses=AUTH_ERRORS)
def list_workers(_: Viewer, services: ServicesDep) -> dict[str, Any]:
    """Live ingest workers (`surveil run` processes), each with the cameras it reads."""
    now = datetime.now(UTC)
    workers = services.leases.workers(now=now)
    return {"workers": worker_views(workers, services.leases.leases(), now)}


@router.post(
    "/cameras",
    response_model=Camera,
    status_code=201,
    responses={**AUTH_ERRORS, 409: {"model": ErrorBody, "description": "Id taken."}},
)
def create_camera(
    body: CameraCreate, caller: Admin, request: Request, services: ServicesDep
) -> dict[str, Any]:
    """Register a camera (before its first footage, or to give it a name and URL)."""
    cam = services.catalog.create_camera(
        camera_id=body.id, name=body.name, url=body.url, enabled=body.enabled, tags=body.tags
    )
    record_action(services, caller, request, "camera.create", f"camera {cam.id}")
    return _view(services, cam)


@router.patch("/cameras/{camera_id}", response_model=Camera, responses=_ERRORS)
def update_camera(
    camera_id: CameraId,
    body: CameraUpdate,
    caller: Admin,
    request: Request,
    services: ServicesDep,
) -> dict[str, Any]:
    """Rename a camera, change its URL or tags, or enable/disable it."""
    cam = services.catalog.update_camera(
        camera_id, name=body.name, url=body.url, enabled=body.enabled, tags=body.tags
    )
    changed = ", ".join(sorted(body.model_dump(exclude_unset=True))) or "nothing"
    record_action(services, caller, request, "camera.update", f"camera {cam.id}: {changed}")
    return _view(services, cam)


@router.post("/cameras/{camera_id}/disable", response_model=Camera, responses=_ERRORS)
def disable_camera(
    camera_id: CameraId, caller: Admin, request: Request, services: ServicesDep
) -> dict[str, Any]:
    """Stop a camera's ingest; what it recorded stays searchable."""
    cam = services.catalog.update_camera(camera_id, enabled=False)
    record_action(services, caller, request, "camera.disable", f"camera {cam.id}")
    return _view(services, cam)


@router.get("/cameras/{camera_id}/keyframes", response_model=KeyframeList, responses=_ERRORS)
def camera_keyframes(
    camera_id: CameraId,
    _: Viewer,
    services: ServicesDep,
    since: Annotated[Timestamp | None, Query(description="From this time (RFC 3339).")] = None,
    until: Annotated[Timestamp | None, Query(description="Up to this time (RFC 3339).")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_KEYFRAMES_PAGE)] = 60,
) -> dict[str, Any]:
    """A camera's keyframes in time order, to browse and draw a box on."""
    services.catalog.get_camera(camera_id)  # 404 for an unknown camera, not an empty list
    rows = services.catalog.camera_keyframes(
        camera_id=camera_id,
        since=parse_time(since, "since"),
        until=parse_time(until, "until"),
        limit=limit,
    )
    return {"keyframes": [keyframe_summary(kf, n) for kf, n in rows]}
