"""Metrics for every moving part, scraped over HTTP: each series moves when its event does.

Real catalogs (SQLite and PostgreSQL), real scheduler runner, a real loopback webhook
receiver, real retention, real models for ingest; `/metrics` read through the app and
the separate process-metrics listener that `surveil run` / `surveil scheduler` serve.
"""

from __future__ import annotations

import re
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from api_world import world_settings
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from synthetic import OTHER, TARGET, make_rule, store_persons

from surveil.alerts.notify import WebhookSender
from surveil.alerts.targets import WebhookPolicy
from surveil.api.app import create_app
from surveil.container import Services, build_services
from surveil.ingest.pipeline import IngestOptions
from surveil.jobs.alerting import deliver_due, evaluate_rule
from surveil.jobs.retention import retention_parts, run_retention
from surveil.jobs.runner import Job, JobRunner
from surveil.storage.migrate import upgrade
from surveil.telemetry import serve_process_metrics

MOT04 = Path("videos/mmtracking_demo/demo_MOT17-04_frames1-8.mp4")
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(body: str) -> Samples:
    """Every sample of an exposition, keyed by sample name and labels."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when absent (a counter never touched)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def undocumented(*scrapes: Samples) -> set[str]:
    """Series names scraped that deploy/README.md's Monitoring table does not list."""
    readme = (Path(__file__).parents[2] / "deploy" / "README.md").read_text()
    names = {n for samples in scrapes for n, _ in samples if n.startswith("surveil_")}
    bases = {re.sub(r"_(bucket|count|sum|created)$", "", n) for n in names}
    return {b for b in bases if f"`{b}`" not in readme and f"`{b}_total`" not in readme}


def total(samples: Samples, name: str) -> float:
    """A series summed over its labels."""
    return sum(v for (n, _), v in samples.items() if n == name)


@dataclass
class Ops:
    services: Services
    client: TestClient
    viewer: dict[str, str]

    def scrape(self) -> Samples:
        response = self.client.get("/metrics", headers=self.viewer)
        assert response.status_code == 200
        return parse(response.text)


@pytest.fixture
def ops(make_settings: Any, database_url: str) -> Iterator[Ops]:
    upgrade(database_url)
    settings = make_settings(
        **{
            "database.url": database_url,
            "retention.days": 7,
            "alerts.delivery_attempts": 2,
            "alerts.backoff_seconds": 1,
        }
    )
    services = build_services(settings)
    _, key = services.access.create_key(name="scraper", role="viewer")
    try:
        with TestClient(create_app(services)) as client:
            yield Ops(services, client, {"Authorization": f"Bearer {key}"})
    finally:
        services.close()


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[int]]]:
    """A loopback webhook endpoint: 503 to its first POST, 204 after."""
    codes: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            codes.append(503 if not codes else 204)
            self.send_response(codes[-1])
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", codes
    finally:
        server.shutdown()


def _broken() -> dict[str, Any]:
    raise RuntimeError("disk on fire")


