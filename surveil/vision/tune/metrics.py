"""Retrieval figures for a tuned embedder: rank-1 and mAP, each crop querying the rest."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Retrieval", "retrieval"]


@dataclass(frozen=True)
class Retrieval:
    """Rank-1 and mAP over `queries` queries, and same-person pairs kept at 1% false matches.

    Rank-1 and mAP saturate on small galleries; the pair recall at the threshold that lets
    1% of different-person pairs through is what a search's min_score feels, and moves
    before they do.
    """

    rank1: float
    mean_ap: float
    queries: int
    recall_at_1pct: float = 0.0

    def to_dict(self) -> dict[str, float | int]:
        """Rounded for reports."""
        return {
            "rank1": round(self.rank1, 4),
            "map": round(self.mean_ap, 4),
            "recall_at_1pct_false": round(self.recall_at_1pct, 4),
            "queries": self.queries,
        }


def retrieval(
    vectors: npt.NDArray[np.float32],
    labels: npt.NDArray[np.int64],
    groups: npt.NDArray[np.int64] | None = None,
) -> Retrieval:
    """Every crop queries all others; gallery items of the query's group (frame) are skipped.

    Skipping the query's own frame is the standard re-ID protocol: a person is never
    matched against the crop cut from the same image. Queries with no match left are
    not counted.
    """
    sims = vectors @ vectors.T
    hits1: list[float] = []
    aps: list[float] = []
    everyone = np.arange(len(labels))
    for i in everyone:
        keep = everyone != i
        if groups is not None:
            keep &= groups != groups[i]
        relevant = labels[keep] == labels[i]
        if not relevant.any():
            continue
        order = np.argsort(-sims[i, keep], kind="stable")
        ranked = relevant[order]
        found = np.flatnonzero(ranked)
        precision = np.arange(1, len(found) + 1) / (found + 1)
        hits1.append(float(ranked[0]))
        aps.append(float(precision.mean()))
    if not aps:
        return Retrieval(0.0, 0.0, 0)
    recall = _pair_recall(sims, labels, groups, false_rate=0.01)
    return Retrieval(float(np.mean(hits1)), float(np.mean(aps)), len(aps), recall)


def _pair_recall(
    sims: npt.NDArray[np.float32],
    labels: npt.NDArray[np.int64],
    groups: npt.NDArray[np.int64] | None,
    *,
    false_rate: float,
) -> float:
    """Share of same-identity pairs above the score that `false_rate` of other pairs beat."""
    i, j = np.triu_indices(len(labels), 1)
    if groups is not None:
        keep = groups[i] != groups[j]
        i, j = i[keep], j[keep]
    same = labels[i] == labels[j]
    if not same.any() or same.all():
        return 0.0
    threshold = np.quantile(sims[i[~same], j[~same]], 1.0 - false_rate)
    return float((sims[i[same], j[same]] > threshold).mean())
