"""POST /api/v1/compare: are two uploaded crops the same object? Audited like a search."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from pydantic import BaseModel, Field

from surveil.api.deps import Operator, ServicesDep, actor_of
from surveil.api.schemas import AUTH_ERRORS, ErrorBody
from surveil.api.search_audit import attempt_of, describe_refusal
from surveil.api.views import API
from surveil.domain import InputError, SurveilError
from surveil.search.audited import record_refusal
from surveil.search.compare import AuditedCompare, CropInput
from surveil.vision.images import decode_untrusted, probe_image

router = APIRouter(prefix=API, tags=["search"])

_ERRORS = {
    **AUTH_ERRORS,
    400: {"model": ErrorBody, "description": "Crops in two embedding spaces, or a bad field."},
    413: {"model": ErrorBody, "description": "Upload larger than api.max_upload_bytes."},
    415: {"model": ErrorBody, "description": "An upload is not a JPEG/PNG/WebP/BMP image."},
    422: {"model": ErrorBody, "description": "Image larger than api.max_image_pixels."},
}


class CompareResponse(BaseModel):
    """`surveil compare --json`'s object: the similarity, its space and the verdict."""

    similarity: float = Field(description="Cosine similarity of the two crops' embeddings.")
    space: str = Field(description="The embedding space both crops were embedded in.")
    threshold: float = Field(description="The floor a search of that space applies.")
    same: bool = Field(description="similarity >= threshold: same object likely.")


def _crop(upload: UploadFile, limit: int, max_pixels: int, name: str) -> CropInput:
    """One uploaded crop, read at most limit+1 bytes, checked and decoded."""
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise InputError(f"{name} is larger than {limit:,} bytes")
    if not data:  # a missing crop, not an unsupported one: 400 like search's rules
        raise InputError(f"{name} is empty; send a JPEG, PNG, WebP or BMP crop")
    image = decode_untrusted(data, max_pixels=max_pixels, what=name)
    return CropInput(image, data, probe_image(data, what=name).format)


@router.post(
    "/compare",
    response_model=CompareResponse,
    responses=_ERRORS,
    summary="Compare two crops: same object likely or unlikely",
)
def compare(
    request: Request,
    response: Response,
    caller: Operator,
    services: ServicesDep,
    a: Annotated[UploadFile, File(description="First crop (JPEG, PNG, WebP or BMP).")],
    b: Annotated[UploadFile, File(description="Second crop (JPEG, PNG, WebP or BMP).")],
    label: Annotated[
        str | None, Form(description="What both crops show; picks the space for both.")
    ] = None,
) -> dict[str, object]:
    """The two crops' similarity in one embedding space, and the verdict of the search floor.

    Every comparison is written to the audit trail (both crops' SHA-256 and stored
    copies), refused ones too; the entry's id comes back in X-Surveil-Audit-Id.
    """
    settings = services.settings
    actor = actor_of(caller, request)
    attempt = attempt_of(request)
    if attempt is not None:
        attempt.audited = True  # from here on this route audits every way it ends
    try:
        if label is not None and not (0 < len(label) <= 64 and label.isprintable()):
            raise InputError("label must be 1-64 printable characters")
        limit, pixels = settings.api.max_upload_bytes, settings.api.max_image_pixels
        crop_a = _crop(a, limit, pixels, "crop a")
        crop_b = _crop(b, limit, pixels, "crop b")
    except SurveilError as exc:
        record_refusal(
            services.access,
            actor,
            reason=describe_refusal(exc),
            given={},
            kind="compare",
            action="compare",
        )
        raise
    audited = AuditedCompare(search=services.search(), access=services.access, blobs=services.blobs)
    found, audit_id = audited.run(actor, crop_a, crop_b, label=label)
    response.headers["X-Surveil-Audit-Id"] = str(audit_id)
    return found.to_dict()
