"""The OpenAPI document as the API really answers, served to keyed callers, and its docs page.

FastAPI documents a 422 for every operation with parameters, but the API answers malformed
input with 400 (surveil.api.errors); `documented` rewrites the generated document once so
every operation lists the errors it can give, whatever its route declared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse

from surveil.api.deps import Viewer
from surveil.api.views import API

DOCS_PAGE = Path(__file__).resolve().parent / "apidocs.html"
_ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
#: Errors any operation can give, beyond what its route declares.
_ALWAYS: dict[str, str] = {
    "400": "Malformed parameter, form field or body (the message names it).",
    "503": "The catalog database is unreachable; retry shortly (see Retry-After).",
}
_WITH_BODY: dict[str, str] = {"413": "Request body larger than api.max_upload_bytes."}
_FASTAPI_422 = "#/components/schemas/HTTPValidationError"

router = APIRouter(prefix=API, include_in_schema=False)


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR_REF}}}


def _is_fastapi_422(response: dict[str, Any]) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref") == _FASTAPI_422)


def documented(schema: dict[str, Any]) -> dict[str, Any]:
    """Replace FastAPI's default 422 by the 400 the API gives, and add the shared errors."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            if _is_fastapi_422(responses.get("422", {})):
                del responses["422"]
            extra = {**_ALWAYS, **(_WITH_BODY if "requestBody" in operation else {})}
            for status, description in extra.items():
                responses.setdefault(status, _error(description))
    components = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    return schema


def install_spec(app: FastAPI) -> None:
    """Build the document once (on first use), with the shared errors; serve it to viewers."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = documented(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.include_router(router)


@router.get("/openapi.json")
def openapi_document(_: Viewer, request: Request) -> JSONResponse:
    """The OpenAPI document: it maps the whole API, so it needs a key like the API does."""
    return JSONResponse(request.app.openapi(), headers={"Cache-Control": "private, no-cache"})


@router.get("/docs")
def docs_page() -> FileResponse:
    """A self-contained page (no CDN, no data) that asks for a key, then loads the document."""
    return FileResponse(DOCS_PAGE, headers={"Cache-Control": "no-cache"})
