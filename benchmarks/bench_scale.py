"""A month of a site through the product's own index: build, memory, latency, recall.

Vectors come from `reid_vectors`, a generator fitted to real OSNet embeddings of the
sample data (anisotropic like the real thing), streamed so that 10M x 512 floats never
sit in memory at once. They are added day by day, in time order, to the index that
`surveil.container.build_services(settings).index` gives (factory `auto`: each sealed
day is trained in the background into IVF lists of 8-bit codes with exact re-rank), and
saved after each day as ingest would. Exact answers come from a brute-force scan of the
same vectors kept in a float file on disk.

Printed per size: build time, index memory, whole-range and one-day latency (p50/p99,
one client and 4 concurrent clients), recall of the true matches (every stored vector
scoring at or above the person min_score, found as the search finds them: deeper while
the k-th still passes) and recall@10/@100 against exact; beside raw FAISS on the same
vectors: the same trained shards searched directly, and (up to --raw-max) one IVF over
everything at the probe count that reaches the same true-match recall.

Example:
    .venv/bin/python benchmarks/bench_scale.py --data ../shared/data \\
        --sizes 100000 1000000 10000000 --workdir /var/tmp/surveil-scale
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reid_vectors import ReidVectorModel, fitted_person_model, query_for, stream

from surveil.config import LoggingSettings, Settings, load_settings
from surveil.container import build_services
from surveil.index.compressed import CompressedShard, nlist_for
from surveil.index.sharded import ShardedFaissIndex
from surveil.logs import configure_logging
from surveil.ports import IndexHit

START = date(2026, 10, 1)
F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Sizes, layout and what to compare."""
    parser = argparse.ArgumentParser(
        description="Benchmark the product's vector index at a month of a site's size.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="sample data")
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[100_000, 1_000_000], help="stored vectors"
    )
    parser.add_argument("--days", type=int, default=30, help="day shards the vectors span")
    parser.add_argument("--queries", type=int, default=200, help="queries per measurement")
    parser.add_argument("-k", type=int, default=200, help="k asked (limit 50 x overfetch 4)")
    parser.add_argument(
        "--per-identity", type=float, default=10.0, help="stored vectors (tracks) per person"
    )
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients measured")
    parser.add_argument(
        "--raw-max", type=int, default=1_000_000, help="largest size for the one-IVF baseline"
    )
    parser.add_argument("--workdir", type=Path, default=None, help="where files go (temp)")
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="build into this folder and keep it; a size already built there is reused",
    )
    parser.add_argument(
        "--fit-cache",
        type=Path,
        default=Path.home() / ".cache" / "surveil" / "reid_person_fit.npz",
        help="cache of the generator fitted to the sample data",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    return parser.parse_args(argv)


def pct(values: Sequence[float], q: int) -> float:
    """The q-th percentile."""
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def rss_anon_mib() -> float:
    """Anonymous resident memory of this process (what the codes and Flat shards cost)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def settings_for(root: Path, data: Path) -> Settings:
    """The embedded defaults (SQLite, factory auto), rooted in the benchmark's folder."""
    return load_settings(
        overrides={
            "storage.root": str(root),
            "model_dir": str(data / "models"),
            "logging.level": "WARNING",
        }
    )


@dataclass
class Built:
    """What building one size left: the product index, exact floats and where days start."""

    index: ShardedFaissIndex
    floats: np.memmap[Any, np.dtype[np.float32]]
    identities: I64
    day_starts: I64
    seconds: float
    train_seconds: float
    rss_mib: float


def day_of_rows(n: int, days: int) -> I64:
    """First row of each day: rows are in time order, spread evenly over the days."""
    return np.array([math.ceil(d * n / days) for d in range(days + 1)], np.int64)


def reuse(n: int, root: Path, args: argparse.Namespace) -> Built | None:
    """A size built earlier with --keep, reopened (its build figures read back)."""
    marker = root / "built.json"
    if not marker.exists():
        return None
    saved = json.loads(marker.read_text())
    index = build_services(settings_for(root, args.data), reconcile_index=False).index
    assert isinstance(index, ShardedFaissIndex)
    floats = np.load(root / "exact.npy", mmap_mode="r")
    print(f"  reusing the index built in {saved['seconds']:.1f} s under {root}")
    return Built(
        index,
        floats,
        np.load(root / "identities.npy"),
        day_of_rows(n, args.days),
        saved["seconds"],
        saved["train_seconds"],
        saved["rss_mib"],
    )


def build(n: int, model: ReidVectorModel, root: Path, args: argparse.Namespace) -> Built:
    """Add n vectors day by day through the product index; save after each day."""
    settings = settings_for(root, args.data)
    index = build_services(settings, reconcile_index=False).index
    assert isinstance(index, ShardedFaissIndex)
    floats = np.lib.format.open_memmap(
        root / "exact.npy", mode="w+", dtype=np.float32, shape=(n, model.dim)
    )
    identities = np.empty(n, np.int64)
    starts = day_of_rows(n, args.days)
    rss0 = rss_anon_mib()
    started = time.perf_counter()
    row, day = 0, 0
    for vectors, ids in stream(model, n, args.per_identity, args.seed):
        floats[row : row + len(vectors)] = vectors
        identities[row : row + len(vectors)] = ids
        rows = np.arange(row, row + len(vectors), dtype=np.int64)
        days = np.searchsorted(starts, rows, side="right") - 1
        index.add("person", rows, vectors, [START + timedelta(days=int(d)) for d in days])
        row += len(vectors)
        while day < args.days and row >= starts[day + 1]:
            index.save()  # the day is over: it is sealed, and queued for training
            day += 1
            # A real day takes 24 h to fill; here the trainer must keep up, or the
            # exact shards awaiting training would fill the memory.
            while index._trainer.pending() > 2:
                time.sleep(0.2)
        print(f"\r  added {row:,}/{n:,}", end="", flush=True)
    index.save()
    added = time.perf_counter() - started
    index.wait_for_training()
    seconds = time.perf_counter() - started
    floats.flush()
    print()
    records = [r for r in index.training("person").values() if r is not None]
    print(
        f"  build {seconds:.1f} s (adds and saves {added:.1f} s, "
        f"{len(records)}/{args.days} shards trained, training "
        f"{sum(r.seconds for r in records):.1f} s on the background thread)"
    )
    built = Built(
        index,
        floats,
        identities,
        starts,
        seconds,
        sum(r.seconds for r in records),
        rss_anon_mib() - rss0,
    )
    np.save(root / "identities.npy", identities)
    (root / "built.json").write_text(
        json.dumps(
            {"seconds": seconds, "train_seconds": built.train_seconds, "rss_mib": built.rss_mib}
        )
    )
    return built


@dataclass
class Truth:
    """Exact answers: top-100 rows and true matches (rows scoring >= floor) per query."""

    top: list[I64]
    matches: list[set[int]]


def exact_truth(floats: Any, queries: F32, floor: float, lo: int, hi: int) -> Truth:
    """Brute force over rows [lo, hi) of the float file, in chunks."""
    best_s = np.full((len(queries), 0), -np.inf, np.float32)
    best_i = np.zeros((len(queries), 0), np.int64)
    matches: list[set[int]] = [set() for _ in queries]
    for start in range(lo, hi, 500_000):
        stop = min(hi, start + 500_000)
        scores = queries @ np.asarray(floats[start:stop]).T
        for q, row in zip(*np.nonzero(scores >= floor), strict=True):
            matches[q].add(int(start + row))
        keep = min(100, stop - start)
        part = np.argpartition(-scores, keep - 1, axis=1)[:, :keep]
        best_s = np.concatenate([best_s, np.take_along_axis(scores, part, 1)], axis=1)
        best_i = np.concatenate([best_i, part + start], axis=1)
        order = np.argsort(-best_s, axis=1)[:, :100]
        best_s, best_i = np.take_along_axis(best_s, order, 1), np.take_along_axis(best_i, order, 1)
    return Truth(top=list(best_i), matches=matches)


#: search.max_candidates: the deepest a search goes (then it says it was cut).
MAX_CANDIDATES = 20_000


def searched(index: Any, query: F32, k: int, floor: float, **window: Any) -> list[int]:
    """Ids as a search gets them: k first, 4x deeper while the k-th still passes the floor,
    up to search.max_candidates."""
    while True:
        hits = index.search("person", query, k, **window)
        if len(hits) < k or hits[-1].score < floor or k >= MAX_CANDIDATES:
            return [h.id for h in hits]
        k = min(k * 4, MAX_CANDIDATES)


def searched_above(index: Any, query: F32, k: int, floor: float, **window: Any) -> list[int]:
    """Ids as the search service gets them now: k first, and while the k-th still passes
    the floor, one `search_above` at the floor (a range search per shard) instead of
    deeper k-nearest rounds."""
    hits = index.search("person", query, k, **window)
    if len(hits) < k or hits[-1].score < floor or k >= MAX_CANDIDATES:
        return [h.id for h in hits]
    return [h.id for h in index.search_above("person", query, floor, MAX_CANDIDATES, **window)]


CAMERAS = 20


def filtered(index: Any, query: F32, k: int, floor: float, limit: int = 50) -> tuple[int, int]:
    """A search filtered to one camera of CAMERAS, as the search service runs it.

    The index knows no cameras; the catalog applies the filter to the candidates, and the
    search goes 4x deeper while fewer than `limit` pass and the k-th still scores above
    the floor. Returns (rounds, candidates fetched). Camera of a row: row % CAMERAS.
    """
    rounds = 0
    while True:
        rounds += 1
        hits = index.search("person", query, k)
        kept = [h for h in hits if h.id % CAMERAS == 0 and h.score >= floor]
        if len(kept) >= limit or len(hits) < k or hits[-1].score < floor or k >= 20_000:
            return rounds, len(hits)
        k = min(k * 4, 20_000)


def filtered_above(
    index: Any, query: F32, k: int, floor: float, limit: int = 50
) -> tuple[int, int]:
    """`filtered` as the search service runs it now: the first round a k-nearest search,
    deeper rounds slices of one `search_above` at the floor. Returns (rounds, candidates)."""
    hits = index.search("person", query, k)
    rounds = 1
    pool: list[IndexHit] | None = None
    while True:
        kept = [h for h in hits if h.id % CAMERAS == 0 and h.score >= floor]
        if len(kept) >= limit or len(hits) < k or hits[-1].score < floor or k >= 20_000:
            return rounds, len(hits)
        k = min(k * 4, 20_000)
        if pool is None:
            pool = index.search_above("person", query, floor, 20_000)
        hits, rounds = pool[:k], rounds + 1


def recall_figures(results: list[list[int]], truth: Truth) -> tuple[float, float, float]:
    """(recall of true matches, recall@10, recall@100) against exact."""
    found = wanted = 0
    at10 = at100 = 0.0
    for got, top, match in zip(results, truth.top, truth.matches, strict=True):
        found += len(match & set(got))
        wanted += len(match)
        at10 += len(set(top[:10].tolist()) & set(got[:10])) / 10
        at100 += len(set(top.tolist()) & set(got[:100])) / 100
    return found / max(wanted, 1), at10 / len(results), at100 / len(results)


def timed(fn: Any, items: Sequence[Any] | F32) -> tuple[list[float], list[Any]]:
    """Per-item latency (ms) and results."""
    lat, out = [], []
    for item in items:
        t = time.perf_counter()
        out.append(fn(item))
        lat.append((time.perf_counter() - t) * 1000)
    return lat, out


def under_load(fn: Any, items: Sequence[Any] | F32, clients: int) -> list[float]:
    """Latencies with `clients` threads each running every item."""
    lat: list[float] = []
    lock = threading.Lock()

    def client(_: int) -> None:
        mine, _res = timed(fn, items)
        with lock:
            lat.extend(mine)

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    return lat


def raw_shards(index: ShardedFaissIndex, queries: F32, k: int) -> list[float]:
    """The same trained shards searched straight through FAISS, one after another."""
    shards = [s.index for s in index._shards["person"].values()]
    faiss.omp_set_num_threads(1)
    lat = []
    for q in queries:
        t = time.perf_counter()
        for s in shards:
            if isinstance(s, CompressedShard):
                s.ivf.search(q.reshape(1, -1), min(k, s.ntotal))
            else:
                s.search(q.reshape(1, -1), min(k, int(s.ntotal)))
        lat.append((time.perf_counter() - t) * 1000)
    return lat


def raw_one_ivf(floats: Any, n: int, queries: F32, truth: Truth, k: int, floor: float) -> str:
    """One IVF-SQ8 over everything, at the fewest probes reaching 0.98 of the true matches."""
    t = time.perf_counter()
    nlist = nlist_for(n)
    ivf = faiss.IndexIVFScalarQuantizer(
        faiss.IndexFlatIP(floats.shape[1]),
        floats.shape[1],
        nlist,
        faiss.ScalarQuantizer.QT_8bit,
        faiss.METRIC_INNER_PRODUCT,
    )
    ivf.cp.niter = 10
    rng = np.random.default_rng(0)
    faiss.omp_set_num_threads(2)
    ivf.train(np.asarray(floats[np.sort(rng.choice(n, min(n, 40 * nlist), replace=False))]))
    for start in range(0, n, 500_000):
        ivf.add(np.asarray(floats[start : min(n, start + 500_000)]))
    built = time.perf_counter() - t
    faiss.omp_set_num_threads(1)
    for nprobe in (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 256):
        ivf.nprobe = nprobe
        results = [searched(_RawIndex(ivf), q, k, floor) for q in queries]
        match, at10, at100 = recall_figures(results, truth)
        if match >= 0.98 or nprobe >= nlist:
            break
    lat, _ = timed(lambda q: ivf.search(q.reshape(1, -1), k), queries)
    return (
        f"raw FAISS, one IVF{nlist},SQ8 over all ({built:.0f} s to build), nprobe {nprobe}: "
        f"p50 {pct(lat, 50):.2f} ms p99 {pct(lat, 99):.2f} ms; true matches {match:.3f}, "
        f"recall@10 {at10:.3f}, @100 {at100:.3f}"
    )


class _RawIndex:
    """A bare FAISS index with the product's search signature (for `searched`)."""

    def __init__(self, ivf: Any) -> None:
        self.ivf = ivf

    def search(self, _space: str, query: F32, k: int) -> list[IndexHit]:
        scores, ids = self.ivf.search(query.reshape(1, -1), k)
        pairs = zip(scores[0], ids[0], strict=True)
        return [IndexHit(id=int(i), score=float(s)) for s, i in pairs if i >= 0]


def print_memory(index: ShardedFaissIndex, root: Path, n: int, build_rss_mib: float) -> None:
    """Resident bytes of the loaded shards, and what lies on disk."""
    held = [s.index for s in index._shards["person"].values()]
    codes = sum(s.memory_bytes() for s in held if isinstance(s, CompressedShard))
    exact = sum(int(s.ntotal) * s.d * 4 for s in held if not isinstance(s, CompressedShard))
    files = {
        kind: sum(p.stat().st_size for p in (root / "index" / "person").glob(f"*{kind}"))
        for kind in (".faiss", ".vectors.npy")
    }
    print(
        f"  memory: compressed shards {codes / 2**20:,.0f} MiB ({codes / n:.0f} B/vector), "
        f"exact shards {exact / 2**20:,.0f} MiB; anonymous RSS grew {build_rss_mib:,.0f} MiB "
        f"while building; on disk codes {files['.faiss'] / 2**20:,.0f} MiB, floats (mapped) "
        f"{files['.vectors.npy'] / 2**20:,.0f} MiB"
    )


def measure(n: int, model: ReidVectorModel, root: Path, args: argparse.Namespace) -> None:
    """Build one size and print its figures."""
    print(f"\n== {n:,} stored vectors over {args.days} days ==")
    built = reuse(n, root, args) or build(n, model, root, args)
    index, floats = built.index, built.floats
    floor = index.floors["person"]
    records = [r for r in index.training("person").values() if r is not None]
    if records:
        probes = sorted(r.nprobe for r in records)
        matches = [r.match_recall for r in records if r.match_recall is not None]
        print(
            f"  shards: {len(records)} trained, nprobe {probes[0]}-{probes[-1]}, self-measured "
            f"true-match recall {min(matches, default=float('nan')):.3f}-"
            f"{max(matches, default=float('nan')):.3f}"
        )

    rng = np.random.default_rng(args.seed + 7)
    rows = np.sort(rng.choice(n, args.queries, replace=False))
    queries = query_for(model, built.identities[rows], args.seed)
    qdays = np.searchsorted(built.day_starts, rows, side="right") - 1

    t = time.perf_counter()
    whole = exact_truth(floats, queries, floor, 0, n)
    day_truths = [
        exact_truth(floats, queries[i : i + 1], floor, built.day_starts[d], built.day_starts[d + 1])
        for i, d in enumerate(qdays)
    ]
    day_truth = Truth(
        top=[t.top[0] for t in day_truths], matches=[t.matches[0] for t in day_truths]
    )
    print(
        f"  exact answers in {time.perf_counter() - t:.0f} s; true matches per query "
        f"(score >= {floor}): whole range median "
        f"{statistics.median(len(m) for m in whole.matches):.0f}"
    )

    # A fresh process's first search: shards warmed in the background at start (as serve does).
    reopened = ShardedFaissIndex(
        root / "index", factory="auto", floors=index.floors, search_threads=None
    )
    t = time.perf_counter()
    reopened.warm().join()
    warm_s = time.perf_counter() - t
    first_lat, _ = timed(lambda q: reopened.search("person", q, args.k), queries[:1])
    print(f"  reopen: shards warmed in {warm_s:.1f} s; first search then {first_lat[0]:.2f} ms")
    print_memory(reopened, root, n, built.rss_mib)

    windows = [
        {
            "since": datetime.combine(START + timedelta(days=int(d)), datetime.min.time(), UTC),
            "until": datetime.combine(START + timedelta(days=int(d)), datetime.max.time(), UTC),
        }
        for d in qdays
    ]
    pairs = list(zip(queries, windows, strict=True))
    for name, items, truth in (
        ("whole range", [(q, {}) for q in queries], whole),
        ("one day    ", pairs, day_truth),
    ):
        lat, _ = timed(lambda p: reopened.search("person", p[0], args.k, **p[1]), items)
        deep_lat, res = timed(lambda p: searched(reopened, p[0], args.k, floor, **p[1]), items)
        match, at10, at100 = recall_figures(res, truth)
        print(
            f"  {name}: k={args.k} p50 {pct(lat, 50):.2f} ms p99 {pct(lat, 99):.2f} ms; "
            f"deepened to every match by k-nearest rounds p50 {pct(deep_lat, 50):.2f} ms p99 "
            f"{pct(deep_lat, 99):.2f} ms; true matches {match:.3f}, recall@10 {at10:.3f}, "
            f"@100 {at100:.3f}"
        )
        above_lat, res = timed(
            lambda p: searched_above(reopened, p[0], args.k, floor, **p[1]), items
        )
        print(
            f"  {name}: deepened to every match by search_above p50 {pct(above_lat, 50):.2f} ms"
            f" p99 {pct(above_lat, 99):.2f} ms; true matches {recall_figures(res, truth)[0]:.3f}"
        )
    for how, run in (("k-nearest rounds", filtered), ("search_above", filtered_above)):
        lat, runs = timed(partial(run, reopened, k=args.k, floor=floor), queries)
        print(
            f"  one camera of {CAMERAS} (filter applied to candidates, deeper until 50 pass, "
            f"by {how}): p50 {pct(lat, 50):.2f} ms p99 {pct(lat, 99):.2f} ms, rounds median "
            f"{statistics.median(r for r, _ in runs):.0f} max {max(r for r, _ in runs)}, "
            f"candidates max {max(c for _, c in runs):,}"
        )
    lat = under_load(lambda q: reopened.search("person", q, args.k), queries, args.clients)
    print(
        f"  whole range, {args.clients} clients at once: p50 {pct(lat, 50):.2f} ms "
        f"p99 {pct(lat, 99):.2f} ms"
    )
    lat = raw_shards(reopened, queries, args.k)
    print(
        f"  raw FAISS, the same {args.days} shards one after another (no re-rank): "
        f"p50 {pct(lat, 50):.2f} ms p99 {pct(lat, 99):.2f} ms"
    )
    if n <= args.raw_max:
        print("  " + raw_one_ivf(floats, n, queries, whole, args.k, floor))
    del built, index, floats
    gc.collect()


def main(argv: Sequence[str] | None = None) -> None:
    """Print one block of figures per size."""
    configure_logging(LoggingSettings(level="WARNING"))
    args = parse_args(argv)
    args.data = args.data.resolve()
    model = fitted_person_model(args.data, args.fit_cache)
    print(
        f"faiss {faiss.__version__}, dim {model.dim}, k {args.k}, {args.queries} queries, "
        f"{args.per_identity:g} vectors per person, {args.days} days"
    )
    if args.keep is not None:
        for n in args.sizes:
            root = args.keep / str(n)
            root.mkdir(parents=True, exist_ok=True)
            measure(n, model, root, args)
        return
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        for n in args.sizes:
            root = Path(tmp) / str(n)
            root.mkdir()
            measure(n, model, root, args)
            shutil.rmtree(root)  # one size on disk at a time


if __name__ == "__main__":
    main()
