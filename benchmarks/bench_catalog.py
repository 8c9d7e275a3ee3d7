"""Catalog throughput: add_keyframes (ingest hot path) and appearances(ids) (search hydrate).

Runs against SQLite (a temp file) and PostgreSQL (a throw-away database created on the
given server and dropped afterwards) and prints one line per measurement.

    .venv/bin/python benchmarks/bench_catalog.py
    .venv/bin/python benchmarks/bench_catalog.py --backends sqlite --batches 500
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
from psycopg import sql

from surveil.config import LoggingSettings
from surveil.domain import NewAppearance, NewKeyframe, Space
from surveil.logs import configure_logging
from surveil.storage.db import make_engine, make_session_factory
from surveil.storage.migrate import upgrade
from surveil.storage.repositories import SqlCatalog

DEFAULT_PG = os.environ.get("TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
T0 = datetime(2024, 5, 1, tzinfo=UTC)


@contextmanager
def database(backend: str, pg_server: str) -> Iterator[str]:
    """A fresh, migrated database URL for one run; removed afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="surveil-bench-") as tmp:
            url = f"sqlite:///{(Path(tmp) / 'catalog.db').as_posix()}"
            upgrade(url)
            yield url
        return
    name = f"surveil_bench_{uuid.uuid4().hex[:10]}"
    admin = pg_server.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = f"{pg_server.rpartition('/')[0]}/{name}"
        upgrade(url)
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def make_batches(
    *, source_id: int, batches: int, keyframes: int, per_keyframe: int, dim: int, seed: int
) -> list[list[NewKeyframe]]:
    """Realistic batches: unit-norm float32 embeddings, mixed labels, one second apart."""
    rng = np.random.default_rng(seed)
    space: Space = "person" if dim == 512 else "general"
    out: list[list[NewKeyframe]] = []
    index = 0
    for _ in range(batches):
        batch = []
        for _ in range(keyframes):
            vecs = rng.standard_normal((per_keyframe, dim)).astype(np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            apps = tuple(
                NewAppearance(
                    bbox=(10.0 * j, 20.0, 10.0 * j + 64.0, 148.0),
                    label="person" if space == "person" else ("car", "truck", "bag")[j % 3],
                    confidence=0.5 + 0.04 * j,
                    space=space,
                    embedding=vecs[j],
                    model_id=f"bench-{dim}@1",
                    crop_path=f"crops/cam1/{index:08d}_{j}.jpg",
                )
                for j in range(per_keyframe)
            )
            batch.append(
                NewKeyframe(
                    camera_id="cam1",
                    source_id=source_id,
                    frame_index=index,
                    ts=T0 + timedelta(seconds=index),
                    width=1920,
                    height=1080,
                    image_path=f"keyframes/cam1/{index:08d}.jpg",
                    appearances=apps,
                )
            )
            index += 1
        out.append(batch)
    return out


def bench_one(url: str, backend: str, dim: int, args: argparse.Namespace) -> None:
    """Time ingest batches, then hydrate random id sets, and print the figures."""
    engine = make_engine(url)
    try:
        catalog = SqlCatalog(make_session_factory(engine))
        src = catalog.open_source(
            camera_id="cam1", uri="bench", fingerprint=f"d{dim}", start=T0, fps=25.0
        )
        batches = make_batches(
            source_id=src.id,
            batches=args.batches,
            keyframes=args.keyframes,
            per_keyframe=args.appearances,
            dim=dim,
            seed=dim,
        )
        catalog.add_keyframes(batches[0])  # warm the pool and statement caches
        ids: list[int] = []
        lat: list[float] = []
        start = time.perf_counter()
        for batch in batches[1:]:
            t = time.perf_counter()
            ids.extend(i for group in catalog.add_keyframes(batch) for i in group)
            lat.append(time.perf_counter() - t)
        total = time.perf_counter() - start
        p50, p95 = np.percentile(lat, [50, 95]) * 1000
        print(
            f"{backend:8s} dim={dim:4d} add_keyframes: {len(ids) / total:9.0f} appearances/s "
            f"({len(lat)} batches of {args.keyframes}x{args.appearances}; "
            f"batch p50 {p50:.1f} ms, p95 {p95:.1f} ms)"
        )
        rng = np.random.default_rng(0)
        for n in args.hydrate:
            times = []
            for _ in range(args.repeats):
                picked = rng.choice(ids, size=min(n, len(ids)), replace=False).tolist()
                t = time.perf_counter()
                got = catalog.appearances(picked)
                times.append(time.perf_counter() - t)
                assert len(got) == len(picked)
            print(
                f"{backend:8s} dim={dim:4d} appearances({n} ids): "
                f"median {statistics.median(times) * 1000:.1f} ms, "
                f"max {max(times) * 1000:.1f} ms over {args.repeats} runs"
            )
    finally:
        engine.dispose()


def main() -> None:
    """Parse options and run every (backend, dim) combination asked for."""
    configure_logging(LoggingSettings(level="WARNING"))  # figures on stdout, no chatter
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgres", help="comma-separated list")
    parser.add_argument("--pg-url", default=DEFAULT_PG, help="PostgreSQL server to use")
    parser.add_argument("--dims", default="512,1280", help="embedding sizes to try")
    parser.add_argument("--batches", type=int, default=200, help="add_keyframes calls timed")
    parser.add_argument("--keyframes", type=int, default=8, help="keyframes per batch")
    parser.add_argument("--appearances", type=int, default=10, help="appearances per keyframe")
    parser.add_argument(
        "--hydrate", default="200,1000", help="id-set sizes for appearances(ids) timings"
    )
    parser.add_argument("--repeats", type=int, default=20, help="hydrate repetitions")
    args = parser.parse_args()
    args.hydrate = [int(x) for x in args.hydrate.split(",")]
    for backend in args.backends.split(","):
        for dim in (int(d) for d in args.dims.split(",")):
            with database(backend, args.pg_url) as url:
                bench_one(url, backend, dim, args)


if __name__ == "__main__":
    main()
