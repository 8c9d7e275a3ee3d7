"""Cost of one `/metrics` scrape, with and without the catalog collectors.

Fills a throw-away catalog (PostgreSQL and/or SQLite) with synthetic appearances through
the real write path, 20 alert rules (half of them behind), `--deliveries` webhook
deliveries (a tenth pending) and 25 job state rows, then times:

- `base`: the HTTP, search, index, camera-health and worker series (what /metrics had
  before the catalog collectors) plus the process-wide series;
- `full`: everything `serve` exports (adds jobs, webhook outbox, rule lag, pool, disk);
- `http`: a full scrape through the app (`GET /metrics` with a viewer key, TestClient);
- `jobs`, `deliveries`, `rule_lag`: each catalog collector's query on its own.

Median of `--repeat` scrapes, milliseconds.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_metrics.py
    PYTHONPATH=. .venv/bin/python benchmarks/bench_metrics.py --backends sqlite --repeat 20
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from bench_alerts import DIM, _fill
from bench_catalog import DEFAULT_PG, database
from fastapi.testclient import TestClient
from sqlalchemy import insert, select, update

from surveil.alerts.model import RuleSpec
from surveil.api.app import create_app
from surveil.api.metrics import Metrics
from surveil.config import LoggingSettings, load_settings
from surveil.container import Services, build_services
from surveil.logs import configure_logging
from surveil.storage.alerts import NewExample
from surveil.storage.db import make_session_factory
from surveil.storage.ops_stats import SqlOpsStats
from surveil.storage.tables import AlertRow, AlertRuleRow, AppearanceRow, DeliveryRow, JobStateRow


def _seed(services: Services, appearances: int, deliveries: int) -> None:
    """Rules, alerts with deliveries and job rows beside `appearances` appearances."""
    rng = np.random.default_rng(7)
    vec = rng.standard_normal(DIM).astype(np.float32)
    vec /= np.linalg.norm(vec)
    ex = [NewExample("rules/0", "0" * 64, "bench@1", vec)]
    for r in range(20):
        spec = RuleSpec(name=f"bench-{r}", threshold=0.9, webhooks=("https://example.org/h",))
        services.alerts.create_rule(spec, space="person", examples=ex, created_by="bench")
    _fill(services, appearances, rng)
    sessions = make_session_factory(services.engine)
    now = datetime.now(UTC)
    with sessions.begin() as s:
        top = int(s.scalar(select(AppearanceRow.id).order_by(AppearanceRow.id.desc())) or 0)
        s.execute(update(AlertRuleRow).where(AlertRuleRow.id > 10).values(watermark=top))
        alerts = [
            {
                "rule_id": 1 + i % 20,
                "appearance_id": top - i,
                "camera_id": "cam0",
                "label": "person",
                "score": 0.95,
                "ts": now,
                "last_ts": now,
                "hits": 1,
                "created_at": now - timedelta(seconds=i),
            }
            for i in range(deliveries)
        ]
        s.execute(insert(AlertRow), alerts)
        ids = s.scalars(select(AlertRow.id)).all()
        s.execute(
            insert(DeliveryRow),
            [
                {
                    "alert_id": a,
                    "url": "https://example.org/h",
                    "state": "pending" if n % 10 == 0 else "delivered",
                    "attempts": n % 3,
                    "next_at": now,
                }
                for n, a in enumerate(ids)
            ],
        )
        s.execute(
            insert(JobStateRow),
            [{"name": f"rule-{n}", "next_run_at": now, "runs": n} for n in range(25)],
        )


def _median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def bench(url: str, root: Path, appearances: int, deliveries: int, repeat: int) -> dict[str, float]:
    settings = load_settings(
        overrides={"storage.root": str(root), "database.url": url, "logging.level": "WARNING"}
    )
    services = build_services(settings, reconcile_index=False)
    try:
        _seed(services, appearances, deliveries)
        base = Metrics(services.index, health=services.health, leases=services.leases)
        app = create_app(services)
        _, key = services.access.create_key(name="bench", role="viewer")
        full = app.state.metrics
        with TestClient(app) as client:
            headers = {"Authorization": f"Bearer {key}"}
            http = _median_ms(lambda: client.get("/metrics", headers=headers), repeat)
        stats = SqlOpsStats(make_session_factory(services.engine))
        return {
            "jobs": _median_ms(stats.jobs, repeat),
            "deliveries": _median_ms(stats.deliveries, repeat),
            "rule_lag": _median_ms(stats.rule_lag, repeat),
            "base": _median_ms(base.render, repeat),
            "full": _median_ms(full.render, repeat),
            "http": http,
        }
    finally:
        services.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backends", default="postgres,sqlite")
    parser.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL server URL")
    parser.add_argument("--appearances", type=int, default=100_000)
    parser.add_argument("--deliveries", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    configure_logging(LoggingSettings(level="WARNING"))
    print(
        "| back-end | appearances | deliveries | base | full | GET /metrics "
        "| jobs | deliveries | rule lag |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory() as tmp, database(backend, args.pg) as url:
            r = bench(url, Path(tmp), args.appearances, args.deliveries, args.repeat)
        print(
            f"| {backend} | {args.appearances:,} | {args.deliveries:,} | {r['base']:.2f} ms | "
            f"{r['full']:.2f} ms | {r['http']:.2f} ms | {r['jobs']:.2f} ms | "
            f"{r['deliveries']:.2f} ms | {r['rule_lag']:.2f} ms |",
            flush=True,
        )


if __name__ == "__main__":
    main()
