"""Alert rules as other tools drive them: the `rules`, `alerts` and `scheduler` commands.

Real models on real frames, a real PostgreSQL, a real webhook receiver on loopback, and
a scheduler process killed mid-evaluation that must, once restarted, end with exactly
the alerts an uninterrupted run makes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cli_process import cli_env, cli_json, run_cli
from synthetic import T0, near, store_persons

from surveil.config import load_settings
from surveil.container import Services, build_services
from surveil.jobs.alerting import dry_run_rule

pytestmark = [pytest.mark.postgres]

MOT09 = "mot/MOT17-mini/train/MOT17-09-FRCNN/img1/%06d.jpg"
SECRET = "webhook-secret-0123456789"


@pytest.fixture
def env(tmp_path: Path, shared_data: Path, pg_url: str) -> dict[str, str]:
    base = cli_env(
        tmp_path / "data",
        pg_url,
        shared_data / "models",
        SURVEIL_ALERTS__BACKOFF_SECONDS="0.05",
        SURVEIL_ALERTS__DELIVERY_POLL_SECONDS="0.05",
        # The receiver is on loopback, which webhooks reach only when allowed.
        SURVEIL_ALERTS__WEBHOOK_HOSTS='["127.0.0.1:*"]',
    )
    run_cli(base, "db", "upgrade")
    return base


def _services(env: dict[str, str]) -> Services:
    overrides = {
        "storage.root": env["SURVEIL_STORAGE__ROOT"],
        "database.url": env["SURVEIL_DATABASE__URL"],
        "model_dir": env["SURVEIL_MODEL_DIR"],
    }
    return build_services(load_settings(overrides=overrides), reconcile_index=False)


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    """A webhook endpoint on loopback that answers 500 to the first POST, then 200."""
    received: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), body))
            self.send_response(500 if len(received) == 1 else 200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/alerts", received
    finally:
        server.shutdown()


def test_rule_alerts_on_new_footage_and_notifies_with_retries(
    env: dict[str, str], shared_data: Path, tmp_path: Path, receiver: Any
) -> None:
    url, received = receiver
    # Yesterday's footage: the example comes from it, but the rule must not alert on it.
    run_cli(
        env,
        "ingest",
        str(shared_data / MOT09),
        "--camera",
        "plaza",
        "--all-frames",
        "--start",
        "2026-03-01T10:00:00Z",
    )
    services = _services(env)
    try:
        best = services.catalog.best_appearance(label="person")
        assert best is not None
        crop = tmp_path / "suspect.jpg"
        crop.write_bytes(services.blobs.get(best.crop_path))
    finally:
        services.close()
    secret = tmp_path / "secret"
    secret.write_text(SECRET)
    rule = cli_json(
        env,
        "rules",
        "add",
        "--name",
        "suspect",
        "--example",
        str(crop),
        "--threshold",
        "0.9",
        "--label",
        "person",
        "--interval",
        "1",
        "--webhook",
        url,
        "--secret-file",
        str(secret),
    )
    assert {"id", "name", "threshold", "watermark"} <= set(rule) and rule["name"] == "suspect"

    first = cli_json(env, "scheduler", "--once")
    assert next(j for j in first["jobs"] if j["job"] == f"rule:{rule['id']}")["new_alerts"] == 0
    # The same person seen by another camera, after the rule existed.
    run_cli(
        env,
        "ingest",
        str(shared_data / MOT09),
        "--camera",
        "gate",
        "--all-frames",
        "--start",
        "2026-03-02T10:00:00Z",
    )
    ran = {j["job"]: j for j in cli_json(env, "scheduler", "--once")["jobs"]}
    assert ran[f"rule:{rule['id']}"]["new_alerts"] >= 1
    assert ran["alerts.deliver"]["retrying"] >= 1  # the receiver's first answer was 500

    alerts = cli_json(env, "alerts", "list", "--rule", str(rule["id"]))["alerts"]
    assert alerts and {a["camera_id"] for a in alerts} == {"gate"}
    contract = {"id", "rule_id", "appearance_id", "camera_id", "score", "ts", "acknowledged"}
    assert all(contract <= set(a) and a["score"] >= 0.9 for a in alerts)
    time.sleep(0.3)  # past the backoff
    cli_json(env, "scheduler", "--once")
    assert len(received) == len(alerts) + 1  # one retry, then each alert once
    headers, body = received[-1]
    mac = hmac.new(
        SECRET.encode(), headers["X-Surveil-Timestamp"].encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    assert headers["X-Surveil-Signature"] == f"sha256={mac}"
    assert json.loads(body)["alert"]["rule_id"] == rule["id"]

    acked = cli_json(env, "alerts", "ack", str(alerts[0]["id"]))
    assert acked["acknowledged"] is True
    tried = cli_json(env, "rules", "test", "suspect", "--since", "2026-03-01T00:00:00Z")
    assert {a["camera_id"] for a in tried["alerts"]} == {"plaza", "gate"}  # past data too
    assert cli_json(env, "rules", "disable", "suspect")["enabled"] is False
    assert [r["name"] for r in cli_json(env, "rules", "list")["rules"]] == ["suspect"]


def test_bad_rule_input_is_one_clear_error(env: dict[str, str], tmp_path: Path) -> None:
    proc = run_cli(
        env,
        "rules",
        "add",
        "--name",
        "x",
        "--example",
        str(tmp_path / "missing.jpg"),
        "--threshold",
        "0.5",
        code=2,
    )
    assert proc.stderr.startswith("error: cannot read example")
    proc = run_cli(env, "rules", "show", "nobody", code=2)
    assert "no alert rule named 'nobody'" in proc.stderr
    proc = run_cli(env, "alerts", "ack", "12345", code=2)
    assert "no alert with id 12345" in proc.stderr


def test_a_webhook_the_policy_refuses_is_exit_2_and_saves_nothing(
    env: dict[str, str], tmp_path: Path, shared_data: Path
) -> None:
    query = shared_data / "reid" / "market1501_person_search_demo" / "query"
    crop = sorted(query.glob("*.jpg"))[0]
    for url in ("http://169.254.169.254/latest/meta-data", "http://127.0.0.1:6379/"):
        base = ["rules", "add", "--name", "ssrf", "--example", str(crop), "--threshold", "0.5"]
        # The env allows 127.0.0.1 on any port; without it loopback is refused too.
        strict = {**env, "SURVEIL_ALERTS__WEBHOOK_HOSTS": "[]"}
        proc = run_cli(strict, *base, "--label", "person", "--webhook", url, code=2)
        assert proc.stderr.startswith("error: webhook host") and proc.stderr.count("\n") == 1
        assert "alerts.webhook_hosts" in proc.stderr
    assert cli_json(env, "rules", "list")["rules"] == []


def _watermark(services: Services, rule_id: int) -> int:
    return services.alerts.get_rule(rule_id).watermark


def test_scheduler_killed_mid_evaluation_resumes_exactly(env: dict[str, str]) -> None:
    from synthetic import TARGET, make_rule

    env = {**env, "SURVEIL_ALERTS__EVALUATE_BATCH": "100"}
    services = _services(env)
    try:
        rule_id = make_rule(services, cooldown_s=0, gap_s=1.5)
        start = _watermark(services, rule_id)
        # 12,000 appearances: hits in runs of three, misses between (about 3,000 alerts).
        items = [
            (i * 1.0, near(TARGET, 0.95, i) if i % 4 else near(TARGET, 0.2, i))
            for i in range(12_000)
        ]
        store_persons(services, "lobby", items)
        expected = dry_run_rule(services.alerts, rule_id, since=T0 - timedelta(days=1), batch=500)
        end = services.alerts.newest_appearance_id()
        killed_mid_way = False
        for _ in range(5):  # a kill can land before or after the work; retry until mid-way
            proc = subprocess.Popen(
                [sys.executable, "-m", "surveil.cli", "scheduler", "--once"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 120
            while _watermark(services, rule_id) == start and proc.poll() is None:
                assert time.monotonic() < deadline
                time.sleep(0.005)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            at_kill = _watermark(services, rule_id)
            if start < at_kill < end:
                killed_mid_way = True
                break
        assert killed_mid_way, "no kill landed mid-evaluation in 5 tries"
        run_cli(env, "scheduler", "--once")  # the restart finishes the job
        assert _watermark(services, rule_id) == end
        stored = services.alerts.list_alerts(rule_id=rule_id, limit=100_000)
    finally:
        services.close()
    got = sorted((a.appearance_id, a.hits) for a in stored)
    want = sorted((a["appearance_id"], a["hits"]) for a in expected.alerts)
    assert len(want) > 1000 and got == want  # none lost, none doubled
