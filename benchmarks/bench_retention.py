"""What a retention run costs at 100k and 1M stored appearances (one day of 30 expiring).

--build writes N synthetic appearances spread evenly over 30 UTC days on 8 cameras
(4 per keyframe), each in its own one-member track (as migration 0005 makes of older
rows: the index holds track ids), straight into the catalog tables (SQLAlchemy Core, the
fastest real path), a tiny file per crop and per keyframe (its size recorded in its row,
as ingest records it), and a day-sharded 512-d FAISS index, then ANALYZEs. The
measurement then runs `run_retention` from a fresh process-like state (new engine, new
index object, as `surveil retention run` does, the incremental sweep's rotation kept in
the folder) five times:

    preview   dry run at now = day 31: what day 0 would cost (changes nothing)
    half day  now = day 30.5: half of day 0 expires; its shard is loaded and edited
    rest      now = day 31: day 0's other half; no row is left, so the shard is dropped
    one day   now = day 32: day 1 expires whole, the daily case: one shard file delete
    no-op     now = day 32 again: nothing expires; the selection and the sweep remain

Examples:
    .venv/bin/python benchmarks/bench_retention.py --dir /tmp/retbench --n 100000 --build
    .venv/bin/python benchmarks/bench_retention.py --dir /tmp/retbench
    .venv/bin/python benchmarks/bench_retention.py --dir /tmp/retbench --first-day 2  # again
    .venv/bin/python benchmarks/bench_retention.py --dir /tmp/retpg --n 100000 --pg --build
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import numpy as np
import psycopg
from psycopg import sql
from sqlalchemy import Engine, Table, insert, text

from surveil.config import LoggingSettings, RetentionSettings
from surveil.index.sharded import ShardedFaissIndex
from surveil.jobs.retention import RetentionParts, RetentionReport, run_retention
from surveil.jobs.retention_slices import STATE_NAME
from surveil.logs import configure_logging
from surveil.storage.blobs import FileBlobStore
from surveil.storage.blobs.local_files import LocalBlobFiles
from surveil.storage.db import make_engine, make_session_factory
from surveil.storage.migrate import upgrade
from surveil.storage.repositories import SqlCatalog
from surveil.storage.retention import SqlRetention
from surveil.storage.tables import AppearanceRow, CameraRow, KeyframeRow, SourceRow, TrackRow
from surveil.storage.usage import SqlUsage

PG_SERVER = os.environ.get("TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
START = datetime(2024, 1, 1, tzinfo=UTC)
DAYS = 30
CAMERAS = 8
PER_KEYFRAME = 4
DIM = 512
CHUNK = 20_000
#: Bytes of each synthetic crop and keyframe file (recorded in its row, as ingest does).
FILE_BYTES = 64
#: Tracks were last changed before any shard is saved (else reconcile would refresh them).
BUILT = datetime.now(UTC) - timedelta(hours=1)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Where the data lives, how much of it, which catalog, and whether to (re)build."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, required=True, help="Blob root, index, SQLite.")
    parser.add_argument("--n", type=int, default=100_000, help="Appearances to build.")
    parser.add_argument("--pg", action="store_true", help="PostgreSQL catalog, not SQLite.")
    parser.add_argument("--build", action="store_true", help="(Re)build, then exit.")
    parser.add_argument("--batch", type=int, default=2000, help="retention.batch_size")
    parser.add_argument(
        "--first-day", type=int, default=0, help="Expire from this day on (to measure again)."
    )
    parser.add_argument(
        "--full-sweep", action="store_true", help="Sweep the whole store every run (the old way)."
    )
    parser.add_argument(
        "--compare-flat",
        action="store_true",
        help="Instead: time removing one day from ONE unsharded index of --n vectors.",
    )
    return parser.parse_args(argv)


def catalog_url(root: Path, pg: bool) -> str:
    """SQLite inside the folder, or a PostgreSQL database named after it."""
    if not pg:
        return f"sqlite:///{(root / 'catalog.db').as_posix()}"
    return f"{PG_SERVER.rpartition('/')[0]}/surveil_bench_{root.name.replace('-', '_')}"


def _recreate_pg(url: str) -> None:
    admin = PG_SERVER.replace("postgresql+psycopg://", "postgresql://", 1)
    name = sql.Identifier(url.rpartition("/")[2])
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))


# ---- building ------------------------------------------------------------------------


def build(root: Path, n: int, pg: bool) -> None:
    """Rows, files and index for N appearances over DAYS days (keyframes 4 appearances each)."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    url = catalog_url(root, pg)
    if pg:
        _recreate_pg(url)
    upgrade(url)
    engine = make_engine(url)
    index = ShardedFaissIndex(root / "index")
    _insert(engine, CameraRow, [{"id": f"cam{c}", "name": f"cam{c}"} for c in range(CAMERAS)])
    sources = [
        {"id": day * CAMERAS + c + 1, "camera_id": f"cam{c}", "uri": "u", "start_ts": START}
        | {"fingerprint": f"{c}-{day}", "fps": 1.0, "complete": True}
        # Written on their day, long ago: not "written since the last sweep".
        | {"created_at": START + timedelta(days=day), "updated_at": START + timedelta(days=day)}
        for day in range(DAYS)
        for c in range(CAMERAS)
    ]
    _insert(engine, SourceRow, sources)
    keyframes = n // PER_KEYFRAME
    step = timedelta(days=DAYS) / keyframes
    rng = np.random.default_rng(0)
    for lo in range(0, keyframes, CHUNK // PER_KEYFRAME):
        kf_ids = np.arange(lo + 1, min(lo + CHUNK // PER_KEYFRAME, keyframes) + 1)
        stamps = [START + step * int(k - 1) for k in kf_ids]
        _write_chunk(engine, index, root, kf_ids, stamps, rng)
    index.save()
    # A running store has planner statistics (autovacuum); this box runs with it off.
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
    engine.dispose()


def _insert(engine: Engine, model: Any, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as conn:
        conn.execute(insert(cast(Table, model.__table__)), rows)


def _where(k: int, ts: datetime) -> tuple[str, int]:
    camera = (k - 1) % CAMERAS
    return f"cam{camera}", (ts - START).days * CAMERAS + camera + 1


def _write_chunk(
    engine: Engine,
    index: ShardedFaissIndex,
    root: Path,
    kf_ids: Any,
    stamps: list[datetime],
    rng: np.random.Generator,
) -> None:
    vecs = rng.standard_normal((len(kf_ids) * PER_KEYFRAME, DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    kf_rows, app_rows, track_rows, files = [], [], [], []
    for k, ts in zip(kf_ids.tolist(), stamps, strict=True):
        cam, src = _where(k, ts)
        image = f"keyframes/{cam}/{src}/{k:08d}.jpg"
        kf_rows.append(
            {"id": k, "camera_id": cam, "source_id": src, "frame_index": k, "ts": ts}
            | {"width": 640, "height": 480, "image_path": image, "image_bytes": FILE_BYTES}
        )
        files.append(image)
        for j in range(PER_KEYFRAME):
            i = (k - 1) * PER_KEYFRAME + j + 1
            crop = f"crops/{cam}/{src}/{k:08d}_{j:03d}.jpg"
            app_rows.append(
                {"id": i, "keyframe_id": k, "camera_id": cam, "ts": ts, "frame_index": k}
                | {"label": "person", "confidence": 0.9, "x1": 0.0, "y1": 0.0, "x2": 8.0}
                | {"y2": 16.0, "space": "person", "model_id": "bench@1", "crop_path": crop}
                | {"crop_bytes": FILE_BYTES}
                | {"embedding": vecs[i - 1 - (kf_ids[0] - 1) * PER_KEYFRAME].tobytes()}
                | {"dim": DIM, "track_id": i}
            )
            track_rows.append(
                {"id": i, "key": f"bench:{i}", "camera_id": cam, "space": "person"}
                | {"label": "person", "label_group": "person", "first_ts": ts, "last_ts": ts}
                | {"appearances": 1, "best_appearance_id": i, "best_quality": 1.0}
                | {"embedding": app_rows[-1]["embedding"], "dim": DIM, "model_id": "bench@1"}
                | {"closed": True, "updated_at": BUILT}
            )
            files.append(crop)
    _insert(engine, KeyframeRow, kf_rows)
    _insert(engine, AppearanceRow, app_rows)
    _insert(engine, TrackRow, track_rows)
    for key in files:
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * FILE_BYTES)
    ids = np.array([r["id"] for r in app_rows], np.int64)
    index.add("person", ids, vecs, [r["ts"].date() for r in app_rows])


# ---- measuring -----------------------------------------------------------------------


class Timed:
    """Wraps a bound method and adds up the seconds spent in it."""

    def __init__(self, owner: Any, name: str) -> None:
        self.seconds = 0.0
        real: Callable[..., Any] = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return real(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        setattr(owner, name, timed)


def measure(
    root: Path, url: str, label: str, now: datetime, *, dry: bool, batch: int, full: bool
) -> None:
    """One run from a cold object state; prints a table row."""
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    parts = RetentionParts(
        SqlRetention(sessions),
        SqlCatalog(sessions),
        ShardedFaissIndex(root / "index"),
        LocalBlobFiles(FileBlobStore(root)),
        SqlUsage(sessions),
        lambda: 0,
        root,
        root / STATE_NAME,
    )
    rows = [Timed(parts.store, "delete_appearances"), Timed(parts.store, "delete_keyframes")]
    files = Timed(parts.files, "delete_many")
    settings = RetentionSettings(days=DAYS, batch_size=batch)
    report = run_retention(parts, settings, now=now, dry_run=dry, full_sweep=full)
    engine.dispose()
    _print_row(label, report, sum(t.seconds for t in rows), files.seconds)


def _print_row(label: str, r: RetentionReport, rows_s: float, files_s: float) -> None:
    sweep = r.orphans.seconds if r.orphans else 0.0
    orphans = r.orphans.to_dict() if r.orphans else {}
    missing = orphans.get("rows_missing_files", {})
    removed = r.appearances + r.keyframes
    rate = removed / r.seconds if r.seconds else 0.0
    print(
        f"| {label} | {r.seconds:.2f} | {r.appearances} | {r.keyframes} | {r.files} | "
        f"{rate:,.0f} | {rows_s:.2f} | {files_s:.2f} | {r.index.seconds:.2f} | "
        f"{r.index.shards_dropped}/{r.index.shards_edited} | {sweep:.2f} | "
        f"{orphans.get('files', 0)}/{orphans.get('vectors', 0)}/{sum(missing.values())} |",
        flush=True,
    )


def compare_flat(n: int) -> None:
    """The cost sharding avoids: one day's ids out of a single IDMap2(FlatIP) of n vectors.

    `remove_ids` on a flat index compacts the whole array (a pass over n x 512 floats),
    and the index must then be written back whole; both are timed.
    """
    import tempfile

    import faiss

    rng = np.random.default_rng(7)
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))
    for lo in range(0, n, 100_000):
        hi = min(n, lo + 100_000)
        vecs = rng.standard_normal((hi - lo, DIM), dtype=np.float32)
        index.add_with_ids(vecs, np.arange(lo + 1, hi + 1, dtype=np.int64))
    day = np.arange(1, n // DAYS + 1, dtype=np.int64)
    started = time.perf_counter()
    removed = index.remove_ids(faiss.IDSelectorBatch(day))
    remove_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        faiss.write_index(index, f"{tmp}/flat.faiss")
        write_s = time.perf_counter() - started
    print(
        f"flat index of {n:,} x {DIM}: remove_ids of one day ({removed:,} ids) "
        f"{remove_s:.2f} s, write back {index.ntotal:,} vectors {write_s:.2f} s"
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Build if asked; otherwise run the five measurements and print a Markdown table."""
    args = parse_args(argv)
    configure_logging(LoggingSettings(level="WARNING"))
    url = catalog_url(args.dir, args.pg)
    if args.compare_flat:
        compare_flat(args.n)
        return
    if args.build:
        started = time.perf_counter()
        build(args.dir, args.n, args.pg)
        print(f"built {args.n} appearances in {time.perf_counter() - started:.0f} s")
        return
    print(
        "| run | seconds | appearances | keyframes | files | rows/s | rows s | files s "
        "| index s | shards dropped/edited | sweep s | orphan files/vectors/rows w/o file |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    day, base = timedelta(days=1), START + timedelta(days=args.first_day)
    plan = [
        ("preview", base + 31 * day, True),
        ("half day", base + 30.5 * day, False),
        ("rest", base + 31 * day, False),
        ("one day", base + 32 * day, False),
        ("no-op", base + 32 * day, False),
    ]
    for label, now, dry in plan:
        measure(args.dir, url, label, now, dry=dry, batch=args.batch, full=args.full_sweep)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the measuring process: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
