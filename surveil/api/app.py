"""`create_app(services)`: the HTTP API and the operator console over the CLI's services."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from surveil import __version__
from surveil.api.access_log import AccessLogMiddleware
from surveil.api.errors import install_error_handlers
from surveil.api.limits import BodyLimitMiddleware, SecurityHeadersMiddleware
from surveil.api.metrics import Metrics, MetricsMiddleware
from surveil.api.metrics_catalog import catalog_collectors
from surveil.api.routes import (
    admin,
    alerts,
    cameras,
    compare,
    export,
    feedback,
    health,
    holds,
    media,
    search,
    storage,
)
from surveil.api.search_audit import SearchAuditMiddleware
from surveil.api.spec import install_spec
from surveil.container import Services

STATIC_DIR = Path(__file__).resolve().parent / "static"

DESCRIPTION = """Search surveillance footage by example crop.

Every endpoint except `/healthz` and `/readyz` needs an API key
(`Authorization: Bearer <key>`, from `surveil keys create`); so does this document.
Roles: viewer (read sightings), operator (search), admin (cameras, keys, audit).
Every search is audited. Malformed input is answered 400; times are RFC 3339.
"""


def create_app(services: Services) -> FastAPI:
    """Build the app; the caller owns `services` (and closes them after the server stops)."""
    app = FastAPI(
        title="surveil",
        version=__version__,
        description=DESCRIPTION,
        # Served by surveil.api.spec instead: keyed, and with the errors the API really gives.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.services = services
    app.state.metrics = Metrics(
        services.index,
        health=services.health,
        leases=services.leases,
        extra=catalog_collectors(services),
    )
    install_error_handlers(app)
    install_spec(app)

    # Each router carries the /api/v1 prefix itself, so metrics see full route templates.
    routers = (search, compare, export, media, cameras, alerts, holds, storage, admin, feedback)
    for router in (*(r.router for r in routers), health.api):
        app.include_router(router)
    app.include_router(health.public)
    if services.settings.api.console:
        _mount_console(app)

    # Added last = outermost: the size limit applies before anything reads the body.
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(BodyLimitMiddleware, limit=services.settings.api.max_upload_bytes)
    # Outside the size limit, so a search refused for size is audited like any other.
    app.add_middleware(SearchAuditMiddleware)
    if services.settings.api.access_log:  # outermost: 413s and 401s get their line too
        app.add_middleware(AccessLogMiddleware)
    return app


def _mount_console(app: FastAPI) -> None:
    """The console: static files, no build step; its API calls carry the key."""
    index = STATIC_DIR / "index.html"
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    def console() -> FileResponse:
        return FileResponse(index, headers={"Cache-Control": "no-cache"})
