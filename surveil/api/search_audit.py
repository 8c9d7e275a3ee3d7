"""Every API search attempt leaves one audit row, however early it was refused.

The search route audits what reaches `AuditedSearch.run`; this middleware sees the rest:
a role refused (403), a body too large (413, maybe before FastAPI read a byte), a form
FastAPI could not validate, bad input, an unsupported or oversized image (400/415/422).
What is known by then goes in the row: the key (from the dependency that checked it, or
the Authorization header when the refusal came first), the client and the form as given.
A request with no valid key is not audited (it is counted and logged as unauthenticated).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import anyio
import structlog
from starlette.datastructures import FormData, UploadFile
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from surveil.api.errors import _status_for  # one mapping of domain errors onto statuses
from surveil.api.views import API
from surveil.domain import ApiKeyInfo, SurveilError
from surveil.search.audited import Actor, record_refusal

log = structlog.get_logger(__name__)

SEARCH_PATH = f"{API}/search"
#: Routes audited however they end, and the audit action each records.
AUDITED_PATHS = {SEARCH_PATH: "search", f"{API}/compare": "compare"}
_STATE_KEY = "search_attempt"
_MAX_ERROR_BODY = 8192


@dataclass
class SearchAttempt:
    """What the request has shown so far; the route sets `audited` once `run()` owns it."""

    caller: ApiKeyInfo | None = None
    given: dict[str, Any] = field(default_factory=dict)
    kind: str | None = None
    audited: bool = False
    action: str = "search"
    path: str = SEARCH_PATH


def attempt_of(conn: HTTPConnection) -> SearchAttempt | None:
    """The search attempt this request is, or None for any other request."""
    found = conn.scope.get("state", {}).get(_STATE_KEY)
    return found if isinstance(found, SearchAttempt) else None


def form_record(form: FormData) -> dict[str, Any]:
    """The form as given: values as sent, files by name, type and size (never the bytes)."""
    out: dict[str, Any] = {}
    for key in form:
        values = []
        for value in form.getlist(key):
            if isinstance(value, UploadFile):
                values.append(f"file {value.filename!r} {value.content_type} {value.size} bytes")
            else:
                values.append(value)
        out[key] = values[0] if len(values) == 1 else values
    return out


def describe_refusal(exc: SurveilError) -> str:
    """A refusal as the trail keeps it: the HTTP status the caller got, and why."""
    return f"HTTP {_status_for(exc)[0]}: {exc}"


def _reason(status: int, body: bytes) -> str:
    try:
        message = str(json.loads(body)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        message = "refused"
    return f"HTTP {status}: {message}"


class SearchAuditMiddleware:
    """Audits each POST /api/v1/search (and /compare) that ended in an error its route did not."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", "")).rstrip("/")
        if not (
            scope["type"] == "http" and scope.get("method") == "POST" and path in AUDITED_PATHS
        ):
            await self.app(scope, receive, send)
            return
        action = AUDITED_PATHS[path]
        attempt = SearchAttempt(
            action=action, path=path, kind=None if action == "search" else action
        )
        scope.setdefault("state", {})[_STATE_KEY] = attempt
        status = 500
        body = bytearray()

        async def watching(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and len(body) < _MAX_ERROR_BODY:
                body.extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, watching)
        finally:
            if status >= 400 and status != 401 and not attempt.audited:
                await anyio.to_thread.run_sync(self._record, scope, attempt, status, bytes(body))

    def _record(self, scope: Scope, attempt: SearchAttempt, status: int, body: bytes) -> None:
        try:
            self._write(scope, attempt, status, body)
        except Exception as exc:  # the response is sent; the log must say the row is missing
            log.error("search.audit_failed", status=status, error=type(exc).__name__)

    def _write(self, scope: Scope, attempt: SearchAttempt, status: int, body: bytes) -> None:
        services = scope["app"].state.services
        conn = HTTPConnection(scope)
        client = conn.client.host if conn.client else None
        caller = attempt.caller or _key_of(conn, services)
        if caller is None:
            # Refused before any key was checked, and none valid was sent: unauthenticated.
            scope["app"].state.metrics.unauthenticated.labels(attempt.path).inc()
            log.warning("api.unauthenticated", client=client, path=attempt.path, status=status)
            return
        actor = Actor(key_id=caller.id, name=caller.name, role=caller.role, client=client)
        record_refusal(
            services.access,
            actor,
            reason=_reason(status, body),
            given=attempt.given,
            kind=attempt.kind,
            status="refused" if status < 500 else "error",
            action=attempt.action,
        )


def _key_of(conn: HTTPConnection, services: Any) -> ApiKeyInfo | None:
    """The key in the Authorization header, when the request was refused before its check."""
    scheme, _, key = conn.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key or len(key) > 200:
        return None
    touch = timedelta(seconds=services.settings.api.key_touch_seconds)
    info: ApiKeyInfo | None = services.access.authenticate(key.strip(), touch_after=touch)
    return info
