"""Operator feedback on search and alert hits, re-runs with it, and threshold calibration."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from surveil.api.deps import Admin, Operator, ServicesDep, actor_of
from surveil.api.feedback_schemas import (
    AlertFeedbackIn,
    CalibrationIn,
    CalibrationOut,
    FeedbackIn,
    FeedbackList,
    FeedbackOut,
)
from surveil.api.routes.search import server_timing
from surveil.api.schemas import AUTH_ERRORS, ErrorBody, SearchResponse
from surveil.api.views import API, search_view
from surveil.domain import FeedbackTarget, InputError, NotFoundError, Space
from surveil.search.render import feedback_view

router = APIRouter(prefix=API, tags=["feedback"])

Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
OptId = Annotated[int | None, Query(ge=1, le=2**63 - 1)]
_ERRORS = {
    **AUTH_ERRORS,
    400: {
        "model": ErrorBody,
        "description": "Not a search, no hit named, or a hit of another space.",
    },
    404: {"model": ErrorBody, "description": "Unknown search, hit, alert or rule."},
}


@router.get("/searches/{audit_id}/feedback", response_model=FeedbackList, responses=_ERRORS)
def list_feedback(audit_id: Id, _: Operator, services: ServicesDep) -> dict[str, Any]:
    """The verdicts given on a search's hits (a re-run's id lists its original's)."""
    return {"feedback": [feedback_view(f) for f in services.feedback().listing(audit_id=audit_id)]}


@router.put("/searches/{audit_id}/feedback", response_model=FeedbackOut, responses=_ERRORS)
def mark(
    audit_id: Id, body: FeedbackIn, caller: Operator, request: Request, services: ServicesDep
) -> dict[str, Any]:
    """Mark one hit of a search confirmed or rejected; a second verdict replaces the first."""
    target = FeedbackTarget(
        audit_id=audit_id, track_id=body.track_id, appearance_id=body.appearance_id
    )
    done = services.feedback().mark(actor_of(caller, request), target, body.verdict)
    return feedback_view(done)


@router.delete("/searches/{audit_id}/feedback", status_code=204, responses=_ERRORS)
def clear(
    audit_id: Id,
    caller: Operator,
    request: Request,
    services: ServicesDep,
    track_id: OptId = None,
    appearance_id: OptId = None,
) -> Response:
    """Forget the verdict on one hit of a search (404 when there was none)."""
    target = FeedbackTarget(audit_id=audit_id, track_id=track_id, appearance_id=appearance_id)
    if not services.feedback().clear(actor_of(caller, request), target):
        raise NotFoundError(f"no verdict on that hit of search {audit_id}")
    return Response(status_code=204)


@router.post(
    "/searches/{audit_id}/rerun",
    response_model=SearchResponse,
    response_model_exclude_unset=True,
    responses=_ERRORS,
    summary="Search again with the confirmed hits joining the query, rejected ones out",
)
def rerun(
    audit_id: Id,
    caller: Operator,
    request: Request,
    response: Response,
    services: ServicesDep,
    limit: Annotated[int | None, Query(ge=1, le=10_000)] = None,
) -> dict[str, Any]:
    """ "More like the confirmed ones": audited as a search; X-Surveil-Audit-Id is the re-run's."""
    most = services.settings.api.max_results
    if limit is not None and limit > most:
        raise InputError(f"limit must be between 1 and {most} (setting api.max_results)")
    services.refresh_index(every=services.settings.api.index_refresh_seconds)
    done = services.feedback().rerun(actor_of(caller, request), audit_id, limit=limit)
    response.headers["X-Surveil-Audit-Id"] = str(done.audit_id)
    response.headers["Server-Timing"] = server_timing(done.result.timings, done.result.seconds)
    return search_view(done.result)


@router.put("/alerts/{alert_id}/feedback", response_model=FeedbackOut, responses=_ERRORS)
def mark_alert(
    alert_id: Id, body: AlertFeedbackIn, caller: Operator, request: Request, services: ServicesDep
) -> dict[str, Any]:
    """Mark an alert right (confirmed) or wrong (rejected): a label for its rule's calibration."""
    target = FeedbackTarget(alert_id=alert_id)
    return feedback_view(services.feedback().mark(actor_of(caller, request), target, body.verdict))


@router.get("/rules/{rule_id}/feedback", response_model=FeedbackList, responses=_ERRORS)
def rule_feedback(rule_id: Id, _: Operator, services: ServicesDep) -> dict[str, Any]:
    """The verdicts given on a rule's alerts and hits."""
    services.alerts.get_rule(rule_id)  # 404 for an unknown rule
    return {"feedback": [feedback_view(f) for f in services.feedback().listing(rule_id=rule_id)]}


@router.post("/rules/{rule_id}/calibration", response_model=CalibrationOut, responses=_ERRORS)
def calibrate_rule(
    rule_id: Id,
    body: CalibrationIn,
    caller: Operator,
    request: Request,
    services: ServicesDep,
    apply: Annotated[
        bool, Query(description="Change the rule's threshold to the proposal.")
    ] = False,
) -> dict[str, Any]:
    """The lowest threshold reaching the precision on the rule's labels; applied only if asked."""
    found = services.calibrator().rule(
        actor_of(caller, request), rule_id, precision=body.precision, apply=apply
    )
    return found.to_dict()


@router.post("/spaces/{space}/calibration", response_model=CalibrationOut, responses=_ERRORS)
def calibrate_space(
    space: Space,
    body: CalibrationIn,
    caller: Admin,
    request: Request,
    services: ServicesDep,
    apply: Annotated[bool, Query(description="Make the proposal the space's min_score.")] = False,
) -> dict[str, Any]:
    """A space's default min_score from every verdict in it (admin: it changes every search)."""
    found = services.calibrator().space(
        actor_of(caller, request), space, precision=body.precision, apply=apply
    )
    return found.to_dict()
