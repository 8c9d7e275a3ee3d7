"""What one day-shard of a 10M month costs at the issue's recall, in raw FAISS, best case.

Why: issue 11 asks for a whole-range search over 10M vectors (30 day-shards of ~333k) in
p99 <= 20 ms and a one-day search in p99 <= 2 ms, on two cores, while finding 98% of the
*true matches* (every stored vector whose exact cosine to the query is at or above the
space's min_score). This script measures the cheapest way found to get that recall from
one 333k shard, straight through FAISS on one thread (no surveil code at all), so the
product's figures can be read against a floor: if one shard alone costs more than
2 ms, or thirty of them more than 2 x 20 ms of CPU, no layering above FAISS meets the
targets on this machine with these index families.

Vectors come from `reid_vectors` (fitted to real OSNet embeddings of the sample data).
Each configuration retrieves every candidate it believes is above the floor, re-scores
them exactly from float16 copies held in memory (the cheapest re-rank: no disk), and is
scored by the share of true matches it returns:
- ``flat``: exact range search over float32 (the reference: recall 1 by construction);
- ``sq8-range``: IVF lists of 8-bit codes, one range search at the floor (no rounds);
- ``sq8-knn``: the same codes, k = 200 then 4x deeper while the k-th still passes (what
  a k-nearest API has to do to find "every match");
- ``pqfs-knn``: IVF with 4-bit PQ fast-scan codes (M sub-quantisers), k-nearest rounds
  down to floor - margin (fast-scan has no range search; its scores are coarse, so the
  margin must be wide for the recall target).

Example (about 15 minutes on the 2-core machine):
    .venv/bin/python benchmarks/bench_shard_bound.py --data ../shared/data --n 333000
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reid_vectors import fitted_person_model, query_for, stream

_faiss: Any = faiss  # the stubs lack SearchParametersIVF's keyword constructor
F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
#: The person space's default min_score (search.min_score_by_space).
FLOOR = 0.68
#: The deepest k-nearest round: far beyond any query's match count here.
MAX_K = 12_800


@dataclass(frozen=True)
class Outcome:
    """One configuration's figures over all queries."""

    recall: float  # mean over queries of the share of their true matches returned
    p50_ms: float
    p99_ms: float


@dataclass(frozen=True)
class World:
    """The stored vectors, their float16 copy for re-rank, queries and exact truth."""

    vectors: F32
    halves: npt.NDArray[np.float16]
    queries: F32
    truth: list[I64]


def make_world(data: Path, n: int, queries: int, seed: int) -> World:
    """Stream n fitted vectors (10 per identity) and fresh queries of random identities."""
    model = fitted_person_model(data)
    parts: list[F32] = []
    identities: list[I64] = []
    for vectors, ids in stream(model, n, 10, seed=seed):
        parts.append(vectors)
        identities.append(ids)
    x = np.ascontiguousarray(np.concatenate(parts))
    rng = np.random.default_rng(seed + 1)
    picked = rng.choice(np.unique(np.concatenate(identities)), queries, replace=False)
    q = query_for(model, picked, seed=seed)
    truth = [np.flatnonzero(row >= FLOOR).astype(np.int64) for row in q @ x.T]
    return World(x, x.astype(np.float16), q, truth)