def test_jobs_alerts_webhooks_retention_and_catalog_series_move(
    ops: Ops, receiver: tuple[str, list[int]]
) -> None:
    s = ops.services
    url, _ = receiver
    rule_id = make_rule(s, webhooks=(url, "http://127.0.0.1:9/closed"))
    store_persons(s, "lobby", [(0, TARGET), (5, OTHER)])
    m0 = ops.scrape()
    assert value(m0, "surveil_alert_rules_enabled") == 1
    assert value(m0, "surveil_alert_rule_lag_appearances") == 2
    assert value(m0, "surveil_alert_rule_lag_seconds") == 5

    runner = JobRunner(s.jobs)
    rule_job = Job(
        "rule-metrics",
        timedelta(hours=1),
        lambda: evaluate_rule(s.alerts, rule_id, batch=100).to_dict(),
    )
    assert runner.run_if_due(rule_job) is not None
    assert runner.run_if_due(Job("broken", timedelta(hours=1), _broken)) is not None
    m1 = ops.scrape()
    for name in ("evaluations", "hits"):
        assert (
            value(m1, f"surveil_alert_{name}_total") - value(m0, f"surveil_alert_{name}_total") == 1
        )
    assert value(m1, "surveil_alerts_raised_total") - value(m0, "surveil_alerts_raised_total") == 1
    assert value(m1, "surveil_alert_rule_lag_appearances") == 0
    assert value(m1, "surveil_job_recorded_runs_total", job="rule-metrics") == 1
    assert value(m1, "surveil_job_last_failed", job="rule-metrics") == 0
    assert value(m1, "surveil_job_last_failed", job="broken") == 1
    assert ("surveil_job_last_ok_timestamp_seconds", frozenset({("job", "broken")})) not in m1
    ok_at = value(m1, "surveil_job_last_ok_timestamp_seconds", job="rule-metrics")
    assert abs(ok_at - datetime.now(UTC).timestamp()) < 60
    errors = ("surveil_job_runs_total", {"job": "broken", "status": "error"})
    assert value(m1, errors[0], **errors[1]) - value(m0, errors[0], **errors[1]) == 1
    assert value(m1, "surveil_job_seconds_count", job="rule-metrics") >= 1
    assert value(m1, "surveil_webhook_deliveries", state="pending") == 2
    assert value(m1, "surveil_webhook_oldest_pending_seconds") > 0

    sender = WebhookSender(timeout=2, policy=WebhookPolicy(["127.0.0.1:*"]))
    clock = [datetime.now(UTC)]
    try:
        deliver_due(s.alerts, sender, s.settings.alerts, clock=lambda: clock[0])
        m2 = ops.scrape()
        clock[0] += timedelta(seconds=s.settings.alerts.backoff_max_seconds)
        deliver_due(s.alerts, sender, s.settings.alerts, clock=lambda: clock[0])
    finally:
        sender.close()
    m3 = ops.scrape()
    assert value(m2, "surveil_webhook_deliveries", state="retrying") == 2
    assert value(m3, "surveil_webhook_deliveries", state="failed") == 1
    assert value(m3, "surveil_webhook_deliveries", state="pending") == 0
    assert value(m3, "surveil_webhook_oldest_pending_seconds") == 0
    attempts = "surveil_webhook_attempts_total"
    for state, n in (("retrying", 2), ("delivered", 1), ("failed", 1)):
        assert value(m3, attempts, state=state) - value(m0, attempts, state=state) == n

    report = run_retention(retention_parts(s), s.settings.retention, now=datetime.now(UTC))
    m4 = ops.scrape()
    assert report.appearances >= 1  # the non-evidence appearance is 16+ days old
    rows = "surveil_retention_rows_removed_total"
    for kind, n in (("appearance", report.appearances), ("keyframe", report.keyframes)):
        assert value(m4, rows, kind=kind) - value(m3, rows, kind=kind) == n
    for name, n in (("files", report.files), ("bytes", report.bytes)):
        series = f"surveil_retention_{name}_removed_total"
        assert value(m4, series) - value(m3, series) == n
    assert undocumented(m0, m1, m2, m3, m4) == set()


def test_pool_query_errors_and_disk(ops: Ops) -> None:
    before = ops.scrape()
    with ops.services.engine.connect() as held:
        with pytest.raises(SQLAlchemyError):
            held.execute(text("SELECT * FROM no_such_table"))
        during = ops.scrape()
    errors = "surveil_catalog_query_errors_total"
    assert total(during, errors) - total(before, errors) == 1
    assert value(during, "surveil_catalog_pool_in_use") >= 1
    assert value(during, "surveil_disk_free_bytes") > 0
    assert value(during, "surveil_disk_total_bytes") >= value(during, "surveil_disk_free_bytes")


def test_ingest_and_model_series_move_on_both_endpoints(tmp_path: Path, shared_data: Path) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    services = build_services(world_settings(tmp_path, url, shared_data / "models"))
    server = serve_process_metrics(
        0, engine=services.engine, root=services.settings.storage.root, addr="127.0.0.1"
    )

    def scrape() -> Samples:
        address = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(address, timeout=5) as response:
            return parse(response.read().decode())

    try:
        before = scrape()
        stats = services.ingest(
            str(shared_data / MOT04), IngestOptions(camera_id="mot04", all_frames=True)
        )
        after = scrape()
        _, key = services.access.create_key(name="scraper", role="viewer")
        with TestClient(create_app(services)) as client:
            api = parse(client.get("/metrics", headers={"Authorization": f"Bearer {key}"}).text)
    finally:
        server.shutdown()
        services.close()

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert stats.frames_read == 8 and stats.appearances > 0
    assert moved("surveil_ingest_frames_total") == stats.frames_read
    assert moved("surveil_ingest_keyframes_total") == stats.keyframes
    assert moved("surveil_ingest_appearances_total") == stats.appearances
    assert moved("surveil_ingest_stage_seconds_total", stage="detect") > 0
    assert moved("surveil_model_batch_size_sum", model="detector") == stats.keyframes
    assert moved("surveil_model_batch_seconds_count", model="person") >= 1
    assert value(after, "surveil_catalog_pool_in_use") >= 0
    assert value(after, "surveil_disk_free_bytes") > 0
    # `serve` exports the same process series beside its own.
    assert value(api, "surveil_ingest_frames_total") == value(after, "surveil_ingest_frames_total")
    assert undocumented(api, after) == set()
