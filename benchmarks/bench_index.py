"""Measure the sharded FAISS index: add throughput, search latency, save/load, recall.

Synthetic L2-normalised vectors stand in for embeddings. By default (`--data reid`) they
come from reid_vectors.py, a generator fitted to real OSNet vectors of the sample data
(anisotropic: strangers score ~0.4, not ~0, which crowds IVF cells the way production
data does). `--data clustered` is the older isotropic clustered set (flatters IVF) and
`--data uniform` the worst case.

Example:
    .venv/bin/python benchmarks/bench_index.py --sizes 100000 1000000 \\
        --factories Flat IVF1024,Flat
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Literal

import faiss
import numpy as np
import numpy.typing as npt
import reid_vectors

from surveil.config import LoggingSettings
from surveil.domain import Vectors
from surveil.index import factory as fx
from surveil.index.sharded import ShardedFaissIndex
from surveil.logs import configure_logging
from surveil.ports import IndexHit

START = date(2024, 1, 1)
IdMatrix = npt.NDArray[np.int64]
LAYOUTS: tuple[Literal["none", "day"], ...] = ("none", "day")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Options for sizes, shape of the data and which FAISS factories to compare."""
    parser = argparse.ArgumentParser(
        description="Benchmark surveil's sharded FAISS index (add, search p50/p99, save/load).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[100_000, 1_000_000],
        help="stored vector counts to measure",
    )
    parser.add_argument("--dim", type=int, default=512, help="vector dimension")
    parser.add_argument(
        "--factories",
        nargs="+",
        default=["Flat"],
        help="FAISS factory strings (Flat, IVF<n>,Flat, HNSW<M>)",
    )
    parser.add_argument("--days", type=int, default=30, help="day shards in the sharded layout")
    parser.add_argument("--queries", type=int, default=200, help="queries per measurement")
    parser.add_argument("-k", type=int, default=200, help="neighbours asked per query")
    parser.add_argument("--batch", type=int, default=50_000, help="vectors per add() call")
    parser.add_argument(
        "--data",
        choices=["reid", "clustered", "uniform"],
        default="reid",
        help="synthetic vector distribution",
    )
    parser.add_argument(
        "--sample-data",
        type=Path,
        default=Path("../shared/data"),
        help="sample data the reid generator is fitted to (first run only, then cached)",
    )
    parser.add_argument(
        "--reid-cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "surveil-reid-person-model.npz",
        help="fitted reid generator (npz), reused across runs",
    )
    parser.add_argument(
        "--per-object",
        type=int,
        default=20,
        help="appearances per synthetic object (clustered; the mean for reid)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where index files go (default: a temp dir, removed after)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    return parser.parse_args(argv)


def normalise(v: Vectors) -> Vectors:
    """Embeddings are unit length, so inner product is cosine."""
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def make_data(n: int, dim: int, args: argparse.Namespace) -> tuple[Vectors, Vectors]:
    """Stored vectors and queries (a stored object seen again, with fresh noise)."""
    rng = np.random.default_rng(args.seed)
    if args.data == "reid":
        model = reid_vectors.fitted_person_model(args.sample_data, args.reid_cache)
        if model.dim != dim:
            raise SystemExit(f"--data reid is {model.dim}-d (OSNet); got --dim {dim}")
        stored = np.empty((n, dim), np.float32)
        filled, last_id = 0, 0
        for vecs, ids in reid_vectors.stream(model, n, args.per_object, args.seed, args.batch):
            stored[filled : filled + len(vecs)] = vecs
            filled, last_id = filled + len(vecs), int(ids[-1])
        # Identity ids run 0..last_id; a query is a fresh appearance of a stored identity.
        asked = rng.choice(last_id + 1, min(args.queries, last_id + 1), replace=False)
        return stored, reid_vectors.query_for(model, asked, args.seed)
    if args.data == "uniform":
        stored = normalise(rng.standard_normal((n, dim), dtype=np.float32))
        return stored, normalise(rng.standard_normal((args.queries, dim), dtype=np.float32))
    centres = normalise(rng.standard_normal((max(1, n // args.per_object), dim), np.float32))
    stored = np.empty((n, dim), np.float32)
    for start in range(0, n, args.batch):  # chunked: the noise for 1M rows would be another 2 GB
        stop = min(n, start + args.batch)
        noise = rng.standard_normal((stop - start, dim), dtype=np.float32) * 0.03
        stored[start:stop] = centres[rng.integers(0, len(centres), stop - start)] + noise
    normalise(stored)
    picks = centres[rng.integers(0, len(centres), args.queries)]
    queries = picks + rng.standard_normal(picks.shape, dtype=np.float32) * 0.03
    return stored, normalise(queries)


def day_of_row(n: int, days: int) -> list[date]:
    """Rows in time order spread evenly over `days` (ingest appends chronologically)."""
    return [START + timedelta(days=i * days // n) for i in range(n)]


def timed_search(
    index: ShardedFaissIndex, queries: Vectors, k: int, window: tuple[datetime, datetime] | None
) -> tuple[list[float], list[list[IndexHit]]]:
    """Per-query latency (ms) and results."""
    latencies, results = [], []
    since, until = window if window else (None, None)
    for q in queries:
        t = time.perf_counter()
        results.append(index.search("person", q, k, since=since, until=until))
        latencies.append((time.perf_counter() - t) * 1000)
    return latencies, results


def pct(values: list[float], q: int) -> float:
    """The q-th percentile (statistics.quantiles needs at least two values)."""
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def recall(results: list[list[IndexHit]], truth: IdMatrix) -> float:
    """Mean fraction of the exact top-k that the index returned."""
    k = truth.shape[1]
    pairs = zip(results, truth, strict=True)
    found = [len({h.id for h in r} & set(t.tolist())) / k for r, t in pairs]
    return float(np.mean(found))


def dir_bytes(root: Path) -> int:
    """Total size of the index files written."""
    return sum(p.stat().st_size for p in root.rglob("*.faiss"))


def run_layout(
    root: Path,
    stored: Vectors,
    queries: Vectors,
    factory: str,
    layout: Literal["none", "day"],
    args: argparse.Namespace,
    truth: IdMatrix,
) -> None:
    """Add, search (full range, and one day when sharded), save and reload one layout."""
    n = len(stored)
    days = day_of_row(n, args.days if layout == "day" else 1)
    index = ShardedFaissIndex(root, factory=factory, shard_by=layout)
    t = time.perf_counter()
    for start in range(0, n, args.batch):
        stop = min(n, start + args.batch)
        index.add(
            "person", np.arange(start, stop, dtype=np.int64), stored[start:stop], days[start:stop]
        )
    add_s = time.perf_counter() - t
    shards = index._shards["person"].values()
    final = sum(fx.is_final(s.index, factory) for s in shards)
    label = f"{factory:<14} {'1 shard' if layout == 'none' else f'{args.days} day shards':<13}"
    print(
        f"{label} add {n / add_s:>12,.0f} vec/s ({add_s:.1f} s); "
        f"{final}/{len(shards)} shards of the final type"
    )

    windows: list[tuple[str, tuple[datetime, datetime] | None]] = [("full range", None)]
    if layout == "day":
        mid = datetime.combine(START + timedelta(days=args.days // 2), datetime.min.time(), UTC)
        windows.append(("1-day window", (mid, mid + timedelta(hours=23, minutes=59))))
    for name, window in windows:
        lat, results = timed_search(index, queries, args.k, window)
        extra = ""
        if window is None:
            # recall@k counts the tail of unrelated objects too; recall@per_object is the
            # operator's figure: how many true re-sightings of the queried object came back.
            m = min(args.per_object, args.k)
            top_m = [r[:m] for r in results]
            extra = (
                f"  recall@{args.k} {recall(results, truth):.3f}"
                f"  recall@{m} {recall(top_m, truth[:, :m]):.3f}"
            )
        print(
            f"{label} search {name:<13} p50 {pct(lat, 50):8.2f} ms  p99 {pct(lat, 99):8.2f} ms"
            f"{extra}"
        )

    for s in shards:
        s.dirty = True  # searches do not dirty; force the full write we want to time
    t = time.perf_counter()
    index.save()
    save_s = time.perf_counter() - t
    del index, shards
    gc.collect()
    t = time.perf_counter()
    reopened = ShardedFaissIndex(root, factory=factory, shard_by=layout)
    assert reopened.size("person") == n
    load_s = time.perf_counter() - t
    print(
        f"{label} save {save_s:.2f} s  load {load_s:.2f} s  "
        f"files {dir_bytes(root) / 2**20:,.0f} MiB"
    )


def exact_top_k(stored: Vectors, queries: Vectors, k: int) -> IdMatrix:
    """Ground truth for recall, by brute force."""
    flat = faiss.IndexFlatIP(stored.shape[1])
    flat.add(stored)
    _, ids = flat.search(queries, k)
    return ids.astype(np.int64)


def main(argv: Sequence[str] | None = None) -> None:
    """Print one block of figures per stored size."""
    configure_logging(LoggingSettings(level="WARNING"))  # figures on stdout, no chatter
    args = parse_args(argv)
    for factory in args.factories:
        fx.parse_factory(factory)  # fail on a typo before minutes of data generation
    print(
        f"faiss {faiss.__version__}, threads {faiss.omp_get_max_threads()}, "
        f"GPUs used {fx.gpu_count()}, dim {args.dim}, k {args.k}, {args.data} data"
    )
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        for n in args.sizes:
            print(f"\n== {n:,} stored vectors, {args.queries} queries ==")
            stored, queries = make_data(n, args.dim, args)
            truth = exact_top_k(stored, queries, args.k)
            for factory in args.factories:
                for layout in LAYOUTS:
                    root = Path(tmp) / f"{n}-{factory.replace(',', '_')}-{layout}"
                    run_layout(root, stored, queries, factory, layout, args, truth)
                    for path in root.rglob("*.faiss"):
                        path.unlink()  # keep the disk to one index at a time
            del stored, queries
            gc.collect()


if __name__ == "__main__":
    main()
