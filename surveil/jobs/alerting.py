"""The alerting jobs: evaluate a rule over what arrived since its watermark; send webhooks.

Exactly-once evaluation rests on two facts: appearance ids become visible in id order
(the catalog serialises appearance inserts on PostgreSQL; SQLite has one writer), and
a batch's alerts are committed with the watermark that covers them, conditional on the
watermark it started from.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from surveil import telemetry
from surveil.alerts.evaluate import best_scores, fold_hits, hits_over
from surveil.alerts.model import AlertDraft, Rule
from surveil.alerts.notify import WebhookSender, backoff, describe, headers, payload, retryable
from surveil.config import AlertSettings
from surveil.search.render import iso
from surveil.storage.alerts import SqlAlerts
from surveil.storage.outbox import AttemptResult

log = structlog.get_logger(__name__)


@dataclass
class EvaluationReport:
    """What one evaluation (or a dry test) saw and did."""

    rule_id: int
    scanned: int = 0
    hits: int = 0
    new_alerts: int = 0
    extended: int = 0
    watermark: int = 0
    top_scores: list[float] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "scanned": self.scanned,
            "hits": self.hits,
            "new_alerts": self.new_alerts,
            "extended": self.extended,
            "watermark": self.watermark,
            "top_scores": [round(s, 4) for s in self.top_scores],
            "alerts": self.alerts,
        }


def _keep_top(report: EvaluationReport, scores: list[float], n: int = 10) -> None:
    report.top_scores = sorted(report.top_scores + scores, reverse=True)[:n]


#: Raises when a rule's example vectors and its space are not on one model (model guard).
ModelCheck = Callable[[Rule], None]


def evaluate_rule(
    alerts: SqlAlerts,
    rule_id: int,
    *,
    batch: int,
    notify: bool = True,
    check: ModelCheck | None = None,
) -> EvaluationReport:
    """Score every appearance stored since the rule's watermark; commit alerts per batch."""
    rule = alerts.get_rule(rule_id)
    if check is not None:
        check(rule)
    examples = alerts.example_vectors(rule.id)
    upto = alerts.newest_appearance_id()
    report = EvaluationReport(rule.id, watermark=rule.watermark)
    mark = rule.watermark
    while mark < upto:
        found, vectors = alerts.candidates(rule, after=mark, upto=upto, limit=batch)
        end = found[-1].id if len(found) == batch else upto
        scores = best_scores(examples, vectors)
        hits = hits_over(found, scores, rule.spec.threshold)
        opened = alerts.open_alerts(rule.id, [h.candidate.camera_id for h in hits])
        tracked = alerts.track_alerts(
            rule.id, [h.candidate.track_id for h in hits if h.candidate.track_id is not None]
        )
        folded = fold_hits(
            hits,
            opened,
            gap_s=rule.spec.gap_s,
            cooldown_s=rule.spec.cooldown_s,
            track_alerts=tracked,
        )
        new_ids = alerts.commit_evaluation(
            rule,
            expected_watermark=mark,
            new_watermark=end,
            new=folded.new,
            extended=folded.extended,
            notify=notify,
        )
        for alert_id, draft in zip(new_ids, folded.new, strict=True):
            _log_alert(rule, alert_id, draft)
        report.scanned += len(found)
        report.hits += len(hits)
        report.new_alerts += len(folded.new)
        report.extended += len(folded.extended)
        _keep_top(report, [float(s) for s in scores])
        mark = report.watermark = end
    telemetry.ALERT_EVALUATIONS.inc()
    telemetry.ALERT_SCANNED.inc(report.scanned)
    telemetry.ALERT_HITS.inc(report.hits)
    telemetry.ALERTS_RAISED.inc(report.new_alerts)
    return report


