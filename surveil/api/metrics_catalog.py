"""Collectors that read the catalog at scrape time: jobs, webhook outbox, rule lag.

Whichever process ran a job, delivered a webhook or evaluated a rule, the outcome is in
the catalog, so every `serve` replica reports the same figures. A catalog that cannot be
read yields no series from that collector rather than a failed scrape.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from surveil.container import Services
from surveil.storage.db import make_session_factory
from surveil.storage.ops_stats import SqlOpsStats
from surveil.telemetry import DiskCollector, PoolCollector, watch_engine

log = structlog.get_logger(__name__)


def _seconds(ts: datetime | None) -> float:
    return 0.0 if ts is None else ts.timestamp()


class JobsCollector(Collector):
    """Each scheduled job's recorded runs, last outcome, duration and times."""

    def __init__(self, stats: SqlOpsStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        try:
            jobs = self._stats.jobs()
        except SQLAlchemyError as exc:
            log.warning("metrics.catalog_unreadable", part="jobs", error=str(exc)[:200])
            return
        runs = CounterMetricFamily(
            "surveil_job_recorded_runs", "Job runs recorded in the catalog", labels=["job"]
        )
        failed = GaugeMetricFamily(
            "surveil_job_last_failed", "1 when the job's last run failed", labels=["job"]
        )
        seconds = GaugeMetricFamily(
            "surveil_job_last_duration_seconds", "Seconds the last run took", labels=["job"]
        )
        finished = GaugeMetricFamily(
            "surveil_job_last_finished_timestamp_seconds",
            "When the last run ended (Unix seconds; 0 = never ran)",
            labels=["job"],
        )
        ok = GaugeMetricFamily(
            "surveil_job_last_ok_timestamp_seconds",
            "When the last run ended, if it succeeded (absent while the last run failed)",
            labels=["job"],
        )
        due = GaugeMetricFamily(
            "surveil_job_next_run_timestamp_seconds", "When the job is due next", labels=["job"]
        )
        for j in jobs:
            runs.add_metric([j.name], float(j.runs))
            failed.add_metric([j.name], 1.0 if j.last_status == "error" else 0.0)
            seconds.add_metric([j.name], j.last_seconds or 0.0)
            finished.add_metric([j.name], _seconds(j.last_finished_at))
            if j.last_status == "ok":
                ok.add_metric([j.name], _seconds(j.last_finished_at))
            due.add_metric([j.name], _seconds(j.next_run_at))
        yield from (runs, failed, seconds, finished, ok, due)


class DeliveriesCollector(Collector):
    """The webhook outbox: deliveries by state and the age of the oldest one still owed."""

    def __init__(self, stats: SqlOpsStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        try:
            d = self._stats.deliveries()
        except SQLAlchemyError as exc:
            log.warning("metrics.catalog_unreadable", part="deliveries", error=str(exc)[:200])
            return
        states = GaugeMetricFamily(
            "surveil_webhook_deliveries",
            "Webhook deliveries by state: failed (gave up), pending (owed, includes "
            "retrying), retrying (owed after a failed try)",
            labels=["state"],
        )
        for name in ("failed", "pending", "retrying"):
            states.add_metric([name], float(getattr(d, name)))
        age = GaugeMetricFamily(
            "surveil_webhook_oldest_pending_seconds",
            "Seconds since the alert of the oldest undelivered webhook was raised (0 = none)",
        )
        now = datetime.now(UTC)
        oldest = d.oldest_pending
        age.add_metric([], 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds()))
        yield states
        yield age


class RuleLagCollector(Collector):
    """How far the slowest enabled alert rule is behind the newest appearance."""

    def __init__(self, stats: SqlOpsStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        try:
            lag = self._stats.rule_lag()
        except SQLAlchemyError as exc:
            log.warning("metrics.catalog_unreadable", part="rule_lag", error=str(exc)[:200])
            return
        rules = GaugeMetricFamily("surveil_alert_rules_enabled", "Enabled alert rules")
        rules.add_metric([], float(lag.rules))
        behind = GaugeMetricFamily(
            "surveil_alert_rule_lag_appearances",
            "Appearances stored after the slowest enabled rule's watermark",
        )
        behind.add_metric([], float(lag.appearances))
        seconds = GaugeMetricFamily(
            "surveil_alert_rule_lag_seconds",
            "Capture time from the oldest unevaluated appearance to the newest (0 = caught up)",
        )
        gap = 0.0
        if lag.oldest_unevaluated is not None and lag.newest is not None:
            gap = max(0.0, (lag.newest - lag.oldest_unevaluated).total_seconds())
        seconds.add_metric([], gap)
        yield from (rules, behind, seconds)


def catalog_collectors(services: Services) -> list[Collector]:
    """The API's scrape-time collectors beyond HTTP: catalog state, pool, disk."""
    watch_engine(services.engine)
    stats = SqlOpsStats(make_session_factory(services.engine))
    return [
        JobsCollector(stats),
        DeliveriesCollector(stats),
        RuleLagCollector(stats),
        PoolCollector(services.engine),
        DiskCollector(services.settings.storage.root),
    ]
