"""Admin: API keys and the audit trail."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from surveil.api.deps import Admin, ServicesDep, record_action
from surveil.api.schemas import (
    AUTH_ERRORS,
    NO_NUL,
    AuditList,
    ErrorBody,
    KeyCreate,
    KeyCreated,
    KeyInfo,
    Timestamp,
)
from surveil.api.schemas import KeyList as KeyListModel
from surveil.api.views import API, audit_view, key_view
from surveil.domain import NotFoundError, parse_time

router = APIRouter(prefix=API, tags=["admin"])

Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
_ERRORS = {**AUTH_ERRORS, 404: {"model": ErrorBody, "description": "No such id."}}
MAX_AUDIT_PAGE = 1000
_MEDIA = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp", "bmp": "image/bmp"}


@router.get("/keys", response_model=KeyListModel, responses=AUTH_ERRORS)
def list_keys(_: Admin, services: ServicesDep) -> dict[str, Any]:
    """Every key (revoked ones too), never the key itself."""
    return {"keys": [key_view(k) for k in services.access.list_keys()]}


@router.post("/keys", response_model=KeyCreated, status_code=201, responses=AUTH_ERRORS)
def create_key(
    body: KeyCreate, caller: Admin, request: Request, services: ServicesDep
) -> dict[str, Any]:
    """A new key; the response is the only time the key is shown."""
    info, key = services.access.create_key(name=body.name, role=body.role)
    record_action(
        services, caller, request, "key.create", f"key {info.id} ({info.name}, {info.role})"
    )
    return {"id": info.id, "name": info.name, "role": info.role, "key": key}


@router.delete("/keys/{key_id}", response_model=KeyInfo, responses=_ERRORS)
def revoke_key(
    key_id: Id, caller: Admin, request: Request, services: ServicesDep
) -> dict[str, Any]:
    """Revoke a key at once; its audit history stays."""
    info = services.access.revoke_key(key_id)
    record_action(services, caller, request, "key.revoke", f"key {info.id} ({info.name})")
    return key_view(info)


@router.get("/audit", response_model=AuditList, responses=AUTH_ERRORS)
def list_audit(
    _: Admin,
    services: ServicesDep,
    since: Annotated[Timestamp | None, Query(description="From (RFC 3339).")] = None,
    until: Annotated[Timestamp | None, Query(description="Up to (RFC 3339).")] = None,
    action: Annotated[
        str | None, Query(max_length=64, pattern=NO_NUL, description="e.g. search.")
    ] = None,
    key_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_AUDIT_PAGE)] = 100,
) -> dict[str, Any]:
    """The audit trail, newest first."""
    rows = services.access.audit_entries(
        since=parse_time(since, "since"),
        until=parse_time(until, "until"),
        action=action,
        key_id=key_id,
        limit=limit,
    )
    return {"entries": [audit_view(r) for r in rows]}


@router.get("/audit/{entry_id}/crop.jpg", response_class=Response, responses=_ERRORS)
def audit_crop(entry_id: Id, _: Admin, services: ServicesDep) -> Response:
    """The copy of the crop a search used, as it was uploaded."""
    entry = services.access.audit_entry(entry_id).entry
    if not entry.crop_path:
        raise NotFoundError(f"audit entry {entry_id} has no stored crop")
    try:
        data = services.blobs.get(entry.crop_path)
    except FileNotFoundError:
        raise NotFoundError(f"audit entry {entry_id}'s crop file is missing") from None
    media = _MEDIA.get(entry.crop_path.rsplit(".", 1)[-1], "application/octet-stream")
    return Response(data, media_type=media)
