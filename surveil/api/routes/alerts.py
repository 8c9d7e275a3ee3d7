"""Alert rules (operators manage them, everyone reads them) and the alerts they raise."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import Response

from surveil.alerts.model import Rule, RuleSpec
from surveil.alerts.rules import ExampleImage
from surveil.alerts.targets import redact_url
from surveil.api.alert_schemas import (
    AlertDetail,
    AlertList,
    AlertOut,
    RuleDeleted,
    RuleList,
    RuleOut,
    RuleTest,
    RuleTestReport,
    RuleUpdate,
    Text,
)
from surveil.api.deps import Operator, ServicesDep, Viewer, actor_of, record_action
from surveil.api.schemas import AUTH_ERRORS, NO_NUL, ErrorBody, Timestamp
from surveil.api.views import API
from surveil.container import Services
from surveil.domain import (
    ApiKeyInfo,
    InputError,
    NotFoundError,
    SurveilError,
    parse_time,
    role_allows,
    validate_camera_id,
)
from surveil.jobs.alerting import dry_run_rule
from surveil.search.audited import audit_rule_test
from surveil.vision.images import decode_untrusted

router = APIRouter(prefix=API, tags=["alerts"])

Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
_ERRORS = {
    **AUTH_ERRORS,
    400: {"model": ErrorBody, "description": "Malformed field."},
    404: {"model": ErrorBody, "description": "No such rule or alert."},
    409: {"model": ErrorBody, "description": "Name taken."},
}
MAX_EXAMPLES = 16
MAX_ALERTS_PAGE = 1000


def _examples(
    services: Services, files: list[UploadFile], appearance_ids: list[int]
) -> list[ExampleImage]:
    limits = services.settings.api
    out = []
    for upload in files:
        data = upload.file.read(limits.max_upload_bytes + 1)
        image = decode_untrusted(data, max_pixels=limits.max_image_pixels, what="example")
        out.append(ExampleImage(image, data))
    for appearance_id in appearance_ids:
        found = services.catalog.appearances([appearance_id])
        if not found:
            raise NotFoundError(f"no appearance with id {appearance_id}")
        data = services.blobs.get(found[0].crop_path)
        out.append(ExampleImage(decode_untrusted(data, max_pixels=limits.max_image_pixels), data))
    if not out or len(out) > MAX_EXAMPLES:
        raise InputError(f"give 1-{MAX_EXAMPLES} examples (example files or appearance ids)")
    return out


@router.get("/rules", response_model=RuleList, responses=AUTH_ERRORS)
def list_rules(caller: Viewer, services: ServicesDep) -> dict[str, Any]:
    """Every rule, by id; secrets are never returned, webhook URLs to viewers as host only."""
    return {"rules": [_rule_view(r, caller) for r in services.alerts.list_rules()]}


@router.post("/rules", response_model=RuleOut, status_code=201, responses=_ERRORS)
def create_rule(
    caller: Operator,
    request: Request,
    services: ServicesDep,
    name: Annotated[str, Form(min_length=1, max_length=200, pattern=NO_NUL)],
    threshold: Annotated[float, Form(ge=-1.0, le=1.0, description="Cosine similarity.")],
    example: Annotated[list[UploadFile] | None, File(description="Example crops.")] = None,
    example_appearance_id: Annotated[
        list[int] | None, Form(description="Stored appearances whose crops are examples.")
    ] = None,
    camera: Annotated[list[Text] | None, Form(description="Only these cameras.")] = None,
    label: Annotated[list[Text] | None, Form(description="Only these labels.")] = None,
    interval: Annotated[int | None, Form(ge=1, le=604800)] = None,
    cooldown: Annotated[int | None, Form(ge=0, le=604800)] = None,
    gap: Annotated[float, Form(ge=0.0, le=86400.0)] = 10.0,
    webhook: Annotated[list[Text] | None, Form(description="URLs to POST alerts to.")] = None,
    secret: Annotated[str | None, Form(min_length=16, max_length=200, pattern=NO_NUL)] = None,
) -> dict[str, Any]:
    """A rule that alerts on appearances ingested from now on that match an example."""
    defaults = services.settings.alerts
    spec = RuleSpec(
        name=name,
        threshold=threshold,
        cameras=tuple(validate_camera_id(c) for c in camera or ()),
        labels=tuple(label or ()),
        interval_s=interval or defaults.interval_seconds,
        cooldown_s=defaults.cooldown_seconds if cooldown is None else cooldown,
        gap_s=gap,
        webhooks=tuple(webhook or ()),
        secret=secret,
    )
    images = _examples(services, example or [], example_appearance_id or [])
    rule = services.rules().create(spec, images, created_by=caller.name)
    record_action(services, caller, request, "rule.create", f"rule {rule.id} ({name})")
    return rule.to_dict()


@router.get("/rules/{rule_id}", response_model=RuleOut, responses=_ERRORS)
def get_rule(rule_id: Id, caller: Viewer, services: ServicesDep) -> dict[str, Any]:
    """One rule with its examples and watermark (webhook URLs to viewers as host only)."""
    return _rule_view(services.alerts.get_rule(rule_id), caller)


@router.patch("/rules/{rule_id}", response_model=RuleOut, responses=_ERRORS)
def update_rule(
    rule_id: Id, body: RuleUpdate, caller: Operator, request: Request, services: ServicesDep
) -> dict[str, Any]:
    """Change a rule's settings; examples and watermark stay (disable with enabled=false)."""
    rule = services.alerts.get_rule(rule_id)
    given = body.model_dump(exclude_unset=True)
    names = {"interval": "interval_s", "cooldown": "cooldown_s", "gap": "gap_s"}
    changes = {names.get(k, k): v for k, v in given.items() if v is not None}
    for key in ("cameras", "labels", "webhooks"):
        if key in changes:
            changes[key] = tuple(changes[key])
    for cam in changes.get("cameras", ()):
        validate_camera_id(cam)
    spec = dataclasses.replace(rule.spec, **changes)
    updated = services.rules().update(rule_id, spec)
    changed = ", ".join(sorted(k for k in given if k != "secret")) or "nothing"
    record_action(services, caller, request, "rule.update", f"rule {rule_id}: {changed}")
    return updated.to_dict()