def build_ivf(world: World, codes: str, seed: int) -> Any:
    """IVF with ~4·sqrt(n) spherical lists, as the product trains a sealed shard."""
    n, dim = world.vectors.shape
    nlist = max(1, min(round(4 * math.sqrt(n)), n // 39))
    quantizer = faiss.IndexFlatIP(dim)
    ivf: Any
    if codes == "sq8":
        qtype, metric = faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        ivf = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, qtype, metric)
    else:
        m = int(codes.removeprefix("pqfs"))
        ivf = faiss.IndexIVFPQFastScan(quantizer, dim, nlist, m, 4, faiss.METRIC_INNER_PRODUCT)
    ivf.cp.spherical = True
    ivf.cp.niter = 10
    ivf.cp.seed = seed
    rng = np.random.default_rng(seed)
    sample = world.vectors[np.sort(rng.choice(n, min(n, 40 * nlist), replace=False))]
    started = time.perf_counter()
    ivf.train(sample)
    ivf.add_with_ids(world.vectors, np.arange(n, dtype=np.int64))
    print(f"{codes}: {nlist} lists, trained and filled in {time.perf_counter() - started:.1f} s")
    return ivf


def rerank(world: World, query: F32, candidates: I64) -> I64:
    """The candidates whose exact (float16-stored) cosine reaches the floor."""
    rows = np.sort(candidates)
    scores = world.halves[rows].astype(np.float32) @ query
    return rows[scores >= FLOOR]


def by_range(index: Any, nprobe: int | None) -> Callable[[World, F32], I64]:
    """One range search at the floor (IVF: over nprobe lists), then the exact re-rank."""
    params = _faiss.SearchParametersIVF(nprobe=nprobe) if nprobe else None

    def run(world: World, query: F32) -> I64:
        _, _, found = index.range_search(query.reshape(1, -1), FLOOR, params=params)
        return rerank(world, query, found.astype(np.int64))

    return run


def by_rounds(index: Any, nprobe: int, margin: float) -> Callable[[World, F32], I64]:
    """k = 200, then 4x deeper while the k-th code score still passes floor - margin."""
    params = _faiss.SearchParametersIVF(nprobe=nprobe)

    def run(world: World, query: F32) -> I64:
        k = 200
        while True:
            scores, found = index.search(query.reshape(1, -1), k, params=params)
            if scores[0][-1] < FLOOR - margin or found[0][-1] < 0 or k >= MAX_K:
                break
            k *= 4
        keep = (found[0] >= 0) & (scores[0] >= FLOOR - margin)
        return rerank(world, query, found[0][keep].astype(np.int64))

    return run


def measure(world: World, search: Callable[[World, F32], I64]) -> Outcome:
    """Every query once (after one warm-up), timed alone; recall per query, averaged."""
    search(world, world.queries[0])
    times: list[float] = []
    recalls: list[float] = []
    for query, truth in zip(world.queries, world.truth, strict=True):
        started = time.perf_counter()
        got = search(world, query)
        times.append((time.perf_counter() - started) * 1000)
        recalls.append(1.0 if len(truth) == 0 else float(np.isin(truth, got).mean()))
    p50, p99 = np.percentile(times, [50, 99])
    return Outcome(float(np.mean(recalls)), float(p50), float(p99))


def report(name: str, outcome: Outcome, shards: int) -> None:
    """One line, with what `shards` such searches cost one after another."""
    print(
        f"{name:<34} recall {outcome.recall:.3f}  p50 {outcome.p50_ms:7.2f} ms"
        f"  p99 {outcome.p99_ms:7.2f} ms  x{shards} shards p50 {outcome.p50_ms * shards:7.1f} ms",
        flush=True,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--n", type=int, default=333_000, help="vectors in the shard")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--shards", type=int, default=30, help="shards a whole range spans")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--nprobe", type=int, nargs="+", default=[256, 384, 512, 768])
    parser.add_argument("--pq", type=int, nargs="*", default=[256], help="fast-scan M values")
    parser.add_argument("--margin", type=float, default=0.06, help="fast-scan score margin")
    args = parser.parse_args(argv)
    faiss.omp_set_num_threads(1)  # the product searches each shard on one FAISS thread

    world = make_world(args.data, args.n, args.queries, args.seed)
    counts = np.array([len(t) for t in world.truth])
    print(
        f"{args.n} vectors, {args.queries} queries; true matches per query at {FLOOR}: "
        f"median {np.median(counts):.0f}, p90 {np.percentile(counts, 90):.0f}, max {counts.max()}"
    )
    flat = faiss.IndexFlatIP(world.vectors.shape[1])
    flat.add(world.vectors)
    report("flat (exact range search)", measure(world, by_range(flat, None)), args.shards)
    sq8 = build_ivf(world, "sq8", args.seed)
    for nprobe in args.nprobe:
        report(f"sq8-range nprobe {nprobe}", measure(world, by_range(sq8, nprobe)), args.shards)
    for nprobe in args.nprobe:
        report(f"sq8-knn nprobe {nprobe}", measure(world, by_rounds(sq8, nprobe, 0.0)), args.shards)
    del sq8
    for m in args.pq:
        pq = build_ivf(world, f"pqfs{m}", args.seed)
        for nprobe in args.nprobe:
            outcome = measure(world, by_rounds(pq, nprobe, args.margin))
            report(f"pqfs{m}-knn m{args.margin} nprobe {nprobe}", outcome, args.shards)


if __name__ == "__main__":
    main()