def dry_run_rule(
    alerts: SqlAlerts,
    rule_id: int,
    *,
    since: datetime,
    batch: int,
    check: ModelCheck | None = None,
) -> EvaluationReport:
    """What the rule would have alerted on since `since`: nothing stored, nobody notified."""
    rule = alerts.get_rule(rule_id)
    if check is not None:
        check(rule)
    examples = alerts.example_vectors(rule.id)
    upto = alerts.newest_appearance_id()
    report = EvaluationReport(rule.id, watermark=rule.watermark)
    opened: dict[str, AlertDraft] = {}
    by_track: dict[int, AlertDraft] = {}
    drafts: list[AlertDraft] = []
    mark = 0
    while mark < upto:
        found, vectors = alerts.candidates(rule, after=mark, upto=upto, limit=batch, since=since)
        if not found:
            break
        scores = best_scores(examples, vectors)
        hits = hits_over(found, scores, rule.spec.threshold)
        folded = fold_hits(
            hits,
            opened,
            gap_s=rule.spec.gap_s,
            cooldown_s=rule.spec.cooldown_s,
            track_alerts=by_track,
        )
        for draft in folded.new:
            opened[draft.camera_id] = draft
            if draft.track_id is not None:
                by_track[draft.track_id] = draft
        drafts.extend(folded.new)
        report.scanned += len(found)
        report.hits += len(hits)
        _keep_top(report, [float(s) for s in scores])
        mark = found[-1].id
    report.new_alerts = len(drafts)
    report.alerts = [_draft_dict(d) for d in sorted(drafts, key=lambda d: d.ts)]
    return report


def _draft_dict(d: AlertDraft) -> dict[str, Any]:
    return {
        "appearance_id": d.appearance_id,
        "camera_id": d.camera_id,
        "label": d.label,
        "score": round(d.score, 4),
        "ts": iso(d.ts),
        "last_ts": iso(d.last_ts),
        "hits": d.hits,
    }


def _log_alert(rule: Rule, alert_id: int, draft: AlertDraft) -> None:
    # The log notifier: every alert is in the log, webhooks or not.
    log.warning(
        "alert",
        alert_id=alert_id,
        rule_id=rule.id,
        rule=rule.spec.name,
        camera=draft.camera_id,
        label=draft.label,
        score=round(draft.score, 4),
        ts=iso(draft.ts),
        appearance_id=draft.appearance_id,
    )


def deliver_due(
    alerts: SqlAlerts,
    sender: WebhookSender,
    settings: AlertSettings,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    rng: random.Random | None = None,
    limit: int = 100,
) -> dict[str, int]:
    """POST every due delivery once; schedule retries with backoff or give up."""
    counts = {"delivered": 0, "retrying": 0, "failed": 0}
    for task in alerts.due_deliveries(now=clock(), limit=limit):
        sent_at = clock()
        body = payload(task.alert, delivery_id=task.id, sent_at=sent_at)
        hdrs = headers(delivery_id=task.id, body=body, secret=task.secret, now=sent_at.timestamp())
        result = sender.post(task.url, body, hdrs)
        attempt = task.attempts + 1
        if result.ok:
            state, next_at = "delivered", None
        elif (
            not result.refused
            and retryable(result.status_code)
            and attempt < settings.delivery_attempts
        ):
            delay = backoff(
                attempt, base=settings.backoff_seconds, cap=settings.backoff_max_seconds, rng=rng
            )
            state, next_at = "pending", clock() + timedelta(seconds=delay)
        else:
            state, next_at = "failed", None
        alerts.record_attempt(
            task.id,
            AttemptResult(result.status_code, result.error, result.seconds, state, next_at),
        )
        outcome = "retrying" if state == "pending" else state
        counts[outcome] += 1
        telemetry.WEBHOOK_ATTEMPTS.labels(outcome).inc()
        log.info(
            "webhook.attempt",
            delivery_id=task.id,
            alert_id=task.alert.id,
            attempt=attempt,
            state=state,
            **describe(result),
        )
    return counts
