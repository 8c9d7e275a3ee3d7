"""POST /api/v1/export/{kind}/{id}: an evidence archive (zip) for an operator, audited."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from surveil.api.deps import Operator, ServicesDep, actor_of
from surveil.api.schemas import AUTH_ERRORS, ErrorBody
from surveil.api.views import API

router = APIRouter(prefix=API, tags=["export"])

_ERRORS = {
    **AUTH_ERRORS,
    400: {"model": ErrorBody, "description": "Not exportable (e.g. a refused search)."},
    404: {"model": ErrorBody, "description": "Unknown track, audit entry or alert."},
}


@router.post(
    "/export/{kind}/{subject_id}",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/zip": {}}, "description": "The evidence archive."},
        **_ERRORS,
    },
    summary="Export a sighting, a past search or an alert as an evidence archive",
)
def export(
    request: Request,
    caller: Operator,
    services: ServicesDep,
    kind: Annotated[
        Literal["sighting", "search", "alert"],
        PathParam(description="sighting (a track id), search (its audit id) or alert."),
    ],
    subject_id: Annotated[int, PathParam(ge=1, le=2**63 - 1, description="Its id.")],
) -> FileResponse:
    """The archive `surveil export KIND ID` writes; `surveil export verify` checks it.

    Every export is audited (who, what, the archive's SHA-256); the entry's id comes back
    in X-Surveil-Audit-Id.
    """
    folder = Path(tempfile.mkdtemp(prefix="surveil-export-"))
    try:
        out = folder / "evidence.zip"
        done = services.exporter().export(actor_of(caller, request), kind, subject_id, out)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return FileResponse(
        out,
        media_type="application/zip",
        filename=f"surveil-{kind}-{subject_id}.zip",
        headers={"X-Surveil-Audit-Id": str(done.audit_id), "X-Surveil-SHA256": done.sha256},
        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
    )
