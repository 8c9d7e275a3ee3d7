"""FAISS versus the Milvus backend on the same re-ID-like vectors: inserts, latency, recall.

Vectors come from `reid_vectors` (fitted to real OSNet embeddings of the sample data,
anisotropic like the real thing), each with a camera (one of --cameras), a day (rows
spread over --days in time order) and a time span. Three indexes get the same rows:

- raw faiss `IndexFlatIP`: the outside baseline, and the exact answers recall is
  measured against;
- `ShardedFaissIndex`, as `surveil` builds it (factory auto, day shards, saved per day);
- `MilvusIndex`, as `surveil` builds it, against a Milvus Lite server process started
  here (or --milvus-uri), with --index-type (HNSW by default, the product default).

Printed per size: insert throughput (vectors/s, saves and index builds included), search
latency p50/p99 for k, recall@k against exact, and a search filtered to one camera:
inside Milvus's search, versus the FAISS path that fetches deeper (4x per round) and
filters after, as the search service does, with its recall of the exact one-camera top k;
and the time `counts_by_day` and `saved_at` take (what reconcile reads at every start).

Example:
    .venv/bin/python benchmarks/bench_milvus.py --data ../shared/data --sizes 100000
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reid_vectors import ReidVectorModel, fitted_person_model, query_for, stream

from surveil.config import LoggingSettings, Settings, load_settings
from surveil.container import open_faiss_index, open_index
from surveil.index.milvus import MilvusIndex
from surveil.index.sharded import ShardedFaissIndex
from surveil.logs import configure_logging
from surveil.ports import VectorIndex, VectorMeta

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
START = date(2026, 1, 1)
#: The FAISS path's deepest search (search.max_candidates).
MAX_CANDIDATES = 20_000


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="FAISS vs Milvus on the same vectors.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--data", type=Path, default=Path("../shared/data"), help="sample data")
    p.add_argument("--sizes", type=int, nargs="+", default=[100_000], help="stored vectors")
    p.add_argument("--days", type=int, default=30, help="days the vectors span")
    p.add_argument("--cameras", type=int, default=20, help="cameras the vectors come from")
    p.add_argument("--queries", type=int, default=200, help="queries per measurement")
    p.add_argument("-k", type=int, default=100, help="neighbours asked")
    p.add_argument("--per-identity", type=float, default=10.0, help="tracks per person")
    p.add_argument("--index-type", default="HNSW", help="Milvus index type")
    p.add_argument("--ef", type=int, default=256, help="Milvus HNSW ef (index.milvus.hnsw_ef)")
    p.add_argument("--milvus-uri", default=None, help="an existing Milvus (default: start Lite)")
    p.add_argument(
        "--fit-cache",
        type=Path,
        default=Path.home() / ".cache" / "surveil" / "reid_person_fit.npz",
        help="cache of the generator fitted to the sample data",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed")
    return p.parse_args(argv)


def pct(values: Sequence[float], q: int) -> float:
    return float(np.percentile(np.asarray(values), q))


class LiteServer:
    """`python -m milvus_lite server` on a free loopback port, for this run only."""

    def __init__(self, data_dir: Path) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.uri = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(data_dir)]
        cmd += ["--host", "127.0.0.1", "--port", str(self.port)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        from pymilvus import MilvusClient

        deadline = time.monotonic() + 60
        while True:
            try:
                probe = MilvusClient(uri=self.uri, timeout=2)
                probe.list_collections()
                probe.close()  # an idle client keeps pinging: Lite answers with GOAWAY
                return
            except Exception:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("milvus_lite server did not start") from None
                time.sleep(0.2)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def settings_for(root: Path, args: argparse.Namespace, uri: str) -> Settings:
    return load_settings(
        overrides={
            "storage.root": str(root),
            "index.milvus.uri": uri,
            "index.milvus.index_type": args.index_type,
            "index.milvus.hnsw_ef": args.ef,
            "index.milvus.collection_prefix": f"bench{int(time.time())}_",
            "logging.level": "WARNING",
        }
    )


class Rows:
    """The generated rows: vectors (float file), cameras, days and time spans."""

    def __init__(self, n: int, model: ReidVectorModel, root: Path, args: argparse.Namespace):
        self.vectors = np.lib.format.open_memmap(
            root / "exact.npy", mode="w+", dtype=np.float32, shape=(n, model.dim)
        )
        self.identities = np.empty(n, np.int64)
        row = 0
        for vecs, ids in stream(model, n, args.per_identity, args.seed):
            self.vectors[row : row + len(vecs)] = vecs
            self.identities[row : row + len(vecs)] = ids
            row += len(vecs)
        rng = np.random.default_rng(args.seed)
        self.cameras = rng.integers(0, args.cameras, n)
        self.day_index = (np.arange(n) * args.days) // n
        self.n = n

    def days(self, lo: int, hi: int) -> list[date]:
        return [START + timedelta(days=int(d)) for d in self.day_index[lo:hi]]

    def meta(self, lo: int, hi: int) -> list[VectorMeta]:
        out = []
        for row in range(lo, hi):
            first = datetime.combine(
                START + timedelta(days=int(self.day_index[row])), datetime.min.time(), UTC
            ) + timedelta(seconds=row % 80_000)
            out.append(
                VectorMeta(
                    f"cam{self.cameras[row]}", "person", first, first + timedelta(seconds=30)
                )
            )
        return out


def insert(index: VectorIndex, rows: Rows, chunk: int = 10_000) -> float:
    """Add every row in chunks, saving at each day's end as ingest would; vectors/s."""
    started = time.perf_counter()
    last_day = -1
    for lo in range(0, rows.n, chunk):
        hi = min(rows.n, lo + chunk)
        ids = np.arange(lo, hi, dtype=np.int64)
        index.add("person", ids, rows.vectors[lo:hi], rows.days(lo, hi), meta=rows.meta(lo, hi))
        if int(rows.day_index[hi - 1]) != last_day:
            index.save()
            last_day = int(rows.day_index[hi - 1])
        print(f"\r    {hi:,}/{rows.n:,}", end="", flush=True)
    index.save()
    if isinstance(index, ShardedFaissIndex):
        index.wait_for_training()
    if isinstance(index, MilvusIndex):
        index.flush()  # seal the last rows: searched through HNSW, not scanned
    print()
    return rows.n / (time.perf_counter() - started)


