"""Does k-reciprocal re-ranking help, and what does it cost? (search.rerank's default)

Quality, with and without re-ranking (surveil/search/rerank.py, the search's own code):
1. MOT17-mini identities, crop against crops: every ground-truth pedestrian crop (cut as
   bench_min_score.py does, embedded by the product's OSNet x0.25) queries every other
   crop of every sequence; relevant = same sequence and identity.
2. The same crops, crop against tracks (what a search ranks): each identity's other crops
   pooled into one track vector (mean, L2-normalised), one relevant track per query.
3. Market-1501 demo, cross-camera: each of identity 0001's two crops (camera 1, camera 6)
   queries the MOT17-mini crops plus the other one; the other one's rank.
4. Synthetic re-ID vectors fitted to the real ones (reid_vectors.py), larger and harder
   than the sample data: a fresh appearance of an identity queries a gallery of N stored
   appearances (about 20 per identity).
Intel video tracks: not used, there is no identity ground truth for them.

Latency of the re-ranking stage alone at 1k, 10k and 100k candidates (fitted vectors):
at the default depth (only the best `depth` by cosine enter the graph) and with the
whole candidate list in the graph (depth = N, up to 10k).

    PYTHONPATH=. .venv/bin/python benchmarks/bench_rerank.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reid_vectors as rv

from surveil.search.rerank import RerankParams, rerank_order
from surveil.vision.device import configure_blas_threads

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
Ranker = Callable[[F32, F32], I64]


def unit(v: F32) -> F32:
    """Unit rows, so inner product is cosine."""
    return np.ascontiguousarray(v / np.linalg.norm(v, axis=-1, keepdims=True), np.float32)


def average_precision(relevant: npt.NDArray[np.bool_]) -> float:
    """AP of one ranked list given which positions are relevant."""
    hits = np.flatnonzero(relevant)
    if len(hits) == 0:
        return 0.0
    return float(np.mean(np.arange(1, len(hits) + 1) / (hits + 1)))


def cosine(q: F32, g: F32) -> I64:
    """Plain nearest-neighbour order (ties by index), the search without a second stage."""
    sims = g @ q
    return np.lexsort((np.arange(len(g)), -sims))


def reranker(params: RerankParams) -> Ranker:
    """The search's re-ranking as a ranker over (query, gallery)."""
    return lambda q, g: rerank_order(q, g, params)


def evaluate(
    queries: F32, qids: I64, galleries: Callable[[int], tuple[F32, I64]], rank: Ranker
) -> tuple[float, float]:
    """(mAP, rank-1) over the queries; galleries(i) is query i's (vectors, identities)."""
    aps, firsts = [], []
    for i, q in enumerate(queries):
        g, gids = galleries(i)
        rel = gids[rank(q, g)] == qids[i]
        aps.append(average_precision(rel))
        firsts.append(bool(rel[0]))
    return float(np.mean(aps)), float(np.mean(firsts))


def real_sets(data: Path) -> tuple[F32, I64, list[str]]:
    """OSNet vectors of MOT17-mini pedestrians and the Market crops, with identity ids."""
    vecs, ids, names, model_id = rv.person_vectors(data)
    print(f"embedded {len(vecs)} crops of {len(names)} identities with {model_id}")
    return unit(vecs), ids, names


def crop_protocol(vecs: F32, ids: I64, names: list[str], rank: Ranker) -> tuple[float, float]:
    """MOT17-mini crop against every other crop (Market crops left out)."""
    mot = np.array([not names[i].startswith("market") for i in ids])
    v, idv = vecs[mot], ids[mot]
    counts = np.bincount(idv)
    rows = np.flatnonzero(counts[idv] > 1)
    keep = [np.delete(np.arange(len(v)), r) for r in rows]
    return evaluate(v[rows], idv[rows], lambda i: (v[keep[i]], idv[keep[i]]), rank)


def track_protocol(vecs: F32, ids: I64, names: list[str], rank: Ranker) -> tuple[float, float]:
    """MOT17-mini crop against one pooled vector per identity (the query's own left out)."""
    mot = np.array([not names[i].startswith("market") for i in ids])
    v, idv = vecs[mot], ids[mot]
    idents = np.unique(idv)
    sums = np.stack([v[idv == k].sum(axis=0) for k in idents])
    counts = np.array([(idv == k).sum() for k in idents])
    pos = {int(k): j for j, k in enumerate(idents)}
    rows = np.flatnonzero(counts[[pos[int(k)] for k in idv]] > 1)

    def gallery(i: int) -> tuple[F32, I64]:
        r = rows[i]
        j = pos[int(idv[r])]
        g = sums.copy()
        g[j] -= v[r]
        return unit(g), idents

    return evaluate(v[rows], idv[rows], gallery, rank)


