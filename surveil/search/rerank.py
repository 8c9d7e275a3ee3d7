"""k-reciprocal re-ranking of a query's candidates (Zhong et al., CVPR 2017).

A nearest-neighbour list ranks every candidate by its own similarity to the query. A
stranger who happens to look like the query ranks high although the query is not among
*its* nearest neighbours; a true match is a neighbour both ways. The paper's second stage:

1. R(p, k1): the k1-reciprocal neighbours of p (g in p's k1-NN and p in g's k1-NN);
2. R*(p): R(p, k1) plus R(q, k1/2) of each q in it whose half-set shares more than 2/3
   of itself with R(p, k1) (recovers true matches hidden behind hard negatives);
3. V_p: a Gaussian-kernel vector over R*(p), V_p[g] = exp(-d(p, g)), summing to 1;
4. local query expansion: V_p becomes the mean of V over p's k2 nearest neighbours;
5. Jaccard distance d_J(p, g) = 1 - sum min(V_p, V_g) / sum max(V_p, V_g), computed only
   over the columns V_p is non-zero in (everything is sparse);
6. d*(p, g) = (1 - lambda) d_J(p, g) + lambda d(p, g).

Here d is the cosine distance 1 - cos of L2-normalised vectors. Plain numpy/scipy over
plain arrays, no I/O: the neighbour lists are taken in row blocks with argpartition, so
memory is `block x n` at a time, never an n x n dense matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

#: Rows whose neighbours are found per matrix product: memory is BLOCK x n float32.
BLOCK = 1024
#: Up to this many rows (16 MiB of float32) the graph's similarities are one dense matrix,
#: computed once for the neighbour lists and the kernel weights alike.
DENSE_MAX = 2048


@dataclass(frozen=True, slots=True)
class RerankParams:
    """The paper's parameters (its Market-1501 defaults: k1=20, k2=6, lambda=0.3).

    `depth`: how many of the best candidates by cosine enter the neighbour graph.
    """

    k1: int = 20
    k2: int = 6
    lam: float = 0.3
    depth: int = 200

    def __post_init__(self) -> None:
        if self.k1 < 1 or self.k2 < 1 or self.depth < 1 or not 0.0 <= self.lam <= 1.0:
            raise ValueError(f"rerank needs k1, k2, depth >= 1 and 0 <= lambda <= 1; got {self}")


def nearest(x: F32, k: int, dense: F32 | None = None) -> I64:
    """Each row's k nearest rows by cosine (itself first, then by distance), n x k.

    Ties are broken by row index so the result is deterministic. `dense`, when given, is
    x @ x.T already computed.
    """
    n = len(x)
    k = min(k, n)
    out = np.empty((n, k), np.int64)
    for start in range(0, n, BLOCK):
        block = x[start : start + BLOCK]
        sims = block @ x.T if dense is None else dense[start : start + len(block)].copy()
        rows = np.arange(len(sims))
        sims[rows, rows + start] = np.inf  # itself first, whatever rounding says
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        # Sort the k by similarity, then index: lexsort's last key is the primary one.
        order = np.lexsort((part, -np.take_along_axis(sims, part, 1)), axis=1)
        out[start : start + len(sims)] = np.take_along_axis(part, order, 1)
    return out


def _knn_matrix(knn: I64, k: int) -> sp.csr_matrix:
    """Boolean n x n matrix of each row's first k neighbours (itself included)."""
    n = len(knn)
    k = min(k, knn.shape[1])
    rows = np.repeat(np.arange(n), k)
    data = np.ones(n * k, np.float32)
    return sp.csr_matrix((data, (rows, knn[:, :k].ravel())), shape=(n, n))


def reciprocal(knn: I64, k: int) -> sp.csr_matrix:
    """R(p, k) for every p: g in p's k-NN and p in g's k-NN (0/1, n x n, diagonal set).

    As in the paper's code a row's k-NN holds k+1 entries, itself included.
    """
    forward = _knn_matrix(knn, k + 1)
    return forward.multiply(forward.T).tocsr()


