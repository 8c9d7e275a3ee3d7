"""The explicit job registry: every scheduled job, built from the services and the rules.

Nothing registers itself on import; adding a job means adding it here.
"""

from __future__ import annotations

from datetime import timedelta

from surveil.alerts.model import Rule
from surveil.alerts.notify import WebhookSender
from surveil.container import Services, shared_index
from surveil.jobs.alerting import deliver_due, evaluate_rule
from surveil.jobs.runner import Job

DELIVER = "alerts.deliver"
RECONCILE = "index.reconcile"
RULE_PREFIX = "rule:"


def rule_job_name(rule_id: int) -> str:
    """A rule's job name (its state row in job_state)."""
    return f"{RULE_PREFIX}{rule_id}"


def rule_job(services: Services, rule: Rule) -> Job:
    """Evaluate one rule over what arrived since its watermark."""
    batch = services.settings.alerts.evaluate_batch

    def run() -> dict[str, object]:
        report = evaluate_rule(
            services.alerts, rule.id, batch=batch, check=services.check_rule_models
        )
        return {k: v for k, v in report.to_dict().items() if k not in ("alerts", "top_scores")}

    return Job(
        rule_job_name(rule.id),
        timedelta(seconds=rule.spec.interval_s),
        run,
        work_keys=("scanned", "hits", "new_alerts", "extended"),
    )


def delivery_job(services: Services, sender: WebhookSender) -> Job:
    """Send due webhook deliveries (first tries and retries)."""
    settings = services.settings.alerts

    def run() -> dict[str, int]:
        return deliver_due(services.alerts, sender, settings)

    return Job(
        DELIVER,
        timedelta(seconds=settings.delivery_poll_seconds),
        run,
        work_keys=("delivered", "retrying", "failed"),
    )


def reconcile_job(services: Services) -> Job:
    """Make a shared index (Milvus) agree with the catalog: what start-up does for FAISS.

    A worker killed between its catalog commit and its Milvus write leaves tracks the
    index lacks; this puts them back within `index.milvus.reconcile_minutes`.
    """

    def run() -> dict[str, int]:
        report = services.reconcile_index()
        return {
            "added": sum(report.added.values()),
            "removed": sum(report.removed.values()),
            "refreshed": sum(report.refreshed.values()),
        }

    minutes = services.settings.index.milvus.reconcile_minutes
    return Job(
        RECONCILE, timedelta(minutes=minutes), run, work_keys=("added", "removed", "refreshed")
    )


def build_jobs(services: Services, sender: WebhookSender) -> list[Job]:
    """Every job, in the order `--once` runs them: rules, deliveries, retention, the storage
    check, reconcile."""
    from surveil.jobs.retention import retention_job
    from surveil.jobs.storage import storage_check_job

    jobs = [rule_job(services, r) for r in services.alerts.list_rules(enabled_only=True)]
    jobs.append(delivery_job(services, sender))
    jobs.append(retention_job(services))
    if services.settings.retention.check_minutes > 0:
        jobs.append(storage_check_job(services))
    if shared_index(services.settings) and services.settings.index.milvus.reconcile_minutes:
        jobs.append(reconcile_job(services))
    return jobs
