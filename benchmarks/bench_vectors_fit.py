"""Do the index benchmark's synthetic vectors behave like real re-ID embeddings?

Embeds the sample data's labelled person crops with OSNet (reid_vectors.person_vectors:
MOT17-mini ground truth, identity = sequence + track; Market-1501 query crops), fits
reid_vectors.ReidVectorModel to them and prints, for real vectors, fitted vectors with the
same per-identity counts and bench_index.py's old clustered generator:

1. same- and different-identity cosine percentiles, the norm of the mean vector and the
   variance explained by the first 1/4/16/64 principal components;
2. IVF-Flat recall@10 at nprobe 1 (inner product, nlist = round(sqrt(n))), holding out one
   appearance per identity as the query, averaged over splits and k-means seeds; then the
   same for the generators at benchmark sizes (stream + query_for);
3. recall@10 and @100 against nprobe for IVF-Flat and IVF-SQ8 on the real vectors;
4. centring and PCA-whitening learned from stored vectors (2-fold by identity): same/other
   separation, re-sighting retrieval and IVF recall with and without;
5. the general space (MobileNetV2 on UA-DETRAC vehicles, track = identity), real vs fitted.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_vectors_fit.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reid_vectors as rv
from bench_index import make_data

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
Transform = Callable[[F32], F32]
PERCENTILES = (1, 5, 25, 50, 75, 95, 99)


def normalise(v: F32) -> F32:
    """Unit rows (a copy), so inner product is cosine."""
    return np.ascontiguousarray(v / np.linalg.norm(v, axis=1, keepdims=True), np.float32)


def held_out(ids: I64, rng: np.random.Generator) -> tuple[I64, I64]:
    """Row indices (stored, queries): one random appearance of each identity seen twice+."""
    queries = []
    for ident in np.unique(ids):
        rows = np.flatnonzero(ids == ident)
        if len(rows) > 1:
            queries.append(int(rng.choice(rows)))
    mask = np.ones(len(ids), bool)
    mask[queries] = False
    return np.flatnonzero(mask), np.array(queries, np.int64)


def ivf_index(stored: F32, nlist: int, seed: int, sq8: bool = False) -> faiss.IndexIVF:
    """A trained and filled IVF index (inner product); k-means seeded for repeatability."""
    dim = stored.shape[1]
    quantiser = faiss.IndexFlatIP(dim)
    index: faiss.IndexIVF
    if sq8:
        index = faiss.IndexIVFScalarQuantizer(
            quantiser, dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
    else:
        index = faiss.IndexIVFFlat(quantiser, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed
    index.cp.min_points_per_centroid = 1  # small real sets: no warning, same clustering
    index.train(stored)
    index.add(stored)
    return index


def exact(stored: F32, queries: F32, k: int) -> npt.NDArray[np.int64]:
    """True top-k by brute force."""
    flat = faiss.IndexFlatIP(stored.shape[1])
    flat.add(stored)
    return np.asarray(flat.search(queries, k)[1], np.int64)


def overlap(found: npt.NDArray[np.int64], truth: npt.NDArray[np.int64]) -> float:
    """Mean share of the true top-k that came back."""
    k = truth.shape[1]
    return float(np.mean([len(set(f) & set(t)) / k for f, t in zip(found, truth, strict=True)]))


def split_recall(vecs: F32, ids: I64, splits: int, nprobe: int = 1, k: int = 10) -> list[float]:
    """IVF-Flat recall@k (nlist = sqrt(n)) for several held-out splits and k-means seeds."""
    out = []
    for s in range(splits):
        st, q = held_out(ids, np.random.default_rng(s))
        index = ivf_index(vecs[st], round(np.sqrt(len(st))), seed=s)
        index.nprobe = nprobe
        found = np.asarray(index.search(vecs[q], k)[1], np.int64)
        out.append(overlap(found, exact(vecs[st], vecs[q], k)))
    return out


def spectrum(vecs: F32) -> list[float]:
    """Share of variance along the first 1/4/16/64 principal components."""
    centred = vecs - vecs.mean(0)
    ev = np.linalg.svd(centred.astype(np.float64), compute_uv=False) ** 2
    ev /= ev.sum()
    return [float(ev[:c].sum()) for c in (1, 4, 16, 64)]


def clustered(counts: I64, dim: int, rng: np.random.Generator) -> tuple[F32, I64]:
    """bench_index.py's old clustered data with given per-identity counts: isotropic
    centres, noise 0.03 per dimension (what `--data clustered` draws)."""
    centres = normalise(rng.standard_normal((len(counts), dim), dtype=np.float32))
    ids = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    noise = rng.standard_normal((len(ids), dim), dtype=np.float32) * 0.03
    return normalise(centres[ids] + noise), ids


def print_stats(sets: dict[str, tuple[F32, I64]], splits: int) -> None:
    """Section 1 and the small-size part of section 2."""
    print("\n== 1. Cosine distributions, mean vector, spectrum; IVF recall@10 at nprobe 1")
    head = "  ".join(f"p{p:<4}" for p in PERCENTILES)
    print(f"  {'vectors':<28} {'pairs':<6} {head}")
    summary = []
    for name, (vecs, ids) in sets.items():
        same, other = rv.pair_cosines(vecs, ids, np.random.default_rng(0))
        for label, values in (("same", same), ("other", other)):
            cells = "  ".join(f"{np.percentile(values, p):.3f}" for p in PERCENTILES)
            print(f"  {name:<28} {label:<6} {cells}")
        recall = split_recall(vecs, ids, splits)
        evs = "  ".join(f"{e:.3f}" for e in spectrum(vecs))
        summary.append(
            f"  {name:<28} {np.linalg.norm(vecs.mean(0)):.3f}  {np.mean(other):.3f}       "
            f"{evs}  {np.mean(recall):.3f} +- {np.std(recall):.3f}"
        )
    print(
        f"\n  {'vectors':<28} |mean|  other mean  var@1  var@4  var@16 var@64  "
        f"IVF recall@10 nprobe 1 (mean +- sd over {splits} splits)"
    )
    print("\n".join(summary))


def at_size(model: rv.ReidVectorModel, n: int, queries: int, seed: int) -> None:
    """Recall@10 at nprobe 1 of the fitted and old clustered generators at benchmark sizes."""
    parts = list(rv.stream(model, n, per_identity_mean=20, seed=seed))
    stored = np.concatenate([v for v, _ in parts])
    ids = np.concatenate([i for _, i in parts])
    rng = np.random.default_rng(seed)
    asked = rng.choice(np.unique(ids), queries, replace=False)
    fitted_q = rv.query_for(model, asked, seed)
    args = argparse.Namespace(seed=seed, data="clustered", per_object=20, queries=queries)
    args.batch = 50_000
    old_stored, old_q = make_data(n, model.dim, args)
    nlist = round(np.sqrt(n))
    # Centring learned from the stored vectors: does removing the shared mean direction
    # help IVF's cells where the real sets are too small to tell?
    centre = centring(stored)
    runs = (
        ("fitted (reid)", stored, fitted_q),
        ("fitted, centred", centre(stored), centre(fitted_q)),
        ("old clustered", old_stored, old_q),
    )
    for name, st, q in runs:
        index = ivf_index(st, nlist, seed)
        cells = []
        for nprobe in (1, 4, 16):
            index.nprobe = nprobe
            found = np.asarray(index.search(q, 10)[1], np.int64)
            cells.append(f"{overlap(found, exact(st, q, 10)):.3f}")
        print(f"  {n:>9,} {name:<15} nlist {nlist:<5} recall@10 nprobe 1/4/16: {' / '.join(cells)}")
    del stored, old_stored


def real_ivf_table(vecs: F32, ids: I64, splits: int) -> None:
    """Section 3: recall@10/@100 against nprobe on the real vectors."""
    st_q = [held_out(ids, np.random.default_rng(s)) for s in range(splits)]
    nlist = round(np.sqrt(len(st_q[0][0])))
    print(
        f"\n== 3. Real OSNet vectors: {len(st_q[0][0])} stored, {len(st_q[0][1])} held-out "
        f"queries, nlist {nlist}, mean over {splits} splits"
    )
    print("  index      nprobe  recall@10  recall@100")
    for sq8 in (False, True):
        built = [ivf_index(vecs[st], nlist, s, sq8) for s, (st, _q) in enumerate(st_q)]
        truths = {k: [exact(vecs[st], vecs[q], k) for st, q in st_q] for k in (10, 100)}
        for nprobe in (1, 2, 4, 8, 16):
            row = []
            for k in (10, 100):
                vals = []
                for index, (_st, q), truth in zip(built, st_q, truths[k], strict=True):
                    index.nprobe = nprobe
                    vals.append(overlap(np.asarray(index.search(vecs[q], k)[1]), truth))
                row.append(float(np.mean(vals)))
            name = "IVF-SQ8" if sq8 else "IVF-Flat"
            print(f"  {name:<10} {nprobe:>6}  {row[0]:9.3f}  {row[1]:10.3f}")


def centring(train: F32) -> Transform:
    """Subtract the stored vectors' mean, renormalise."""
    mean = train.mean(0)
    return lambda v: normalise(v - mean)


