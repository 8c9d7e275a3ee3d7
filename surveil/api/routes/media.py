"""Appearances, keyframes and their images; blob keys come from the catalog, never the URL."""

from __future__ import annotations

from typing import Annotated, Any

import cv2
from fastapi import APIRouter, Path, Query, Response

from surveil.api.deps import ServicesDep, Viewer
from surveil.api.forms import clamp_box, parse_box
from surveil.api.schemas import AUTH_ERRORS, Appearance, ErrorBody, KeyframeDetail
from surveil.api.views import API, appearance_view, keyframe_view
from surveil.container import Services
from surveil.domain import KeyframeRecord, NotFoundError, StoredAppearance
from surveil.vision.crops import decode_image, encode_jpeg

router = APIRouter(prefix=API, tags=["sightings"])

_ERRORS = {**AUTH_ERRORS, 404: {"model": ErrorBody, "description": "No such id."}}
_JPEG: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/jpeg": {}}, "description": "A JPEG image."}
}
#: Stored crops and keyframes never change under an id; the browser may keep them a while.
_CACHE = {"Cache-Control": "private, max-age=3600"}
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _appearance(services: Services, appearance_id: int) -> StoredAppearance:
    found = services.catalog.appearances([appearance_id])
    if not found:
        raise NotFoundError(f"no appearance with id {appearance_id}")
    return found[0]


def _blob(services: Services, key: str | None, what: str) -> bytes:
    if not key:
        raise NotFoundError(f"{what} has no stored image")
    try:
        return services.blobs.get(key)
    except FileNotFoundError:
        raise NotFoundError(f"{what}'s image file is missing (removed by retention?)") from None


def _keyframe(services: Services, keyframe_id: int) -> KeyframeRecord:
    record = services.catalog.get_keyframe(keyframe_id=keyframe_id)
    if record is None:
        raise NotFoundError(f"no keyframe with id {keyframe_id}")
    return record


@router.get("/appearances/{appearance_id}", response_model=Appearance, responses=_ERRORS)
def get_appearance(appearance_id: Id, _: Viewer, services: ServicesDep) -> dict[str, Any]:
    """One stored appearance: camera, time, label, box, and where its images are."""
    return appearance_view(_appearance(services, appearance_id))


@router.get(
    "/appearances/{appearance_id}/crop.jpg",
    response_class=Response,
    responses={**_ERRORS, **_JPEG},
)
def get_crop(appearance_id: Id, _: Viewer, services: ServicesDep) -> Response:
    """The appearance's crop as stored at ingest."""
    app = _appearance(services, appearance_id)
    data = _blob(services, app.crop_path, f"appearance {appearance_id}")
    return Response(data, media_type="image/jpeg", headers=_CACHE)


@router.get(
    "/keyframes/{keyframe_id}.jpg",
    response_class=Response,
    responses={
        **_ERRORS,
        **_JPEG,
        400: {"model": ErrorBody, "description": "Malformed box, or one outside the image."},
    },
)
def get_keyframe_image(
    keyframe_id: Id,
    _: Viewer,
    services: ServicesDep,
    box: Annotated[
        str | None, Query(description="x1,y1,x2,y2 to draw on the image.", max_length=100)
    ] = None,
) -> Response:
    """The whole keyframe, optionally with one box drawn on it."""
    parsed = None if box is None else parse_box(box)  # a malformed box is a 400 at once
    record = _keyframe(services, keyframe_id)
    data = _blob(services, record.image_path, f"keyframe {keyframe_id}")
    if parsed is not None:
        data = _draw_box(data, parsed, quality=services.settings.storage.jpeg_quality)
    return Response(data, media_type="image/jpeg", headers=_CACHE)


def _draw_box(data: bytes, box: tuple[float, float, float, float], *, quality: int) -> bytes:
    """The box drawn on the image, cut to its edges (OpenCV takes only 32-bit points)."""
    image = decode_image(data, what="stored keyframe").copy()
    height, width = image.shape[:2]
    x1, y1, x2, y2 = clamp_box(box, width, height, what="keyframe")
    # cv2.rectangle's corners are inclusive pixels: the last one inside is width - 1.
    x2, y2 = min(x2, width - 1), min(y2, height - 1)
    thickness = max(2, round(max(image.shape[:2]) / 300))
    # A dark outline under a bright one stays visible on light and dark scenes alike.
    cv2.rectangle(image, (x1, y1), (x2, y2), (0, 0, 0), thickness + 2)
    cv2.rectangle(image, (x1, y1), (x2, y2), (0, 215, 255), thickness)
    return encode_jpeg(image, quality)


@router.get("/keyframes/{keyframe_id}", response_model=KeyframeDetail, responses=_ERRORS)
def get_keyframe(keyframe_id: Id, _: Viewer, services: ServicesDep) -> dict[str, Any]:
    """A keyframe with every appearance detected on it (to pick one, or draw a box)."""
    record = _keyframe(services, keyframe_id)
    return keyframe_view(record, services.catalog.keyframe_appearances(keyframe_id=keyframe_id))
