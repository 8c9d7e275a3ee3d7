"""Measure what start-up `reconcile` costs at scale: the fast count path against a full one.

Builds (once, with --build) a day-sharded FAISS index and a SQLite catalog holding the
same N synthetic appearances spread over D UTC days, then times reconcile in a fresh
process-like state (new index object, new engine), as every `surveil search` would.

Example:
    .venv/bin/python benchmarks/bench_reconcile.py --dir /tmp/recbench --n 1000000 --build
    .venv/bin/python benchmarks/bench_reconcile.py --dir /tmp/recbench
"""

from __future__ import annotations

import argparse
import inspect
import shutil
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import numpy as np
from sqlalchemy import Table, insert

from surveil.index.reconcile import reconcile
from surveil.index.sharded import ShardedFaissIndex
from surveil.storage.db import make_engine, make_session_factory
from surveil.storage.migrate import upgrade
from surveil.storage.repositories import SqlCatalog
from surveil.storage.tables import AppearanceRow, CameraRow, KeyframeRow, SourceRow

START = datetime(2024, 1, 1, tzinfo=UTC)
CHUNK = 20_000
PER_KEYFRAME = 10


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Where the data lives, how much of it, and whether to (re)build it."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--build", action="store_true")
    return parser.parse_args(argv)


def _url(root: Path) -> str:
    return f"sqlite:///{(root / 'catalog.db').as_posix()}"


def build(root: Path, n: int, days: int, dim: int) -> None:
    """Write N appearances (ts spread evenly over `days`) to both catalog and index."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    upgrade(_url(root))
    engine = make_engine(_url(root))
    index = ShardedFaissIndex(root / "index")
    rng = np.random.default_rng(0)
    step = timedelta(days=days) / n
    with engine.begin() as conn:
        conn.execute(insert(cast(Table, CameraRow.__table__)), [{"id": "cam", "name": "cam"}])
        conn.execute(
            insert(cast(Table, SourceRow.__table__)),
            [
                {
                    "id": 1,
                    "camera_id": "cam",
                    "uri": "u",
                    "fingerprint": "f",
                    "start_ts": START,
                    "fps": 1.0,
                }
            ],
        )
    for lo in range(0, n, CHUNK):
        ids = np.arange(lo + 1, min(lo + CHUNK, n) + 1, dtype=np.int64)
        vecs = rng.standard_normal((len(ids), dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        stamps = [START + step * int(i - 1) for i in ids]
        _insert_rows(engine, ids, stamps, vecs)
        index.add("person", ids, vecs, [s.date() for s in stamps])
    index.save()
    engine.dispose()


def _insert_rows(engine: Any, ids: np.ndarray[Any, Any], stamps: list[datetime], vecs: Any) -> None:
    keyframes = {int(i - 1) // PER_KEYFRAME + 1: s for i, s in zip(ids, stamps, strict=True)}
    with engine.begin() as conn:
        conn.execute(
            insert(cast(Table, KeyframeRow.__table__)),
            [
                {"id": k, "camera_id": "cam", "source_id": 1, "frame_index": k, "ts": ts}
                | {"width": 1, "height": 1}
                for k, ts in keyframes.items()
            ],
        )
        conn.execute(
            insert(cast(Table, AppearanceRow.__table__)),
            [
                {"id": int(i), "keyframe_id": int(i - 1) // PER_KEYFRAME + 1, "camera_id": "cam"}
                | {"ts": s, "frame_index": 0, "label": "person", "confidence": 1.0}
                | {"x1": 0.0, "y1": 0.0, "x2": 1.0, "y2": 1.0, "space": "person"}
                | {"model_id": "m", "crop_path": "c", "embedding": v.tobytes(), "dim": len(v)}
                for i, s, v in zip(ids, stamps, vecs, strict=True)
            ],
        )


def measure(root: Path, **options: bool) -> None:
    """Reconcile once from a cold object state and print the time and shards loaded."""
    engine = make_engine(_url(root))
    catalog = SqlCatalog(make_session_factory(engine))
    index = ShardedFaissIndex(root / "index")
    started = time.perf_counter()
    report = reconcile(index, catalog, ["person"], **options)
    seconds = time.perf_counter() - started
    loaded = len(index.loaded_days("person"))
    print(f"reconcile{options}: {seconds:.3f} s, shards loaded {loaded}, changed {report.changed}")
    engine.dispose()


def main(argv: Sequence[str] | None = None) -> None:
    """Build if asked, then time reconcile (both modes where this version has them)."""
    args = parse_args(argv)
    if args.build:
        started = time.perf_counter()
        build(args.dir, args.n, args.days, args.dim)
        took = time.perf_counter() - started
        print(f"built {args.n} x {args.dim}-d over {args.days} days in {took:.0f} s")
    if "full" in inspect.signature(reconcile).parameters:
        measure(args.dir, full=True)
        measure(args.dir, full=False)
    else:
        measure(args.dir)


if __name__ == "__main__":
    main()