def whitening(train: F32, shrink: float) -> Transform:
    """PCA-whitening with shrinkage: scale each principal direction by 1/sqrt(var + a),
    a = shrink x the mean variance (shrink -> inf is plain centring), renormalise."""
    mean = train.mean(0)
    cov = np.cov((train - mean).astype(np.float64), rowvar=False)
    values, vectors = np.linalg.eigh(cov)
    scale = 1.0 / np.sqrt(np.clip(values, 0, None) + shrink * values.mean())
    w = (vectors * scale) @ vectors.T
    return lambda v: normalise(((v - mean) @ w).astype(np.float32))


def separation(vecs: F32, ids: I64) -> tuple[float, float, float]:
    """(best threshold's balanced error, recall at 1% false matches, AUC) of pair cosines."""
    same, other = rv.pair_cosines(vecs, ids, np.random.default_rng(0))
    grid = np.linspace(-1, 1, 2001)
    fnr = np.searchsorted(np.sort(same), grid) / len(same)
    fpr = 1 - np.searchsorted(np.sort(other), grid) / len(other)
    err = float(np.min((fnr + fpr) / 2))
    floor = float(np.percentile(other, 99))
    rng = np.random.default_rng(1)
    s = rng.choice(same, min(len(same), 5000), replace=False)
    o = rng.choice(other, min(len(other), 5000), replace=False)
    return err, float(np.mean(same >= floor)), float(np.mean(s[:, None] > o[None, :]))


