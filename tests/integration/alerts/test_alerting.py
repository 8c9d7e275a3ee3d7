"""Alert evaluation and webhook delivery on the real catalogs (SQLite and PostgreSQL).

Appearances are written through the catalog's real ingest write path with chosen
embeddings, so scores are known exactly; the webhook receiver is a real HTTP server on
loopback that fails its first deliveries.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest
from synthetic import OTHER, T0, TARGET, make_rule, near, store_persons

from surveil.alerts.model import RuleSpec
from surveil.alerts.notify import WebhookSender
from surveil.alerts.rules import ExampleImage
from surveil.alerts.targets import WebhookPolicy
from surveil.config import Settings
from surveil.container import Services, build_services
from surveil.domain import ConflictError, InputError
from surveil.jobs.alerting import deliver_due, dry_run_rule, evaluate_rule
from surveil.storage.migrate import upgrade

SECRET = "0123456789abcdef-secret"
#: The test receivers listen on loopback, which the default policy refuses.
LOOPBACK = WebhookPolicy(["127.0.0.1:*"])


@pytest.fixture
def services(make_settings: Any, database_url: str) -> Iterator[Services]:
    settings: Settings = make_settings(**{"database.url": database_url})
    upgrade(database_url)
    s = build_services(settings)
    try:
        yield s
    finally:
        s.close()


def test_a_new_rule_alerts_only_on_what_arrives_after_it(services: Services) -> None:
    store_persons(services, "lobby", [(0, TARGET)])  # before the rule: never alerts
    rule_id = make_rule(services)
    assert evaluate_rule(services.alerts, rule_id, batch=100).new_alerts == 0
    ids = store_persons(
        services, "lobby", [(100, near(TARGET, 0.9, 3)), (104, near(TARGET, 0.95, 4))]
    )
    report = evaluate_rule(services.alerts, rule_id, batch=100)
    assert (report.scanned, report.hits, report.new_alerts) == (2, 2, 1)
    [alert] = services.alerts.list_alerts(rule_id=rule_id)
    assert alert.appearance_id == ids[1] and alert.hits == 2
    assert alert.score == pytest.approx(0.95, abs=1e-4)
    # Evaluating again sees nothing new: no appearance is evaluated twice.
    again = evaluate_rule(services.alerts, rule_id, batch=100)
    assert (again.scanned, again.new_alerts) == (0, 0)
    assert services.alerts.get_rule(rule_id).watermark == ids[-1]


def test_hits_across_evaluations_extend_one_alert_and_cooldown_holds(services: Services) -> None:
    rule_id = make_rule(services, cooldown_s=300)
    store_persons(services, "lobby", [(0, TARGET)])
    evaluate_rule(services.alerts, rule_id, batch=100)
    store_persons(
        services, "lobby", [(5, near(TARGET, 0.85, 5)), (60, TARGET)]
    )  # same sighting, then cooldown
    store_persons(services, "gate", [(61, near(TARGET, 0.9, 6)), (62, OTHER)])
    report = evaluate_rule(services.alerts, rule_id, batch=1)  # one appearance per batch
    assert (report.new_alerts, report.extended) == (1, 2)
    alerts = {a.camera_id: a for a in services.alerts.list_alerts(rule_id=rule_id)}
    assert alerts["lobby"].hits == 3 and alerts["gate"].hits == 1
    store_persons(services, "lobby", [(400, TARGET)])  # after the cooldown, a new sighting
    assert evaluate_rule(services.alerts, rule_id, batch=100).new_alerts == 1


def test_camera_and_label_scope(services: Services) -> None:
    rule_id = make_rule(services, cameras=("gate",))
    store_persons(services, "lobby", [(0, TARGET)])
    store_persons(services, "gate", [(0, TARGET)])
    report = evaluate_rule(services.alerts, rule_id, batch=100)
    assert report.scanned == 1 and [a.camera_id for a in services.alerts.list_alerts()] == ["gate"]


def test_a_second_evaluator_with_a_stale_watermark_keeps_nothing(services: Services) -> None:
    rule_id = make_rule(services)
    rule = services.alerts.get_rule(rule_id)
    store_persons(services, "lobby", [(0, TARGET)])
    evaluate_rule(services.alerts, rule_id, batch=100)
    with pytest.raises(ConflictError):
        services.alerts.commit_evaluation(
            rule,
            expected_watermark=rule.watermark,
            new_watermark=rule.watermark + 1,
            new=[],
            extended=[],
            notify=True,
        )
    assert len(services.alerts.list_alerts()) == 1


def test_dry_run_reports_without_storing(services: Services) -> None:
    store_persons(services, "lobby", [(0, TARGET), (2, TARGET), (500, near(TARGET, 0.82, 7))])
    rule_id = make_rule(services)
    report = dry_run_rule(services.alerts, rule_id, since=T0, batch=2)
    assert (report.scanned, report.hits, report.new_alerts) == (3, 3, 2)
    assert report.top_scores[0] == pytest.approx(1.0, abs=1e-4)
    assert services.alerts.list_alerts() == []
    assert services.alerts.get_rule(rule_id).watermark == services.alerts.newest_appearance_id()


def test_acknowledge_keeps_the_first_acknowledger(services: Services) -> None:
    rule_id = make_rule(services)
    store_persons(services, "lobby", [(0, TARGET)])
    evaluate_rule(services.alerts, rule_id, batch=100)
    [alert] = services.alerts.list_alerts(acknowledged=False)
    services.alerts.acknowledge(alert.id, by="alice")
    again = services.alerts.acknowledge(alert.id, by="bob")
    assert again.acknowledged_by == "alice" and again.to_dict()["acknowledged"] is True
    assert services.alerts.list_alerts(acknowledged=False) == []


@dataclass
class Receiver:
    """A webhook endpoint on loopback that answers 503 to its first `failures` POSTs."""

    failures: int
    fail_code: int = 503
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(failures=2)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append((dict(self.headers), body))
            code = state.fail_code if len(state.received) <= state.failures else 204
            self.send_response(code)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield state
    finally:
        server.shutdown()


def test_webhooks_retry_with_backoff_and_are_signed(services: Services, receiver: Receiver) -> None:
    rule_id = make_rule(services, webhooks=(receiver.url,), secret=SECRET)
    store_persons(services, "lobby", [(0, TARGET)])
    evaluate_rule(services.alerts, rule_id, batch=100)
    settings = services.settings.alerts
    sender = WebhookSender(timeout=2, policy=LOOPBACK)
    clock = [datetime.now(UTC)]
    try:
        counts = [deliver_due(services.alerts, sender, settings, clock=lambda: clock[0])]
        assert counts[0] == {"delivered": 0, "retrying": 1, "failed": 0}
        # Not due again until its backoff passed.
        assert deliver_due(services.alerts, sender, settings, clock=lambda: clock[0]) == {
            "delivered": 0,
            "retrying": 0,
            "failed": 0,
        }
        for _ in range(2):
            clock[0] += timedelta(seconds=settings.backoff_max_seconds)
            counts.append(deliver_due(services.alerts, sender, settings, clock=lambda: clock[0]))
    finally:
        sender.close()
    assert counts[1:] == [
        {"delivered": 0, "retrying": 1, "failed": 0},
        {"delivered": 1, "retrying": 0, "failed": 0},
    ]
    [alert] = services.alerts.list_alerts()
    [delivery] = services.alerts.deliveries(alert.id)
    assert delivery["state"] == "delivered"
    assert [a["status"] for a in delivery["attempts"]] == [503, 503, 204]
    headers, body = receiver.received[-1]
    expected = hmac.new(
        SECRET.encode(), headers["X-Surveil-Timestamp"].encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    assert headers["X-Surveil-Signature"] == f"sha256={expected}"
    sent = json.loads(body)
    assert sent["alert"]["id"] == alert.id and sent["alert"]["camera_id"] == "lobby"


def test_a_refused_webhook_fails_at_once_and_a_dead_one_after_its_attempts(
    services: Services, receiver: Receiver
) -> None:
    receiver.failures, receiver.fail_code = 100, 410
    rule_id = make_rule(services, webhooks=(receiver.url, "http://127.0.0.1:9/closed"))
    store_persons(services, "lobby", [(0, TARGET)])
    evaluate_rule(services.alerts, rule_id, batch=100)
    settings = services.settings.alerts.model_copy(update={"delivery_attempts": 3})
    sender = WebhookSender(timeout=2, policy=LOOPBACK)
    clock = [datetime.now(UTC)]
    try:
        for _ in range(5):
            deliver_due(services.alerts, sender, settings, clock=lambda: clock[0])
            clock[0] += timedelta(seconds=settings.backoff_max_seconds)
    finally:
        sender.close()
    [alert] = services.alerts.list_alerts()
    gone, closed = services.alerts.deliveries(alert.id)
    assert gone["state"] == "failed" and [a["status"] for a in gone["attempts"]] == [410]
    assert closed["state"] == "failed" and len(closed["attempts"]) == 3
    assert all(a["status"] is None and a["error"] for a in closed["attempts"])


@pytest.fixture
def second_receiver() -> Iterator[Receiver]:
    """Another loopback receiver, on its own port, that always answers 204."""
    state = Receiver(failures=0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            state.received.append(
                (dict(self.headers), self.rfile.read(int(self.headers["Content-Length"])))
            )
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook?token=t0p"
    try:
        yield state
    finally:
        server.shutdown()


def test_loopback_is_refused_by_default_and_the_allowlist_opens_one_port(
    make_settings: Any, database_url: str, receiver: Receiver, second_receiver: Receiver
) -> None:
    receiver.failures = 0
    port = receiver.url.split(":")[2].split("/")[0]
    allowed = [f"127.0.0.1:{port}"]
    crop = ExampleImage(np.zeros((128, 64, 3), np.uint8), b"not-read")
    upgrade(database_url)
    default = build_services(make_settings(**{"database.url": database_url}))
    try:
        spec = RuleSpec(name="ssrf", threshold=0.8, labels=("person",), webhooks=(receiver.url,))
        with pytest.raises(InputError, match=r"127\.0\.0\.1, a loopback address, refused"):
            default.rules().create(spec, [crop], created_by="t")
    finally:
        default.close()
    settings: Settings = make_settings(
        **{"database.url": database_url, "alerts.webhook_hosts": allowed}
    )
    services = build_services(settings)
    try:
        other = RuleSpec(
            name="ssrf", threshold=0.8, labels=("person",), webhooks=(second_receiver.url,)
        )
        with pytest.raises(InputError, match=rf"port {second_receiver.url.split(':')[2][:5]}"):
            services.rules().create(other, [crop], created_by="t")
        assert services.alerts.list_rules() == []

        # A rule saved before the policy was tightened: deliveries to the host it does not
        # allow are refused at once (no retries) and without a byte sent; the other arrives.
        rule_id = make_rule(services, webhooks=(receiver.url, second_receiver.url))
        store_persons(services, "lobby", [(0, TARGET)])
        evaluate_rule(services.alerts, rule_id, batch=100)
        sender = WebhookSender(timeout=2, policy=WebhookPolicy(allowed))
        try:
            counts = deliver_due(services.alerts, sender, settings.alerts)
            default_sender = WebhookSender(timeout=2)  # the default policy: nothing sent
            try:
                assert default_sender.post(receiver.url, b"{}", {}).refused
            finally:
                default_sender.close()
        finally:
            sender.close()
        assert counts == {"delivered": 1, "retrying": 0, "failed": 1}
        [alert] = services.alerts.list_alerts()
        delivered, refused = sorted(
            services.alerts.deliveries(alert.id), key=lambda d: d["state"] != "delivered"
        )
        assert delivered["state"] == "delivered" and len(receiver.received) == 1
        [attempt] = refused["attempts"]
        assert attempt["status"] is None and "alerts.webhook_hosts" in attempt["error"]
        assert "token" not in attempt["error"]
        assert second_receiver.received == []
    finally:
        services.close()
