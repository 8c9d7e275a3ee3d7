"""FastAPI dependencies as Annotated aliases: the services, the caller, and role checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from surveil.api.access_log import note_key_id
from surveil.api.errors import ApiError
from surveil.api.metrics import Metrics
from surveil.api.search_audit import attempt_of, form_record
from surveil.container import Services
from surveil.domain import ApiKeyInfo, NewAuditEntry, Role, role_allows
from surveil.search.audited import Actor

_bearer = HTTPBearer(auto_error=False, description="An API key from `surveil keys create`.")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
#: Longer values are never keys; refusing them early keeps hashing bounded.
MAX_KEY_LENGTH = 200


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


ServicesDep = Annotated[Services, Depends(get_services)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]


def authenticate(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKeyInfo:
    """The caller's key; 401 when it is missing, unknown or revoked (never saying which)."""
    if credentials is None:
        raise ApiError(
            401, "an API key is required: send 'Authorization: Bearer <key>'", headers=_CHALLENGE
        )
    key = credentials.credentials
    touch = timedelta(seconds=services.settings.api.key_touch_seconds)
    info = None
    if len(key) <= MAX_KEY_LENGTH:
        info = services.access.authenticate(key, touch_after=touch)
    if info is None:
        raise ApiError(401, "API key is unknown or revoked", headers=_CHALLENGE)
    note_key_id(request.state, info.id)  # the access log names the key (never the key)
    attempt = attempt_of(request)
    if attempt is not None:
        attempt.caller = info  # a search refused from here on is audited under this key
    return info


Caller = Annotated[ApiKeyInfo, Depends(authenticate)]


def require(role: Role) -> Callable[[Request, ApiKeyInfo], Awaitable[ApiKeyInfo]]:
    """A dependency that lets through keys with at least `role`."""

    async def check(request: Request, caller: Caller) -> ApiKeyInfo:
        attempt = attempt_of(request)
        if attempt is not None:
            # FastAPI parsed the form before its dependencies; this is the cached copy.
            attempt.given = form_record(await request.form())
        if not role_allows(caller.role, role):
            raise ApiError(403, f"this needs the {role} role; key {caller.name!r} is {caller.role}")
        return caller

    return check


Viewer = Annotated[ApiKeyInfo, Depends(require("viewer"))]
Operator = Annotated[ApiKeyInfo, Depends(require("operator"))]
Admin = Annotated[ApiKeyInfo, Depends(require("admin"))]


def actor_of(caller: ApiKeyInfo, request: Request) -> Actor:
    """The audit trail's view of a caller: key, name, role, client address."""
    client = request.client.host if request.client else None
    return Actor(key_id=caller.id, name=caller.name, role=caller.role, client=client)


def record_action(
    services: Services, caller: ApiKeyInfo, request: Request, action: str, detail: str
) -> None:
    """Write an administrative action (camera, key, rule, hold change) to the audit trail."""
    actor = actor_of(caller, request)
    services.access.record(
        NewAuditEntry(
            action=action,
            key_id=actor.key_id,
            key_name=actor.name,
            role=actor.role,
            client=actor.client,
            detail=detail,
        )
    )
