"""Every error leaves the API as `{"error": {"code", "message"}}` with a fitting status."""

from __future__ import annotations

import re
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from surveil.domain import (
    BlobStoreUnavailableError,
    ConfigError,
    ConflictError,
    InputError,
    NotFoundError,
    SurveilError,
)
from surveil.vision.images import ImageTooLargeError, UnsupportedImageError

log = structlog.get_logger(__name__)

_CODES = {
    400: "invalid_input",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    503: "unavailable",
}


class ApiError(StarletteHTTPException):
    """An HTTP error with a machine code; raised by dependencies and middleware alike."""

    def __init__(
        self, status: int, message: str, *, code: str | None = None, headers: Any = None
    ) -> None:
        super().__init__(status_code=status, detail=message, headers=headers)
        self.code = code or _CODES.get(status, "error")


def error_response(status: int, code: str, message: str, headers: Any = None) -> JSONResponse:
    """The one error body shape."""
    body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


#: Most specific first: the first class an error is an instance of gives its status.
_DOMAIN_STATUS: tuple[tuple[type[SurveilError], int, str], ...] = (
    (NotFoundError, 404, "not_found"),
    (ConflictError, 409, "conflict"),
    (UnsupportedImageError, 415, "unsupported_media_type"),
    (ImageTooLargeError, 422, "image_too_large"),
    (InputError, 400, "invalid_input"),
    (ConfigError, 503, "unavailable"),
)


def _status_for(exc: SurveilError) -> tuple[int, str]:
    for cls, status, code in _DOMAIN_STATUS:
        if isinstance(exc, cls):
            return status, code
    return 500, "internal"


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
        parts.append(f"{where or 'request'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def _allowed_methods(request: Request, fallback: str) -> str:
    """Every method the OpenAPI document lists at this path (Starlette names one route's)."""
    path = request.url.path
    methods: set[str] = set()
    for template, operations in request.app.openapi().get("paths", {}).items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            methods |= {m.upper() for m in operations}
    return ", ".join(sorted(methods)) or fallback


def install_error_handlers(app: FastAPI) -> None:
    """Map HTTP, validation and domain errors onto the JSON error body."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = getattr(exc, "code", None) or _CODES.get(exc.status_code, "error")
        headers = exc.headers
        if exc.status_code == 405:
            fallback = (headers or {}).get("Allow", "")
            headers = {**(headers or {}), "Allow": _allowed_methods(request, fallback)}
        return error_response(exc.status_code, code, str(exc.detail), headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, "invalid_input", _validation_message(exc))

    @app.exception_handler(SurveilError)
    async def domain_error(request: Request, exc: SurveilError) -> JSONResponse:
        status, code = _status_for(exc)
        if status >= 500:
            log.error("api.error", path=request.url.path, error=str(exc))
        return error_response(status, code, str(exc))

    @app.exception_handler(BlobStoreUnavailableError)
    async def blobs_down(request: Request, exc: BlobStoreUnavailableError) -> JSONResponse:
        # The full line (endpoint, bucket, what to fix) is for operators, not callers:
        # the bucket stays private behind the API.
        log.warning("api.blobs_unavailable", path=request.url.path, error=str(exc))
        return error_response(
            503,
            "unavailable",
            "the image store is unreachable; retry shortly (operators: see the server log)",
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(DBAPIError)
    async def database_down(request: Request, exc: DBAPIError) -> JSONResponse:
        # A lost connection (PostgreSQL restarting) is worth a retry; anything else is a bug.
        if not exc.connection_invalidated and not isinstance(exc, OperationalError):
            return await unexpected(request, exc)
        log.warning("api.database_unavailable", path=request.url.path, error=str(exc.orig))
        return error_response(
            503,
            "unavailable",
            "the catalog database is unreachable; retry shortly",
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The message would leak internals; the log keeps the traceback for operators.
        log.exception("api.unexpected", path=request.url.path, error=type(exc).__name__)
        return error_response(500, "internal", "internal error; the server log has details")