def expanded(knn: I64, k1: int) -> sp.csr_matrix:
    """R*(p): R(p, k1) joined by each member q's R(q, k1/2) that overlaps it by over 2/3."""
    full = reciprocal(knn, k1)
    half = reciprocal(knn, round(k1 / 2))
    # overlap[p, q] = |R(p, k1) & R(q, k1/2)|, only where q is in R(p, k1).
    overlap = full.multiply(full @ half.T).tocsr()
    sizes = np.asarray(half.sum(axis=1)).ravel()
    rows = np.repeat(np.arange(overlap.shape[0]), np.diff(overlap.indptr))
    accept = overlap.data > (2.0 / 3.0) * sizes[overlap.indices]
    chosen = sp.csr_matrix(
        (np.ones(int(accept.sum()), np.float32), (rows[accept], overlap.indices[accept])),
        shape=overlap.shape,
    )
    joined = full + chosen @ half
    joined.data[:] = 1.0
    return joined.tocsr()


def encode(x: F32, members: sp.csr_matrix, dense: F32 | None = None) -> sp.csr_matrix:
    """V: each row a Gaussian kernel exp(-d) over its R* members, normalised to sum 1."""
    members = members.tocsr()
    members.sort_indices()
    rows = np.repeat(np.arange(members.shape[0]), np.diff(members.indptr))
    cols = members.indices
    dots = np.einsum("ij,ij->i", x[rows], x[cols]) if dense is None else dense[rows, cols]
    dist = 1.0 - dots
    weights = np.exp(-dist).astype(np.float32)
    sums = np.bincount(rows, weights=weights, minlength=members.shape[0])
    weights /= sums[rows].astype(np.float32)
    return sp.csr_matrix((weights, cols.copy(), members.indptr.copy()), shape=members.shape)


def query_expand(v: sp.csr_matrix, knn: I64, k2: int) -> sp.csr_matrix:
    """Local query expansion: each row of V becomes the mean of its k2 nearest rows' V."""
    if k2 <= 1:
        return v
    mean = _knn_matrix(knn, k2)
    mean.data[:] = 1.0 / min(k2, knn.shape[1])
    return (mean @ v).tocsr()


def jaccard_from(v: sp.csr_matrix, row: int) -> F32:
    """Jaccard distance of row `row` of V to every row, over that row's non-zero columns.

    Rows sum to 1, so sum max = 2 - sum min and only the intersection is computed.
    """
    probe = v.getrow(row)
    cols, vals = probe.indices, probe.data
    part = v.tocsc()[:, cols]
    counts = np.diff(part.indptr)
    inter = sp.csc_matrix(
        (np.minimum(part.data, np.repeat(vals, counts)), part.indices, part.indptr),
        shape=part.shape,
    )
    shared = np.asarray(inter.sum(axis=1), np.float64).ravel()
    return (1.0 - shared / (2.0 - shared)).astype(np.float32)


def k_reciprocal(query: F32, gallery: F32, params: RerankParams, sims: F32 | None = None) -> F32:
    """d*(query, g) for every gallery row (smaller is a better match), in gallery order.

    `query` (d,) and `gallery` (n, d) are L2-normalised; the probe is row 0 of the graph.
    `sims`, when given, is the query's similarity to each row for the lambda term (a
    search's track score is the better of the pooled vector's and the best member's).
    """
    if len(gallery) == 0:
        return np.zeros(0, np.float32)
    x = np.vstack([query[None, :], gallery]).astype(np.float32, copy=False)
    dense = x @ x.T if len(x) <= DENSE_MAX else None
    knn = nearest(x, max(params.k1 + 1, params.k2), dense)
    v = query_expand(encode(x, expanded(knn, params.k1), dense), knn, params.k2)
    jaccard = jaccard_from(v, 0)[1:]
    original = 1.0 - (gallery @ query.astype(np.float32) if sims is None else sims)
    return ((1.0 - params.lam) * jaccard + params.lam * original).astype(np.float32)


def rerank_order(query: F32, gallery: F32, params: RerankParams, sims: F32 | None = None) -> I64:
    """Gallery rows best first: the top `params.depth` by similarity re-ranked by d*, the
    rest after by similarity (`sims` defaults to the cosine with the query).

    Only the top `depth` enter the graph: cost grows with depth, not with the gallery.
    """
    sims = gallery @ query.astype(np.float32) if sims is None else sims
    n = len(sims)
    depth = min(params.depth, n)
    head = np.argpartition(-sims, depth - 1)[:depth] if depth < n else np.arange(n)
    head = head[np.lexsort((head, -sims[head]))]
    dist = k_reciprocal(query, gallery[head], params, sims[head])
    top = head[np.lexsort((np.arange(depth), dist))]
    if depth == n:
        return top
    rest = np.setdiff1d(np.arange(n), head, assume_unique=True)
    return np.concatenate([top, rest[np.lexsort((rest, -sims[rest]))]])