def resighting(vecs: F32, ids: I64, k: int = 10, nprobe: int = 1, seed: int = 0) -> float:
    """Share of a held-out query's other appearances found in the top-k (exact and IVF
    agree on what counts: the identity), IVF-Flat at nprobe with nlist sqrt(n)."""
    st, q = held_out(ids, np.random.default_rng(seed))
    index = ivf_index(vecs[st], round(np.sqrt(len(st))), seed)
    index.nprobe = nprobe
    found = np.asarray(index.search(vecs[q], k)[1], np.int64)
    shares = []
    for row, qi in zip(found, q, strict=True):
        own = int(np.sum(ids[st] == ids[qi]))
        hits = int(np.sum(ids[st][row[row >= 0]] == ids[qi]))
        shares.append(hits / min(own, k))
    return float(np.mean(shares))


def transforms_table(vecs: F32, ids: I64, splits: int) -> None:
    """Section 4: each transform learned on half the identities, measured on the other."""
    print(
        "\n== 4. Centring / whitening, learned on one half of the identities and measured on "
        "the other (2 folds x splits)"
    )
    print(
        "  transform              balanced err  recall@1%FM  AUC     re-sighting@10 "
        "(exact / IVF np1)  IVF recall@10 np1"
    )
    choices: dict[str, Callable[[F32], Transform]] = {
        "none": lambda _t: lambda v: v,
        "centre": centring,
        "whiten, shrink 1.0": lambda t: whitening(t, 1.0),
        "whiten, shrink 0.1": lambda t: whitening(t, 0.1),
        "whiten, shrink 0.01": lambda t: whitening(t, 0.01),
    }
    uniq = np.unique(ids)
    for name, make in choices.items():
        rows = []
        for s in range(splits):
            half = np.random.default_rng(100 + s).permutation(uniq)[: len(uniq) // 2]
            in_a = np.isin(ids, half)
            for train, test in ((in_a, ~in_a), (~in_a, in_a)):
                v = make(vecs[train])(vecs[test])
                i = ids[test]
                rows.append(
                    (
                        *separation(v, i),
                        resighting(v, i, nprobe=10_000, seed=s),
                        resighting(v, i, seed=s),
                        float(np.mean(split_recall(v, i, 1))),
                    )
                )
        m = np.mean(rows, axis=0)
        print(
            f"  {name:<22} {m[0]:12.4f}  {m[1]:11.3f}  {m[2]:.4f}  "
            f"{m[3]:.3f} / {m[4]:.3f}{'':>19}{m[5]:.3f}"
        )


def general_vectors(data: Path) -> tuple[F32, I64, str]:
    """MobileNetV2 vectors of UA-DETRAC MVI_20011 frames 1-9 vehicles, track = identity."""
    from bench_ingest import _settings
    from bench_min_score import detrac_vehicles

    from surveil.container import build_services

    with tempfile.TemporaryDirectory() as tmp:
        services = build_services(_settings(Path(tmp), data, None))
        samples = detrac_vehicles(data, services.settings.crops.padding)
        embedder = services.embedder("general")
        vecs = np.asarray(embedder.embed([c for _k, _f, c in samples]), np.float32)
        _, ids = np.unique([k for k, _f, _c in samples], return_inverse=True)
        return vecs, ids.astype(np.int64), embedder.model_id


def main() -> None:
    """Print sections 1-5 (see the module docstring)."""
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="sample data")
    parser.add_argument("--splits", type=int, default=10, help="held-out splits per figure")
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="*",
        default=[10_000, 100_000],
        help="generated sizes for the recall comparison (section 2)",
    )
    parser.add_argument("--queries", type=int, default=200, help="queries at generated sizes")
    parser.add_argument("--seed", type=int, default=0, help="generator seed")
    args = parser.parse_args()
    from surveil.config import LoggingSettings
    from surveil.logs import configure_logging

    configure_logging(LoggingSettings(level="WARNING"))
    data = args.data.resolve()
    started = time.perf_counter()
    vecs, ids, names, model_id = rv.person_vectors(data)
    counts = np.bincount(ids)
    t = time.perf_counter()
    model = rv.fit(vecs, ids, source=model_id)
    print(
        f"person: {model_id}, {len(vecs)} crops of {len(names)} identities "
        f"({counts.min()}-{counts.max()} each); fit {time.perf_counter() - t:.1f} s; "
        f"gains: between tail {model.between_tail:.4f}, within tail {model.within_tail:.4f}, "
        f"spread sigma {model.spread_sigma:.3f}; faiss {faiss.__version__}, "
        f"{faiss.omp_get_max_threads()} threads"
    )
    rng = np.random.default_rng(args.seed)
    sets = {
        "real OSNet": (vecs, ids),
        "fitted (reid)": model.sample(len(counts), counts, rng),
        "old clustered (bench_index)": clustered(counts, model.dim, rng),
    }
    print_stats(sets, args.splits)
    if args.sizes:
        print(
            f"\n== 2. At benchmark sizes: 20 appearances per identity on average, "
            f"{args.queries} queries (fresh appearances)"
        )
    for n in args.sizes:
        at_size(model, n, args.queries, args.seed)
    real_ivf_table(vecs, ids, args.splits)
    transforms_table(vecs, ids, max(1, args.splits // 2))

    g_vecs, g_ids, g_model = general_vectors(data)
    g_counts = np.bincount(g_ids)
    g_fit = rv.fit(g_vecs, g_ids, source=g_model)
    print(
        f"\n== 5. general: {g_model}, {len(g_vecs)} crops of {len(g_counts)} vehicle tracks "
        "(too few for IVF; statistics only)"
    )
    g_sets = {
        "real MobileNetV2": (g_vecs, g_ids),
        "fitted (reid)": g_fit.sample(len(g_counts), g_counts, rng),
    }
    for name, (v, i) in g_sets.items():
        same, other = rv.pair_cosines(v, i, np.random.default_rng(0))
        for label, values in (("same", same), ("other", other)):
            cells = "  ".join(f"{np.percentile(values, p):.3f}" for p in PERCENTILES)
            print(f"  {name:<28} {label:<6} {cells}")
        print(f"  {name:<28} |mean| {np.linalg.norm(v.mean(0)):.3f}")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
