"""Liveness, readiness, metrics and "who am I"."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from surveil.api.deps import MetricsDep, ServicesDep, Viewer
from surveil.api.schemas import AUTH_ERRORS, Health, Me, Readiness
from surveil.api.views import API
from surveil.domain import SPACES
from surveil.storage.db import check_connection

log = structlog.get_logger(__name__)

public = APIRouter(tags=["health"])
api = APIRouter(prefix=API, tags=["health"])


@public.get("/healthz", response_model=Health)
def healthz() -> dict[str, str]:
    """The process is up (no dependencies checked: restart only a dead process)."""
    return {"status": "ok"}


#: A key nobody writes: asking whether it exists proves the blob store answers.
READY_PROBE = "ready/probe"


@public.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
def readyz(services: ServicesDep) -> Any:
    """Database, index and blob store reachable and the search models loaded: take
    traffic only then."""
    checks: dict[str, str] = {}
    try:
        check_connection(services.engine)
        checks["database"] = "ok"
    except Exception as exc:
        log.warning("ready.database_failed", error=str(exc))
        checks["database"] = "unreachable"
    try:
        for space in SPACES:
            services.index.size(space)
        checks["index"] = "ok"
    except Exception as exc:
        log.warning("ready.index_failed", error=str(exc))
        checks["index"] = "unreadable"
    try:
        services.blobs.exists(READY_PROBE)  # a stat locally, one HEAD on S3
        checks["blobs"] = "ok"
    except Exception as exc:
        log.warning("ready.blobs_failed", error=str(exc))
        checks["blobs"] = "unreachable"
    # `serve` loads them before it listens; until then the first search would pay for it.
    checks["models"] = "ok" if services.models_ready else "loading"
    ready = all(v == "ok" for v in checks.values())
    body = {"status": "ready" if ready else "not ready", "checks": checks}
    return JSONResponse(body, status_code=200 if ready else 503)


@public.get(
    "/metrics",
    response_class=Response,
    responses={**AUTH_ERRORS, 200: {"content": {"text/plain": {}}}},
)
def metrics(_: Viewer, registry: MetricsDep) -> Response:
    """Prometheus metrics (scrape with a viewer key as a bearer token)."""
    return Response(registry.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


@api.get("/me", response_model=Me, responses=AUTH_ERRORS)
def me(caller: Viewer, services: ServicesDep) -> dict[str, Any]:
    """The calling key and the upload limit: the console shows who is logged in and what
    they may do, and refuses a crop over the limit before sending it."""
    return {
        "id": caller.id,
        "name": caller.name,
        "role": caller.role,
        "max_upload_bytes": services.settings.api.max_upload_bytes,
    }