def market_pair(vecs: F32, ids: I64, names: list[str], rank: Ranker) -> list[int]:
    """Rank (1 = first) of the other Market crop of identity 0001, for each of the two."""
    market = np.flatnonzero([names[i].startswith("market") for i in ids])
    mot = np.flatnonzero([not names[i].startswith("market") for i in ids])
    out = []
    for q in market:
        other = [m for m in market if m != q]
        rows = np.r_[mot, other]
        order = rank(vecs[q], vecs[rows])
        out.append(int(np.flatnonzero(rows[order] == other[0])[0]) + 1)
    return out


def synthetic(
    model: rv.ReidVectorModel, n: int, queries: int, rank: Ranker, seed: int = 7
) -> tuple[float, float]:
    """Fresh appearances of `queries` identities against n fitted stored vectors."""
    vecs, ids = next(rv.stream(model, n, 20.0, seed, chunk=n))
    picked = np.random.default_rng(seed).choice(np.unique(ids), queries, replace=False)
    q = unit(rv.query_for(model, picked, seed))
    return evaluate(q, picked.astype(np.int64), lambda _i: (vecs, ids), rank)


def latency(model: rv.ReidVectorModel, n: int, params: RerankParams, repeats: int) -> float:
    """Median ms of one re-ranking over n candidates."""
    vecs, ids = next(rv.stream(model, n, 20.0, 11, chunk=n))
    q = unit(rv.query_for(model, ids[:1], 11))[0]
    rerank_order(q, vecs, params)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        rerank_order(q, vecs, params)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def quality(data: Path, model: rv.ReidVectorModel, synthetic_n: int, queries: int) -> None:
    """The quality table: every protocol, cosine against re-ranking variants."""
    vecs, ids, names = real_sets(data)
    variants: dict[str, Ranker] = {"cosine (off)": cosine}
    for k1, k2, lam in ((20, 6, 0.3), (10, 3, 0.3), (20, 6, 0.6), (6, 2, 0.3)):
        name = f"k-reciprocal k1={k1} k2={k2} lambda={lam}"
        variants[name] = reranker(RerankParams(k1=k1, k2=k2, lam=lam, depth=200))
    print(
        "| ranking | MOT crop→crops mAP | rank-1 | MOT crop→tracks mAP | rank-1 "
        "| Market pair ranks | fitted mAP | rank-1 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, rank in variants.items():
        start = time.perf_counter()
        c_map, c_r1 = crop_protocol(vecs, ids, names, rank)
        t_map, t_r1 = track_protocol(vecs, ids, names, rank)
        pair = market_pair(vecs, ids, names, rank)
        s_map, s_r1 = synthetic(model, synthetic_n, queries, rank)
        print(
            f"| {name} | {c_map:.4f} | {c_r1:.4f} | {t_map:.4f} | {t_r1:.4f} | {pair} "
            f"| {s_map:.4f} | {s_r1:.4f} |  ({time.perf_counter() - start:.0f} s)"
        )


def latencies(model: rv.ReidVectorModel) -> None:
    """Median ms of the re-ranking maths at 1k, 10k and 100k candidates."""
    print("\n| candidates | depth 200 (ms) | whole list in the graph (ms) |")
    print("|---|---|---|")
    default = RerankParams()
    for n in (1_000, 10_000, 100_000):
        fast = latency(model, n, default, 20)
        whole = (
            f"{latency(model, n, RerankParams(depth=n), 3 if n > 1000 else 10):.1f}"
            if n <= 10_000
            else "not run (n x n graph)"
        )
        print(f"| {n:,} | {fast:.1f} | {whole} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--fit-cache", type=Path, default=Path(".cache/reid_fit.npz"))
    parser.add_argument("--synthetic", type=int, default=100_000, help="stored vectors")
    parser.add_argument("--queries", type=int, default=200, help="synthetic queries")
    parser.add_argument("--latency-only", action="store_true", help="skip the quality table")
    args = parser.parse_args()
    configure_blas_threads()  # one BLAS thread, as every surveil process runs
    data = args.data.resolve()
    model = rv.fitted_person_model(data, args.fit_cache)
    if not args.latency_only:
        quality(data, model, args.synthetic, args.queries)
    latencies(model)


if __name__ == "__main__":
    main()
