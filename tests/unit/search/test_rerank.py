"""k-reciprocal re-ranking on hand-built vectors: the paper's rule, step by step."""

from __future__ import annotations

import time

import numpy as np
import numpy.typing as npt
import pytest
from rerank_example import F_ROW, GALLERY, K1, OTHER, QUERY, T_ROW, TRUE, on_circle

from surveil.search.rerank import (
    RerankParams,
    encode,
    expanded,
    jaccard_from,
    k_reciprocal,
    nearest,
    query_expand,
    reciprocal,
    rerank_order,
)

F32 = npt.NDArray[np.float32]


def test_the_look_alike_is_a_one_way_neighbour_and_the_true_match_is_reciprocal() -> None:
    x = on_circle(QUERY, *GALLERY)
    knn = nearest(x, K1 + 1)
    # Graph rows: 0 is the query, gallery row i is graph row i + 1.
    assert knn[0].tolist() == [0, 1, 2, 3, 4, T_ROW + 1]  # T is the query's 5th neighbour
    assert 0 not in knn[F_ROW + 1].tolist()  # the query is not among F's neighbours
    r = reciprocal(knn, K1).toarray()
    assert np.flatnonzero(r[0]).tolist() == [0, T_ROW + 1]  # R(q, k1) = {q, T}
    assert not r[0, F_ROW + 1]
    # R* adds nothing here: T's half-set {T, OTHER} shares only T with R(q, k1).
    assert np.array_equal(expanded(knn, K1).toarray()[0] > 0, r[0] > 0)


def encoded(centre: float, members: dict[str, float]) -> dict[str, float]:
    """The paper's V over a hand-derived R* set: exp(-d) per member, summing to 1."""
    w = {k: float(np.exp(-(1 - np.cos(np.radians(a - centre))))) for k, a in members.items()}
    total = sum(w.values())
    return {k: v / total for k, v in w.items()}


def jaccard(a: dict[str, float], b: dict[str, float]) -> float:
    """1 - sum min / sum max over the union of the two encodings."""
    keys = a.keys() | b.keys()
    inter = sum(min(a.get(k, 0), b.get(k, 0)) for k in keys)
    return 1 - inter / sum(max(a.get(k, 0), b.get(k, 0)) for k in keys)


def test_re_ranking_puts_the_reciprocal_match_first() -> None:
    """d* by hand: R*(q) = {q, T}; R*(T) = {T, q, O}; R*(O) = {O, T}; a look-alike's R*
    holds only crowd. So T moves first, the stranger O (who shares T with the query)
    second, and the crowd (Jaccard distance 1) follows in cosine order."""
    query, gallery = on_circle(QUERY)[0], on_circle(*GALLERY)
    before = np.argsort(-(gallery @ query), kind="stable")
    assert before.tolist()[:5] == [0, 1, 2, 3, T_ROW]  # by cosine, T is 5th
    lam = 0.3
    dist = k_reciprocal(query, gallery, RerankParams(k1=K1, k2=1, lam=lam))
    v_q = encoded(QUERY, {"q": QUERY, "T": TRUE})
    v_t = encoded(TRUE, {"T": TRUE, "q": QUERY, "O": OTHER})
    v_o = encoded(OTHER, {"O": OTHER, "T": TRUE})

    def d_star(d_j: float, angle: float) -> float:
        return (1 - lam) * d_j + lam * (1 - float(np.cos(np.radians(angle))))

    assert dist[T_ROW] == pytest.approx(d_star(jaccard(v_q, v_t), TRUE), abs=1e-5)
    assert dist[len(GALLERY) - 1] == pytest.approx(d_star(jaccard(v_q, v_o), OTHER), abs=1e-5)
    assert dist[F_ROW] == pytest.approx(d_star(1.0, 20.0), abs=1e-5)
    after = rerank_order(query, gallery, RerankParams(k1=K1, k2=1, lam=lam))
    other_row = len(GALLERY) - 1
    rest = [int(i) for i in before if i not in (T_ROW, other_row)]
    assert [int(i) for i in after] == [T_ROW, other_row, *rest]


def test_query_expansion_averages_the_k2_nearest_encodings() -> None:
    """Local query expansion: V_p becomes the mean of V over p's k2 nearest (itself first).

    On the example the query's nearest is the look-alike F, so expansion pulls the crowd
    into the query's encoding: the paper's trade-off, why k2 is small.
    """
    x = on_circle(QUERY, *GALLERY)
    knn = nearest(x, K1 + 1)
    v = encode(x, expanded(knn, K1))
    qe = query_expand(v, knn, 2).toarray()
    dense = v.toarray()
    assert np.allclose(qe[0], (dense[0] + dense[F_ROW + 1]) / 2)
    assert np.allclose(qe.sum(axis=1), 1.0)  # still sums to 1: Jaccard's shortcut holds


def test_lambda_one_is_plain_cosine_order() -> None:
    query, gallery = on_circle(QUERY)[0], on_circle(*GALLERY)
    after = rerank_order(query, gallery, RerankParams(k1=K1, k2=1, lam=1.0))
    assert after.tolist() == np.argsort(-(gallery @ query), kind="stable").tolist()


def test_jaccard_is_zero_for_equal_rows_and_one_for_disjoint() -> None:
    import scipy.sparse as sp

    v = sp.csr_matrix(np.array([[0.5, 0.5, 0, 0], [0.5, 0.5, 0, 0], [0, 0, 0.25, 0.75]]))
    assert jaccard_from(v, 0).tolist() == pytest.approx([0.0, 0.0, 1.0])


def test_only_the_top_depth_enter_the_graph_and_the_rest_keep_cosine_order() -> None:
    rng = np.random.default_rng(3)
    gallery = rng.standard_normal((500, 32)).astype(np.float32)
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    query = gallery[0] + 0.1 * rng.standard_normal(32).astype(np.float32)
    query /= np.linalg.norm(query)
    order = rerank_order(query, gallery, RerankParams(depth=50))
    by_cosine = np.argsort(-(gallery @ query), kind="stable")
    assert sorted(order.tolist()) == list(range(500))  # a permutation
    assert set(order[:50].tolist()) == set(by_cosine[:50].tolist())
    assert order[50:].tolist() == by_cosine[50:].tolist()


def test_a_hundred_thousand_candidates_cost_the_depth_not_the_gallery() -> None:
    """No n x n matrix: 100k candidates at depth 200 re-rank in well under a second."""
    rng = np.random.default_rng(5)
    gallery = rng.standard_normal((100_000, 64)).astype(np.float32)
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    start = time.perf_counter()
    order = rerank_order(gallery[7], gallery, RerankParams(depth=200))
    assert time.perf_counter() - start < 2.0
    assert order[0] == 7 and len(order) == 100_000


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="k1, k2, depth >= 1"):
        RerankParams(k1=0)
    with pytest.raises(ValueError, match="lambda"):
        RerankParams(lam=1.5)


def test_an_empty_gallery_has_no_distances() -> None:
    assert k_reciprocal(on_circle(0)[0], np.zeros((0, 2), np.float32), RerankParams()).size == 0