def timed(fn: Callable[[F32], list[int]], queries: F32) -> tuple[list[float], list[list[int]]]:
    lat, out = [], []
    for q in queries:
        t = time.perf_counter()
        out.append(fn(q))
        lat.append((time.perf_counter() - t) * 1000)
    return lat, out


def recall(got: list[list[int]], truth: list[list[int]], k: int) -> float:
    scores = [
        len(set(g[:k]) & set(t[:k])) / max(1, min(k, len(t)))
        for g, t in zip(got, truth, strict=True)
    ]
    return statistics.fmean(scores)


def searcher(index: VectorIndex, k: int, **filters: Any) -> Callable[[F32], list[int]]:
    """One search of k through the port, as ids."""

    def run(q: F32) -> list[int]:
        return [h.id for h in index.search("person", q, k, **filters)]

    return run


def faiss_filtered(index: VectorIndex, rows: Rows, cam: int, k: int) -> Callable[[F32], list[int]]:
    """The FAISS path for one camera: k*4 first, 4x deeper until k pass (search service)."""

    def run(q: F32) -> list[int]:
        depth = k * 4
        while True:
            hits = index.search("person", q, depth)
            kept = [h.id for h in hits if rows.cameras[h.id] == cam]
            if len(kept) >= k or len(hits) < depth or depth >= MAX_CANDIDATES:
                return kept[:k]
            depth = min(depth * 4, MAX_CANDIDATES)

    return run


