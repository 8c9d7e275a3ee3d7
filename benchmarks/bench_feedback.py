"""Re-running a search with operator feedback: which multi-example fusion, and does the
rejected-hit penalty help? Measured on real OSNet vectors of MOT17-mini pedestrians.

Each identity's first crop is a query; the gallery is every other crop of every sequence.
A simulated operator labels the top `--labelled` hits of the plain search (confirmed when
the identity matches, rejected otherwise). The re-run is then scored on the hits the
operator has NOT labelled (what feedback is for: finding the rest), by mAP and rank-1:
- plain: the original query alone;
- max: query and confirmed crops each score the gallery, best score per item;
- mean: one query, the renormalised mean of query and confirmed crops (Rocchio);
- each with the rejected-hit penalty of surveil.search.feedback_rank (weight 1).

    .venv/bin/python benchmarks/bench_feedback.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import _settings
from bench_min_score import mot_people

from surveil.container import build_services
from surveil.search.feedback_rank import mean_query


def average_precision(scores: np.ndarray, relevant: np.ndarray) -> float:
    """AP of a ranking by `scores` for the boolean `relevant` items."""
    order = np.argsort(-scores, kind="stable")
    hits = relevant[order]
    if not hits.any():
        return 0.0
    precision = np.cumsum(hits) / (np.arange(len(hits)) + 1)
    return float(precision[hits].mean())


def rescore(
    q: np.ndarray, gallery: np.ndarray, pos: np.ndarray, neg: np.ndarray, fusion: str, weight: float
) -> np.ndarray:
    """The gallery's scores after feedback, as FeedbackService computes them (per item)."""
    examples = np.vstack([q[None, :], pos]) if len(pos) else q[None, :]
    if fusion == "mean":
        scores = gallery @ mean_query(examples)
    else:
        scores = (gallery @ examples.T).max(axis=1)
    if len(neg) and weight > 0:
        near = (gallery @ neg.T).max(axis=1)
        scores = scores - weight * np.maximum(0.0, near - scores)
    return np.asarray(scores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument(
        "--labelled", type=int, nargs="+", default=[2, 3, 5], help="Top hits the operator labels."
    )
    args = parser.parse_args()
    data = args.data.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        services = build_services(_settings(Path(tmp), data, None))
        samples = mot_people(data, services.settings.crops.padding)
        keys = np.array([k for k, _, _ in samples])
        vecs = np.asarray(services.embedder("person").embed([c for _, _, c in samples]), np.float32)
    for labelled in args.labelled:
        report(keys, vecs, labelled)


def report(keys: np.ndarray, vecs: np.ndarray, labelled: int) -> None:
    """mAP and rank-1 on the unlabelled hits, per method, after labelling the top hits."""
    methods = {
        "plain": ("max", 0.0, False),
        "max": ("max", 0.0, True),
        "max+penalty": ("max", 1.0, True),
        "mean": ("mean", 0.0, True),
        "mean+penalty": ("mean", 1.0, True),
    }
    aps: dict[str, list[float]] = {m: [] for m in methods}
    r1: dict[str, list[float]] = {m: [] for m in methods}
    first = {k: i for i, k in reversed(list(enumerate(keys)))}
    confirmed = rejected = 0
    for key, qi in first.items():
        others = np.array([i for i in range(len(keys)) if i != qi])
        plain = vecs[others] @ vecs[qi]
        top = others[np.argsort(-plain, kind="stable")[:labelled]]
        pos = vecs[[i for i in top if keys[i] == key]]
        neg = vecs[[i for i in top if keys[i] != key]]
        rest = np.array([i for i in others if i not in set(top.tolist())])
        relevant = keys[rest] == key
        if not relevant.any():
            continue  # every match already labelled: nothing left to find
        confirmed, rejected = confirmed + len(pos), rejected + len(neg)
        for name, (fusion, weight, use_feedback) in methods.items():
            p = pos if use_feedback else pos[:0]
            n = neg if use_feedback else neg[:0]
            s = rescore(vecs[qi], vecs[rest], p, n, fusion, weight)
            aps[name].append(average_precision(s, relevant))
            r1[name].append(float(relevant[int(np.argmax(s))]))
    count = len(aps["plain"])
    print(f"\n{len(keys)} crops, {len(first)} identities; {count} queries with unlabelled matches")
    print(
        f"operator labels the top {labelled} of the plain search "
        f"({confirmed} confirmed, {rejected} rejected in all); scored on the rest"
    )
    print(f"{'method':<14} {'mAP':>7} {'rank-1':>7}")
    for name in methods:
        print(f"{name:<14} {np.mean(aps[name]):7.3f} {np.mean(r1[name]):7.3f}")


if __name__ == "__main__":
    main()
