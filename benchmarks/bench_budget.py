"""What a size budget costs at 100k and 1M stored appearances: sizing, estimate, freeing 10%.

Uses bench_retention.py's synthetic world (N appearances over 30 UTC days, 8 cameras, 4
per keyframe, a 64-byte file per crop and keyframe, a day-sharded 512-d FAISS index), its
byte columns set to NULL first, as a catalog upgraded from before migration 0011 has them.
Then, each from a fresh state:

    first estimate   sizes every row through the blob store once, then sums (one-off)
    estimate         the steady state: `surveil storage estimate`
    check, under     the storage check with the budget above what is stored (nothing to do)
    budget 90 %      retention with max_bytes = 90 % of what is stored: frees the oldest 10 %
    check, met       the storage check right after: measures, finds the budget met

Examples:
    .venv/bin/python benchmarks/bench_retention.py --dir /tmp/budget --n 100000 --pg --build
    .venv/bin/python benchmarks/bench_budget.py --dir /tmp/budget --pg
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench_retention import catalog_url
from sqlalchemy import text

from surveil.config import LoggingSettings, RetentionSettings
from surveil.files import disk_of
from surveil.index.sharded import ShardedFaissIndex
from surveil.jobs.retention import RetentionParts, measure, run_retention
from surveil.jobs.storage import over_budget
from surveil.jobs.usage import estimate
from surveil.logs import configure_logging
from surveil.storage.blobs import FileBlobStore
from surveil.storage.blobs.local_files import LocalBlobFiles
from surveil.storage.db import make_engine, make_session_factory
from surveil.storage.repositories import SqlCatalog
from surveil.storage.retention import SqlRetention
from surveil.storage.usage import SqlUsage

NOW = datetime(2024, 1, 31, 12, tzinfo=UTC)  # nothing is past retention.days=365


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Where bench_retention.py --build put the world, and which catalog."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, required=True, help="The world's folder.")
    parser.add_argument("--pg", action="store_true", help="PostgreSQL catalog, not SQLite.")
    parser.add_argument("--share", type=float, default=0.9, help="Budget as a share of stored.")
    return parser.parse_args(argv)


def adopt_tracks(url: str) -> int:
    """One closed track per appearance (id = appearance id = the index's id), as a catalog
    of single-keyframe tracks holds them; bench_retention.py's world has none."""
    engine = make_engine(url)
    with engine.begin() as conn:
        if conn.execute(text("SELECT count(*) FROM tracks")).scalar_one():
            return 0
        added = conn.execute(
            text(
                "INSERT INTO tracks (id, key, camera_id, space, label, label_group, first_ts,"
                " last_ts, appearances, best_appearance_id, best_quality, embedding, dim,"
                " model_id, closed, updated_at) SELECT id, 'b' || id, camera_id, space, label,"
                " 'person', ts, ts, 1, id, 1.0, embedding, dim, model_id, true, ts"
                " FROM appearances"
            )
        ).rowcount
        conn.execute(text("UPDATE appearances SET track_id = id"))
    engine.dispose()
    return int(added)


def forget_sizes(url: str) -> None:
    """NULL byte columns, as a catalog upgraded from before migration 0011 has them."""
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE keyframes SET image_bytes = NULL"))
        conn.execute(text("UPDATE appearances SET crop_bytes = NULL"))
    engine.dispose()


def parts_for(root: Path, url: str) -> RetentionParts:
    """Fresh parts over the world, as `surveil retention run` builds them."""
    sessions = make_session_factory(make_engine(url))
    index_dir = root / "index"

    def index_bytes() -> int:
        return sum(p.stat().st_size for p in index_dir.rglob("*") if p.is_file())

    return RetentionParts(
        SqlRetention(sessions),
        SqlCatalog(sessions),
        ShardedFaissIndex(index_dir),
        LocalBlobFiles(FileBlobStore(root)),
        SqlUsage(sessions),
        index_bytes,
        root,
    )


def timed(label: str, fn: Callable[[], Any]) -> Any:
    """Run fn, print its seconds; returns what it returned."""
    started = time.perf_counter()
    out = fn()
    print(f"| {label} | {time.perf_counter() - started:.2f} |", flush=True)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """Measure each step on the built world; prints a Markdown table."""
    args = parse_args(argv)
    configure_logging(LoggingSettings(level="WARNING"))
    url = catalog_url(args.dir, args.pg)
    timed_tracks = time.perf_counter()
    added = adopt_tracks(url)
    if added:
        print(
            f"(gave {added:,} appearances a track each: {time.perf_counter() - timed_tracks:.0f} s)"
        )
    forget_sizes(url)
    print("| step | seconds |\n|---|---|")
    first = timed("first estimate (sizes every row)", lambda: measure(parts_for(args.dir, url)))
    usage = timed("estimate", lambda: measure(parts_for(args.dir, url)))
    stored = usage.total
    settings = RetentionSettings(days=365, evidence_days=365, max_bytes=stored + 1)
    timed("check, under budget", lambda: over_budget(measure(parts_for(args.dir, url)), settings))
    budget = int(stored * args.share)
    settings = settings.model_copy(update={"max_bytes": budget, "sweep": False})
    report = timed(
        f"budget {args.share:.0%} (frees {1 - args.share:.0%})",
        lambda: run_retention(parts_for(args.dir, url), settings, now=NOW),
    )
    after = timed("check, met", lambda: measure(parts_for(args.dir, url)))
    est = estimate(after, settings, disk_of(args.dir), now=NOW).to_dict()
    assert report.budget is not None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"\nsized {first.sized:,} rows; stored {stored:,} B (catalog rows "
        f"{usage.overheads.catalog_bytes:,}, index {usage.overheads.index_bytes:,}); "
        f"budget {budget:,}; removed {report.appearances:,} appearances, "
        f"{report.keyframes:,} keyframes, {report.files:,} files; freed "
        f"{report.budget.freed:,} B, after {after.total:,} B (<= budget: "
        f"{after.total <= budget}); {est['cameras'][0]['days_that_fit']} days fit per "
        f"camera; peak RSS {peak:.0f} MiB"
    )


if __name__ == "__main__":
    main()