def measure(n: int, model: ReidVectorModel, root: Path, args: argparse.Namespace, uri: str) -> None:
    print(f"\n== {n:,} vectors, dim {model.dim}, k {args.k}, {args.queries} queries")
    rows = Rows(n, model, root, args)
    rng = np.random.default_rng(args.seed + 1)
    asked = rng.choice(np.unique(rows.identities), args.queries, replace=False)
    queries = query_for(model, asked, args.seed)
    k = args.k
    flat = faiss.IndexFlatIP(model.dim)
    t = time.perf_counter()
    for lo in range(0, n, 100_000):
        flat.add(np.ascontiguousarray(rows.vectors[lo : lo + 100_000]))
    flat_rate = n / (time.perf_counter() - t)
    _, top = flat.search(queries, k)
    truth = [list(map(int, r)) for r in top]
    cam = 0
    in_cam = np.flatnonzero(rows.cameras == cam)
    sub = faiss.IndexFlatIP(model.dim)
    sub.add(np.ascontiguousarray(rows.vectors[in_cam]))
    _, top_cam = sub.search(queries, k)
    truth_cam = [[int(in_cam[i]) for i in r] for r in top_cam]

    table: list[tuple[str, ...]] = []
    lat, got = timed(lambda q: list(map(int, flat.search(q[None, :], k)[1][0])), queries)
    table.append(
        ("faiss IndexFlatIP (raw)", f"{flat_rate:,.0f}", *_lat(lat), "1.000", "", "", "", "")
    )

    settings = settings_for(root / "store", args, uri)
    indexes: list[tuple[str, VectorIndex]] = [
        ("surveil ShardedFaissIndex", open_faiss_index(settings)),
        (
            f"surveil MilvusIndex ({args.index_type} ef {args.ef}, Lite)",
            open_index(_milvus(settings)),
        ),
    ]
    for name, index in indexes:
        print(f"  inserting into {name}")
        rate = insert(index, rows)
        lat, got = timed(searcher(index, k), queries)
        if index.filters_inside:
            one_cam = searcher(index, k, cameras={f"cam{cam}"})
        else:
            one_cam = faiss_filtered(index, rows, cam, k)
        flat_lat, flat_got = timed(one_cam, queries)
        t = time.perf_counter()
        index.counts_by_day("person")  # what every start's reconcile reads
        counts_s = time.perf_counter() - t
        t = time.perf_counter()
        index.saved_at("person")  # ... and this, first
        saved_s = time.perf_counter() - t
        table.append(
            (
                name,
                f"{rate:,.0f}",
                *_lat(lat),
                f"{recall(got, truth, k):.3f}",
                f"{pct(flat_lat, 50):.1f} / {pct(flat_lat, 99):.1f}",
                f"{recall(flat_got, truth_cam, k):.3f}",
                f"{counts_s:.2f}",
                f"{saved_s:.2f}",
            )
        )
        if isinstance(index, MilvusIndex):
            index.drop_space("person")
            index.close()
    _print(table, k, args.cameras)


def _milvus(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"index": settings.index.model_copy(update={"backend": "milvus"})}
    )


def _lat(lat: list[float]) -> tuple[str, str]:
    return f"{pct(lat, 50):.2f}", f"{pct(lat, 99):.2f}"


def _print(table: list[tuple[str, ...]], k: int, cameras: int) -> None:
    head = (
        "index",
        "insert vec/s",
        "p50 ms",
        "p99 ms",
        f"recall@{k}",
        f"1 of {cameras} cams p50/p99 ms",
        f"cam recall@{k}",
        "counts_by_day s",
        "saved_at s",
    )
    widths = [max(len(r[i]) for r in [head, *table]) for i in range(len(head))]
    for r in [head, *table]:
        print("  " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


def main(argv: Sequence[str] | None = None) -> None:
    configure_logging(LoggingSettings(level="WARNING"))
    args = parse_args(argv)
    model = fitted_person_model(args.data.resolve(), args.fit_cache)
    import pymilvus

    print(f"faiss {faiss.__version__}, pymilvus {pymilvus.__version__}, {args.cameras} cameras")
    with tempfile.TemporaryDirectory() as tmp:
        server = None if args.milvus_uri else LiteServer(Path(tmp) / "milvus")
        uri = args.milvus_uri or server.uri  # type: ignore[union-attr]
        try:
            for n in args.sizes:
                root = Path(tmp) / str(n)
                root.mkdir()
                measure(n, model, root, args, uri)
                shutil.rmtree(root)
        finally:
            if server is not None:
                server.stop()


if __name__ == "__main__":
    main()
