"""Synthetic vectors that behave like real re-ID embeddings, fitted to the sample data.

Why: isotropic synthetic vectors flatter approximate indexes. Real OSNet vectors are
anisotropic: they share a strong mean direction (two different people score ~0.4 on
average, not ~0) and their spread sits in a few dozen directions, so IVF cells are
crowded and recall at a given nprobe is lower than on isotropic noise. An index benchmark
that should predict production recall needs vectors with those statistics.

Model (fitted by `fit` from real vectors with identities):
- an identity's centre = mean direction + a Gaussian offset with the between-identity
  covariance (top principal directions with their fitted spread, isotropic tail);
- an appearance = centre + a Gaussian offset with the within-identity covariance (again
  top directions + isotropic tail), scaled per identity by a log-normal factor (some
  people are seen in steadier conditions than others), then L2-normalised.
Three scalar gains are then calibrated so the same-identity and different-identity cosine
distributions of generated vectors match the real ones (normalisation shrinks offsets, so
the raw covariances alone do not reproduce the cosines).

Everything an identity needs (centre, spread, query noise) derives from (seed, identity
id): identities are generated in blocks of `IDS_PER_BLOCK` from counter-based Philox
streams keyed by (seed, stream, block), so `query_for` regenerates any identity's fresh
appearance without keeping the streamed vectors, and one RNG is made per block rather than
per identity (a million identities cost a thousand generators).
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

#: Identities per RNG block: `query_for` regenerates whole blocks, so this bounds its cost
#: per queried identity (a 1024 x 512 draw, ~2 ms), while keeping generator creation rare.
IDS_PER_BLOCK = 1024
#: Principal directions kept per covariance; the rest of the variance is an isotropic tail.
#: 64 covers ~90% of the variance of real OSNet vectors (bench_vectors_fit.py prints it).
COMPONENTS = 64
#: Bumped when the fitted fields or their meaning change, so stale caches are refitted.
FORMAT = 1

# Philox streams: which quantity a block's generator draws.
_CENTRES, _STORED, _QUERIES, _COUNTS = 0, 1, 2, 3


def _normalise(v: F32) -> F32:
    v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    return v


def _block_rng(seed: int, stream: int, block: int) -> np.random.Generator:
    """A counter-based generator for one (seed, stream, block): cheap, independent, stable."""
    if not 0 <= seed < 2**64:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    return np.random.Generator(np.random.Philox(key=(seed << 64) | (stream << 48) | block))


@dataclass(frozen=True, eq=False)
class ReidVectorModel:
    """Fitted parameters of the generator (see the module docstring for the model)."""

    dim: int
    #: Mean of the real unit vectors (its norm squared ~ a stranger's expected cosine).
    mean: F32
    #: (k, dim) orthonormal rows: top between-identity directions; std along each (k,).
    between_basis: F32
    between_std: F32
    #: Std per remaining dimension (isotropic tail of the between-identity covariance).
    between_tail: float
    within_basis: F32
    within_std: F32
    within_tail: float
    #: Sigma of the per-identity log-normal factor on the within-identity offset.
    spread_sigma: float
    #: Where the fit came from (model id, data), for the benchmark's printout.
    source: str = ""

    def _offsets(self, rng: np.random.Generator, n: int, basis: F32, std: F32, tail: float) -> F32:
        """n Gaussian offsets: top directions with their std, plus an isotropic tail.

        The tail is drawn in all dimensions (cheap, no projection); the top directions
        then get only the variance the tail does not already give them.
        """
        out = rng.standard_normal((n, self.dim), dtype=np.float32)
        out *= np.float32(tail)
        extra = np.sqrt(np.maximum(std.astype(np.float64) ** 2 - tail**2, 0.0)).astype(np.float32)
        h = rng.standard_normal((n, len(std)), dtype=np.float32)
        out += (h * extra) @ basis
        return out

    def centres(self, n: int, rng: np.random.Generator) -> tuple[F32, F32]:
        """n identity centres (unnormalised) and their within-identity spread factors."""
        c = self._offsets(rng, n, self.between_basis, self.between_std, self.between_tail)
        c += self.mean
        spread = np.exp(self.spread_sigma * rng.standard_normal(n)).astype(np.float32)
        return c, spread

    def appearances(self, centres: F32, spread: F32, counts: I64, rng: np.random.Generator) -> F32:
        """counts[i] L2-normalised appearances of identity i, rows grouped by identity."""
        rows = np.repeat(np.arange(len(centres)), counts)
        w = self._offsets(rng, len(rows), self.within_basis, self.within_std, self.within_tail)
        w *= spread[rows, None]
        w += centres[rows]
        return _normalise(w)

    def sample(
        self, n_identities: int, per_identity: int | np.ndarray, rng: np.random.Generator
    ) -> tuple[F32, I64]:
        """(vectors float32 (N, dim) L2-normalised, identity ids int64 (N,)) for N = sum of
        per_identity (an int for all identities, or one count per identity)."""
        counts = np.broadcast_to(np.asarray(per_identity, np.int64), (n_identities,))
        centres, spread = self.centres(n_identities, rng)
        vecs = self.appearances(centres, spread, counts, rng)
        return vecs, np.repeat(np.arange(n_identities, dtype=np.int64), counts)

    def save(self, path: Path) -> None:
        """Write the fitted parameters as an npz (a few hundred KB)."""
        np.savez(
            path,
            format=FORMAT,
            dim=self.dim,
            mean=self.mean,
            between_basis=self.between_basis,
            between_std=self.between_std,
            between_tail=self.between_tail,
            within_basis=self.within_basis,
            within_std=self.within_std,
            within_tail=self.within_tail,
            spread_sigma=self.spread_sigma,
            source=self.source,
        )

    @classmethod
    def load(cls, path: Path) -> ReidVectorModel:
        """Read what `save` wrote; ValueError if it is another format version."""
        with np.load(path) as z:
            if int(z["format"]) != FORMAT:
                raise ValueError(f"{path}: format {int(z['format'])}, expected {FORMAT}")
            return cls(
                dim=int(z["dim"]),
                mean=z["mean"].astype(np.float32),
                between_basis=z["between_basis"].astype(np.float32),
                between_std=z["between_std"].astype(np.float32),
                between_tail=float(z["between_tail"]),
                within_basis=z["within_basis"].astype(np.float32),
                within_std=z["within_std"].astype(np.float32),
                within_tail=float(z["within_tail"]),
                spread_sigma=float(z["spread_sigma"]),
                source=str(z["source"]),
            )


def _spectrum(cov: npt.NDArray[np.float64], k: int) -> tuple[F32, F32, float]:
    """Top-k eigenvectors (rows) and std of a covariance, and the std of the isotropic rest."""
    values, vectors = np.linalg.eigh(cov)
    values = np.clip(values[::-1], 0.0, None)
    vectors = vectors[:, ::-1]
    k = min(k, len(values) - 1)
    tail = float(np.sqrt(values[k:].sum() / (len(values) - k)))
    return vectors[:, :k].T.astype(np.float32), np.sqrt(values[:k]).astype(np.float32), tail


def pair_cosines(
    vectors: F32, identities: I64, rng: np.random.Generator, max_pairs: int = 200_000
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Cosines of every same-identity pair and of up to max_pairs random different pairs."""
    order = np.argsort(identities, kind="stable")
    ids = identities[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    ends = np.r_[starts[1:], len(ids)]
    a_parts, b_parts = [], []
    for s, e in zip(starts, ends, strict=True):
        if e - s > 1:
            i, j = np.triu_indices(e - s, 1)
            a_parts.append(order[s + i])
            b_parts.append(order[s + j])
    a = np.concatenate(a_parts) if a_parts else np.zeros(0, np.int64)
    b = np.concatenate(b_parts) if b_parts else np.zeros(0, np.int64)
    same = np.einsum("ij,ij->i", vectors[a], vectors[b]).astype(np.float64)
    n = len(vectors)
    p, q = rng.integers(0, n, max_pairs), rng.integers(0, n, max_pairs)
    keep = identities[p] != identities[q]
    other = np.einsum("ij,ij->i", vectors[p[keep]], vectors[q[keep]]).astype(np.float64)
    return same, other


def _bisect(
    f: Callable[[float], float], lo: float, hi: float, target: float, increasing: bool
) -> float:
    """x in [lo, hi] with f(x) ~ target for a monotone f (on log scale when lo > 0)."""
    for _ in range(20):
        mid = float(np.sqrt(lo * hi)) if lo > 0 else (lo + hi) / 2
        if (f(mid) < target) == increasing:
            lo = mid
        else:
            hi = mid
    return float(np.sqrt(lo * hi)) if lo > 0 else (lo + hi) / 2


def fit(vectors: np.ndarray, identities: np.ndarray, source: str = "") -> ReidVectorModel:
    """Fit the generator to real unit vectors with identity labels.

    Covariances: within-identity from deviations from each identity's mean (dof-corrected),
    between-identity from the identity means less the within-identity share that averaging
    n appearances leaves in a mean. Then three gains are calibrated with common random
    numbers on a generated set with the real per-identity counts (x4): the between gain so
    the median different-identity cosine matches, the within gain for the median
    same-identity cosine, and the spread sigma for its 5th percentile (the hard pairs).
    """
    x = np.asarray(vectors, np.float64)
    _, ids = np.unique(np.asarray(identities), return_inverse=True)
    n_ids = int(ids.max()) + 1
    counts = np.bincount(ids, minlength=n_ids)
    dim = x.shape[1]
    mean = x.mean(0)
    centres = np.zeros((n_ids, dim))
    np.add.at(centres, ids, x)
    centres /= counts[:, None]
    w = x - centres[ids]
    cov_w = w.T @ w / max(1, len(x) - n_ids)
    b = centres - mean
    cov_b = b.T @ b / max(1, n_ids - 1) - float(np.mean(1.0 / counts)) * cov_w
    wb, ws, wt = _spectrum(cov_w, COMPONENTS)
    bb, bs, bt = _spectrum(cov_b, COMPONENTS)
    base = ReidVectorModel(
        dim, mean.astype(np.float32), bb, bs, bt, wb, ws, wt, spread_sigma=0.0, source=source
    )

    rng = np.random.default_rng(0)
    real_ids = np.asarray(ids, np.int64)
    real_same, real_other = pair_cosines(np.asarray(x, np.float32), real_ids, rng)
    target_other = float(np.median(real_other))
    target_same, target_p5 = float(np.median(real_same)), float(np.percentile(real_same, 5))

    # Common random numbers: every candidate gain rescales the same draws.
    reps = 4
    sim_counts = np.tile(counts, reps).astype(np.int64)
    n_sim = len(sim_counts)
    rows = np.repeat(np.arange(n_sim), sim_counts)
    sim_ids = rows.astype(np.int64)
    gen = np.random.default_rng(1)
    c_off = base._offsets(gen, n_sim, bb, bs, bt)
    w_off = base._offsets(gen, len(rows), wb, ws, wt)
    e = gen.standard_normal(n_sim).astype(np.float32)
    pair_rng_seed = 2

    def stats(g_b: float, g_w: float, sigma: float) -> tuple[F32, I64]:
        spread = np.exp(sigma * e)
        v = (mean + g_b * c_off)[rows] + (g_w * spread[rows, None]) * w_off
        return _normalise(v.astype(np.float32)), sim_ids

    def other_median(g_b: float) -> float:
        v, i = stats(g_b, g_w, sigma)
        return float(np.median(pair_cosines(v, i, np.random.default_rng(pair_rng_seed))[1]))

    def same_median(gw: float) -> float:
        v, i = stats(g_b, gw, sigma)
        return float(np.median(pair_cosines(v, i, np.random.default_rng(pair_rng_seed))[0]))

    def same_p5(s: float) -> float:
        v, i = stats(g_b, g_w, s)
        same = pair_cosines(v, i, np.random.default_rng(pair_rng_seed), max_pairs=1)[0]
        return float(np.percentile(same, 5))

    g_b, g_w, sigma = 1.0, 1.0, 0.0
    for _ in range(2):  # the three targets interact mildly; a few sweeps settle them
        g_b = _bisect(other_median, 0.05, 20.0, target_other, increasing=False)
        g_w = _bisect(same_median, 0.05, 20.0, target_same, increasing=False)
        sigma = _bisect(same_p5, 0.0, 2.0, target_p5, increasing=False)
    return ReidVectorModel(
        dim=dim,
        mean=mean.astype(np.float32),
        between_basis=bb,
        between_std=(bs * g_b).astype(np.float32),
        between_tail=bt * g_b,
        within_basis=wb,
        within_std=(ws * g_w).astype(np.float32),
        within_tail=wt * g_w,
        spread_sigma=sigma,
        source=source,
    )


def person_vectors(data_dir: Path) -> tuple[F32, I64, list[str], str]:
    """Real OSNet vectors of the sample data's labelled person crops.

    MOT17-mini ground-truth pedestrians (identity = sequence + track id, cut and filtered
    as bench_min_score.py does) and the Market-1501 query crops (identity from the file
    name). Returns (vectors, identity ids, identity names, embedder model id).
    """
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_ingest import _settings
    from bench_min_score import MARKET, mot_people

    from surveil.container import build_services
    from surveil.vision.crops import read_image

    data = data_dir.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        services = build_services(_settings(Path(tmp), data, None))
        samples = mot_people(data, services.settings.crops.padding)
        keys = [key for key, _frame, _crop in samples]
        crops = [crop for _key, _frame, crop in samples]
        for path in sorted((data / MARKET).glob("*.jpg")):
            keys.append("market1501:" + path.name.split("_")[0])
            crops.append(read_image(path))
        embedder = services.embedder("person")
        vecs = np.asarray(embedder.embed(crops), np.float32)
        model_id = embedder.model_id
    names, ids = np.unique(np.array(keys), return_inverse=True)
    return vecs, ids.astype(np.int64), [str(n) for n in names], model_id


def fitted_person_model(data_dir: Path, cache: Path | None = None) -> ReidVectorModel:
    """Embed the sample data's person crops (OSNet) and fit; cached to `cache` (npz) if given.

    A cache of another format version is refitted and overwritten.
    """
    if cache is not None and cache.is_file():
        try:
            return ReidVectorModel.load(cache)
        except (ValueError, KeyError):
            pass
    vecs, ids, names, model_id = person_vectors(data_dir)
    model = fit(vecs, ids, source=f"{model_id} on {len(vecs)} crops of {len(names)} identities")
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        model.save(cache)
    return model


def _counts(per_identity_mean: float, seed: int, block: int) -> I64:
    """Appearances per identity of one block: log-normal around the mean, at least 1.

    Tracks are a few to tens of sightings; sigma 0.8 gives, for a mean of 20, a 5-95%
    range of about 4 to 54.
    """
    rng = _block_rng(seed, _COUNTS, block)
    sigma = 0.8
    mu = np.log(max(per_identity_mean, 1.0)) - sigma**2 / 2
    raw = np.exp(mu + sigma * rng.standard_normal(IDS_PER_BLOCK))
    return np.asarray(np.maximum(1, np.rint(raw)), np.int64)


def _block_centres(model: ReidVectorModel, seed: int, block: int) -> tuple[F32, F32]:
    return model.centres(IDS_PER_BLOCK, _block_rng(seed, _CENTRES, block))


def stream(
    model: ReidVectorModel, total: int, per_identity_mean: float, seed: int, chunk: int = 100_000
) -> Iterator[tuple[F32, I64]]:
    """Yield (vectors, identity ids) chunks totalling `total` vectors without ever holding
    all of them, identities unique across chunks, per-identity counts varying around the
    mean (tracks: a few to tens per identity), deterministic for a seed.

    Identity ids are 0, 1, 2, ... in order; a chunk holds whole identities and at most
    `chunk` vectors (unless one identity alone is larger); the last identity is cut short
    so the total is exact. Memory: one block of IDS_PER_BLOCK identities plus one chunk.
    """
    produced = 0
    pending_v: list[F32] = []
    pending_i: list[I64] = []
    pending_n = 0
    block = 0
    while produced < total:
        counts = _counts(per_identity_mean, seed, block)
        cum = np.cumsum(counts)
        if produced + cum[-1] >= total:  # the last block: cut it to the exact total
            last = int(np.searchsorted(cum, total - produced))
            counts = counts[: last + 1].copy()
            counts[-1] -= int(cum[last]) - (total - produced)
        centres, spread = _block_centres(model, seed, block)
        k = len(counts)
        vecs = model.appearances(centres[:k], spread[:k], counts, _block_rng(seed, _STORED, block))
        first = block * IDS_PER_BLOCK
        ids = np.repeat(np.arange(first, first + k, dtype=np.int64), counts)
        produced += len(vecs)
        # Cut at identity boundaries: fill the pending chunk with the identities that fit,
        # flush it when the next one does not.
        bounds = np.r_[0, np.cumsum(counts)]
        start = 0
        while start < len(vecs):
            fits = int(bounds[np.searchsorted(bounds, start + chunk - pending_n, "right") - 1])
            if fits <= start and pending_n:
                yield np.concatenate(pending_v), np.concatenate(pending_i)
                pending_v, pending_i, pending_n = [], [], 0
                continue
            cut = fits if fits > start else int(bounds[np.searchsorted(bounds, start, "right")])
            pending_v.append(vecs[start:cut])
            pending_i.append(ids[start:cut])
            pending_n += cut - start
            start = cut
        block += 1
    if pending_n:
        yield np.concatenate(pending_v), np.concatenate(pending_i)


def query_for(model: ReidVectorModel, identity_ids: np.ndarray, seed: int) -> F32:
    """A fresh appearance (not one of the stored vectors) of each given identity,
    reproducible from the seed and identity id alone — the queries for recall measurement.

    Regenerates each touched block's centres and a dedicated query-noise stream, so an
    identity's query does not depend on which other identities are asked for.
    """
    wanted = np.asarray(identity_ids, np.int64)
    out = np.empty((len(wanted), model.dim), np.float32)
    blocks = wanted // IDS_PER_BLOCK
    for block in np.unique(blocks):
        centres, spread = _block_centres(model, seed, int(block))
        noise_rng = _block_rng(seed, _QUERIES, int(block))
        fresh = model.appearances(centres, spread, np.ones(IDS_PER_BLOCK, np.int64), noise_rng)
        here = blocks == block
        out[here] = fresh[wanted[here] - int(block) * IDS_PER_BLOCK]
    return out
