"""POST /api/v1/search: the operator's search by example, audited."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, Response, UploadFile

from surveil.api.deps import MetricsDep, Operator, ServicesDep, actor_of
from surveil.api.forms import SearchForm, build_example, build_options
from surveil.api.schemas import AUTH_ERRORS, ErrorBody, SearchResponse, Timestamp
from surveil.api.search_audit import attempt_of, describe_refusal
from surveil.api.views import API, search_view
from surveil.domain import InputError
from surveil.search.audited import AuditedSearch
from surveil.search.by_example import StageTimes

router = APIRouter(prefix=API, tags=["search"])

_ERRORS = {
    **AUTH_ERRORS,
    400: {"model": ErrorBody, "description": "Malformed form field or filter."},
    404: {"model": ErrorBody, "description": "Unknown appearance or keyframe."},
    413: {"model": ErrorBody, "description": "Upload larger than api.max_upload_bytes."},
    415: {"model": ErrorBody, "description": "The upload is not a JPEG/PNG/WebP/BMP image."},
    422: {"model": ErrorBody, "description": "Image larger than api.max_image_pixels."},
}


def _read_upload(upload: UploadFile | None, limit: int) -> bytes | None:
    """The uploaded bytes, read at most limit+1 (the body limit already bounds them)."""
    if upload is None:
        return None
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise InputError(f"image is larger than {limit:,} bytes")
    return data


@router.post(
    "/search",
    response_model=SearchResponse,
    # "path" appears only when asked, as in `surveil search --json --path`.
    response_model_exclude_unset=True,
    responses=_ERRORS,
    summary="Find every sighting of an example crop",
)
def search(
    request: Request,
    response: Response,
    caller: Operator,
    services: ServicesDep,
    metrics: MetricsDep,
    image: Annotated[
        UploadFile | None, File(description="The example crop (JPEG, PNG, WebP or BMP).")
    ] = None,
    appearance_id: Annotated[
        int | None, Form(description="Find similar to this stored appearance.")
    ] = None,
    track_id: Annotated[
        int | None, Form(description="Find similar to this stored track (all its crops).")
    ] = None,
    keyframe_id: Annotated[int | None, Form(description="A stored keyframe to cut from.")] = None,
    box: Annotated[
        str | None, Form(description="x1,y1,x2,y2 on keyframe_id, in its pixels.")
    ] = None,
    camera: Annotated[list[str] | None, Form(description="Only these cameras.")] = None,
    since: Annotated[Timestamp | None, Form(description="Only at or after (RFC 3339).")] = None,
    until: Annotated[Timestamp | None, Form(description="Only at or before (RFC 3339).")] = None,
    label: Annotated[
        list[str] | None, Form(description="Only these labels; the first picks the space.")
    ] = None,
    min_score: Annotated[float | None, Form(description="Cosine similarity floor.")] = None,
    gap: Annotated[
        float | None, Form(description="No longer used: a sighting is one track.", deprecated=True)
    ] = None,
    limit: Annotated[int | None, Form(description="Most sightings (tracks) returned.")] = None,
    path: Annotated[
        bool, Form(description="Also return the path across cameras (legs and hops).")
    ] = False,
    rerank: Annotated[
        bool | None,
        Form(
            description="Re-rank the candidates (k-reciprocal) before the cut at limit; "
            "default: setting search.rerank.mode. Scores stay cosine."
        ),
    ] = None,
) -> dict[str, object]:
    """Search by an uploaded crop, a stored appearance or track, or a box on a stored keyframe.

    The response is `surveil search --json`'s object; every search attempt is written to
    the audit trail, refused ones too, and the entry's id comes back in the
    X-Surveil-Audit-Id header.
    """
    settings = services.settings
    form = SearchForm(
        image=_read_upload(image, settings.api.max_upload_bytes),
        appearance_id=appearance_id,
        track_id=track_id,
        keyframe_id=keyframe_id,
        box=box,
        cameras=camera or [],
        since=since,
        until=until,
        labels=label or [],
        min_score=min_score,
        gap=gap,
        limit=limit,
        rerank=rerank,
    )
    example = build_example(form, max_pixels=settings.api.max_image_pixels)
    attempt = attempt_of(request)
    if attempt is not None:
        attempt.kind = example.kind
    options = build_options(
        form, max_results=settings.api.max_results, default_min_score=settings.search.min_score
    )
    services.refresh_index(every=settings.api.index_refresh_seconds)
    audited = AuditedSearch(
        search=services.search(),
        access=services.access,
        blobs=services.blobs,
        catalog=services.catalog,
        jpeg_quality=settings.storage.jpeg_quality,
        describe=describe_refusal,
    )
    if attempt is not None:
        attempt.audited = True  # run() audits every way it ends; refusals above, the middleware
    start = time.perf_counter()
    outcome = "error"
    try:
        done = audited.run(actor_of(caller, request), example, options)
        outcome = "ok"
    finally:
        total = time.perf_counter() - start
        metrics.search.labels(example.kind, outcome).observe(total)
    response.headers["X-Surveil-Audit-Id"] = str(done.audit_id)
    response.headers["Server-Timing"] = server_timing(done.result.timings, total)
    return search_view(done.result, path=path)


def server_timing(timings: StageTimes, total: float) -> str:
    """`embed;dur=…, index;dur=…, hydrate;dur=…, rerank;dur=…, group;dur=…, audit;dur=…,
    total;dur=…` (ms).

    One entry per stage so a slow search shows where it was slow in the browser's
    network panel; `total` (the whole request in the handler, form parsing and the
    index refresh included) stays last and named as the console reads it.
    """
    stages = [f"{name};dur={ms:.1f}" for name, ms in timings.ms().items()]
    return ", ".join([*stages, f"total;dur={total * 1000:.1f}"])
