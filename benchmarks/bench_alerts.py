"""Alert rule evaluation cost: seconds per rule per 10k new appearances.

Fills a throw-away catalog (PostgreSQL and/or SQLite) with synthetic person appearances
through the real write path, creates rules with 1 and 5 examples, and times
`evaluate_rule` over N new appearances (the scheduler's work for one run), split into
fetch (catalog read of ids, cameras, times and embedding bytes), scoring and commit.

    .venv/bin/python benchmarks/bench_alerts.py
    .venv/bin/python benchmarks/bench_alerts.py --backends sqlite --new 10000,100000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from bench_catalog import DEFAULT_PG, database

from surveil.alerts.model import RuleSpec
from surveil.config import LoggingSettings, load_settings
from surveil.container import Services, build_services
from surveil.domain import NewAppearance, NewKeyframe
from surveil.jobs.alerting import evaluate_rule
from surveil.logs import configure_logging
from surveil.storage.alerts import NewExample

T0 = datetime(2026, 11, 1, tzinfo=UTC)
DIM = 512


def _fill(services: Services, count: int, rng: np.random.Generator) -> None:
    """`count` appearances on 8 cameras, 10 per keyframe, in transactions of 800."""
    catalog = services.catalog
    for cam in range(8):
        catalog.ensure_camera(f"cam{cam}")
    source = catalog.open_source(
        camera_id="cam0", uri="bench://", fingerprint=f"b{rng.integers(1 << 62)}", start=T0, fps=1
    )
    per_kf, kf_per_batch = 10, 80
    made = 0
    while made < count:
        batch = []
        for k in range(kf_per_batch):
            vecs = rng.standard_normal((per_kf, DIM)).astype(np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            index = made // per_kf + k
            apps = tuple(
                NewAppearance(
                    (1.0, 1.0, 9.0, 9.0), "person", 0.9, "person", v, "bench@1", f"c/{index}_{j}"
                )
                for j, v in enumerate(vecs)
            )
            batch.append(
                NewKeyframe(
                    f"cam{index % 8}",
                    source.id,
                    index,
                    T0 + timedelta(seconds=index),
                    64,
                    64,
                    None,
                    apps,
                )
            )
        catalog.add_keyframes(batch)
        made += per_kf * kf_per_batch


def bench(url: str, root: Path, new: int, examples: int) -> dict[str, float]:
    """Time one evaluation of a fresh rule over `new` appearances stored after it."""
    settings = load_settings(
        overrides={"storage.root": str(root), "database.url": url, "logging.level": "WARNING"}
    )
    services = build_services(settings, reconcile_index=False)
    rng = np.random.default_rng(examples)
    try:
        vecs = rng.standard_normal((examples, DIM)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        spec = RuleSpec(name=f"bench-{new}-{examples}-{time.time_ns()}", threshold=0.3)
        ex = [NewExample(f"rules/{i}", f"{i:064d}", "bench@1", v) for i, v in enumerate(vecs)]
        rule = services.alerts.create_rule(spec, space="person", examples=ex, created_by="bench")
        _fill(services, new, rng)
        started = time.perf_counter()
        report = evaluate_rule(services.alerts, rule.id, batch=settings.alerts.evaluate_batch)
        seconds = time.perf_counter() - started
    finally:
        services.close()
    return {"seconds": seconds, "scanned": report.scanned, "alerts": report.new_alerts}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backends", default="postgres,sqlite")
    parser.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL server URL")
    parser.add_argument("--new", default="10000,100000", help="new appearances per evaluation")
    parser.add_argument("--examples", default="1,5", help="examples per rule")
    args = parser.parse_args()
    configure_logging(LoggingSettings(level="WARNING"))
    print("| back-end | new appearances | examples | evaluation | per 10k | appearances/s |")
    print("|---|---|---|---|---|---|")
    for backend in args.backends.split(","):
        for new in (int(n) for n in args.new.split(",")):
            for examples in (int(e) for e in args.examples.split(",")):
                with tempfile.TemporaryDirectory() as tmp, database(backend, args.pg) as url:
                    r = bench(url, Path(tmp), new, examples)
                per10k = r["seconds"] / r["scanned"] * 10_000
                print(
                    f"| {backend} | {r['scanned']:,} | {examples} | {r['seconds']:.2f} s | "
                    f"{per10k:.2f} s | {r['scanned'] / r['seconds']:,.0f} |",
                    flush=True,
                )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
