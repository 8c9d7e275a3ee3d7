"""One log line per API request, for operators: who called what, how it ended, how fast.

Only the route template is logged (never the query string, which can carry secrets) and
the caller's key id (never the key). Refusals (401, 413, 415, ...) are logged like any
other request; `api.access_log: false` turns the lines off.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("surveil.access")

#: Where `authenticate` leaves the caller's key id for this line (scope["state"]).
KEY_ID = "access_key_id"


def note_key_id(state: Any, key_id: int) -> None:
    """Called by authentication: the access line then names the key that was used."""
    setattr(state, KEY_ID, key_id)


class AccessLogMiddleware:
    """Logs `http.request` with method, route, status, ms, key_id and client per request.

    Outermost middleware: requests refused before routing (413) are logged with their path.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the client gets when the app raised before answering
        state: dict[str, Any] = scope.setdefault("state", {})

        async def recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording)
        finally:
            _log_line(scope, status, (time.perf_counter() - start) * 1000, state.get(KEY_ID))


def _log_line(scope: Scope, status: int, ms: float, key_id: object) -> None:
    """Warning for server errors, info for everything else (refusals included)."""
    route = scope.get("route")
    client = scope.get("client")
    emit = log.warning if status >= 500 else log.info
    emit(
        "http.request",
        method=str(scope.get("method", "")),
        # The template when a route matched, else the bare path (refused before routing).
        route=getattr(route, "path", None) or str(scope.get("path", "")),
        status=status,
        ms=round(ms, 1),
        key_id=key_id,
        client=f"{client[0]}:{client[1]}" if client else None,
    )