@router.delete("/rules/{rule_id}", response_model=RuleDeleted, responses=_ERRORS)
def delete_rule(
    rule_id: Id, caller: Operator, request: Request, services: ServicesDep
) -> dict[str, Any]:
    """Delete a rule with its examples and alerts."""
    rule = services.alerts.get_rule(rule_id)
    services.rules().delete(rule_id)
    record_action(services, caller, request, "rule.delete", f"rule {rule_id} ({rule.spec.name})")
    return {"id": rule_id, "name": rule.spec.name, "deleted": True}


@router.post("/rules/{rule_id}/test", response_model=RuleTestReport, responses=_ERRORS)
def try_rule(
    rule_id: Id, body: RuleTest, caller: Operator, request: Request, services: ServicesDep
) -> dict[str, Any]:
    """What the rule would have alerted on since a time: nothing stored, nobody notified.

    A dry run searches the catalog like a search does, so it is audited (`rule_test`).
    """
    actor = actor_of(caller, request)
    given = {"rule_id": rule_id, "since": body.since}
    try:
        since = parse_time(body.since, "since")
        assert since is not None
        batch = services.settings.alerts.evaluate_batch
        report = dry_run_rule(
            services.alerts,
            rule_id,
            since=since,
            batch=batch,
            check=services.check_rule_models,
        )
    except SurveilError as exc:
        audit_rule_test(services.access, actor, given, status="refused", detail=str(exc))
        raise
    audit_rule_test(services.access, actor, given, status="ok", count=report.hits)
    return report.to_dict()


@router.get(
    "/rules/{rule_id}/examples/{example_id}.jpg",
    response_class=Response,
    responses={**_ERRORS, 200: {"content": {"image/jpeg": {}}}},
)
def example_crop(rule_id: Id, example_id: Id, _: Viewer, services: ServicesDep) -> Response:
    """One of the rule's example crops."""
    data = services.blobs.get(services.alerts.example_blob(rule_id, example_id))
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private"})


@router.get("/alerts", response_model=AlertList, responses=_ERRORS)
def list_alerts(
    _: Viewer,
    services: ServicesDep,
    rule_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    camera: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    since: Annotated[Timestamp | None, Query(description="RFC 3339")] = None,
    until: Annotated[Timestamp | None, Query(description="RFC 3339")] = None,
    acknowledged: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_ALERTS_PAGE)] = 100,
) -> dict[str, Any]:
    """Alerts, newest first; filter by rule, camera, time and acknowledgement."""
    found = services.alerts.list_alerts(
        rule_id=rule_id,
        camera_id=camera,
        since=parse_time(since, "since"),
        until=parse_time(until, "until"),
        acknowledged=acknowledged,
        limit=limit,
    )
    return {"alerts": [a.to_dict() for a in found]}


@router.get("/alerts/{alert_id}", response_model=AlertDetail, responses=_ERRORS)
def get_alert(alert_id: Id, caller: Viewer, services: ServicesDep) -> dict[str, Any]:
    """One alert with every webhook delivery attempt (URLs to viewers as host only)."""
    alert = services.alerts.get_alert(alert_id)
    deliveries = services.alerts.deliveries(alert_id)
    if not _sees_webhooks(caller):
        deliveries = [{**d, "url": redact_url(str(d["url"]))} for d in deliveries]
    return {**alert.to_dict(), "deliveries": deliveries}


def _sees_webhooks(caller: ApiKeyInfo) -> bool:
    """Operators and admins see full webhook URLs; viewers do not (tokens ride in them)."""
    return role_allows(caller.role, "operator")


def _rule_view(rule: Rule, caller: ApiKeyInfo) -> dict[str, Any]:
    """A rule as this caller may see it."""
    out = rule.to_dict()
    if not _sees_webhooks(caller):
        out["webhooks"] = [redact_url(u) for u in out["webhooks"]]
    return out


@router.post("/alerts/{alert_id}/ack", response_model=AlertOut, responses=_ERRORS)
def acknowledge(
    alert_id: Id, caller: Operator, request: Request, services: ServicesDep
) -> dict[str, Any]:
    """Mark an alert seen (the first acknowledgement is kept)."""
    alert = services.alerts.acknowledge(alert_id, by=caller.name)
    record_action(services, caller, request, "alert.ack", f"alert {alert_id}")
    return alert.to_dict()
