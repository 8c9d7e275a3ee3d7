"""Site-tuned person embedder: rank-1 and mAP on held-out identities, before and after.

Trains `surveil embedder tune`'s loop on MOT17-mini ground-truth pedestrians of some
sequences and scores sequences never seen in training (every crop queries the rest,
same-frame crops skipped), plus the Market-1501 cross-camera pair of identity 0001
(each of its two crops queries a gallery of the other one and every held-out MOT crop).
CPU only, as on a site without a GPU.

    .venv/bin/python benchmarks/bench_tune.py --data ../shared/data --epochs 8
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from surveil.config import EmbeddersSettings
from surveil.vision.crops import read_image
from surveil.vision.device import choose_device
from surveil.vision.embedder import OnnxEmbedder
from surveil.vision.tune.data import TrainingSet, from_mot
from surveil.vision.tune.run import tune_embedder
from surveil.vision.tune.train import TuneOptions

MOT = "mot/MOT17-mini/train"
MARKET = "reid/market1501_person_search_demo/query"
TRAIN = ("04", "05", "10", "13")
HELD_OUT = ("02", "09", "11")


def _sequences(data: Path, names: tuple[str, ...]) -> list[Path]:
    return [data / MOT / f"MOT17-{n}-FRCNN" for n in names]


def market_pair(
    embedder: OnnxEmbedder, data: Path, distractors: TrainingSet
) -> tuple[float, float]:
    """(rank-1, mAP) of the two 0001 crops finding each other among held-out people."""
    pair = embedder.embed([read_image(p) for p in sorted((data / MARKET).glob("0001_*.jpg"))])
    others = embedder.embed(distractors.crops)
    ranks = []
    for q in (0, 1):
        partner = float(pair[q] @ pair[1 - q])
        ranks.append(1 + int((others @ pair[q] > partner).sum()))
    return float(np.mean([r == 1 for r in ranks])), float(np.mean([1 / r for r in ranks]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--epochs", type=int, default=TuneOptions.epochs)
    parser.add_argument("--lr", type=float, default=TuneOptions.lr)
    parser.add_argument("--keep-weight", type=float, default=TuneOptions.keep_weight)
    parser.add_argument("--train-from", default=TuneOptions.train_from)
    parser.add_argument("--margin", type=float, default=TuneOptions.margin)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    settings = EmbeddersSettings().person
    weights = args.data / "models" / (settings.weights or "osnet_x0_25_msmt17.onnx")
    train_set = from_mot(_sequences(args.data, TRAIN))
    held_out = from_mot(_sequences(args.data, HELD_OUT))
    print(f"train: {len(train_set.crops)} crops, {train_set.identities} identities ({TRAIN})")
    print(f"held out: {len(held_out.crops)} crops, {held_out.identities} identities ({HELD_OUT})")
    options = TuneOptions(
        epochs=args.epochs, lr=args.lr, keep_weight=args.keep_weight,
        train_from=args.train_from, seed=args.seed, margin=args.margin,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "osnet_tuned.onnx"
        started = time.perf_counter()
        report = tune_embedder(
            space="person", settings=settings, weights=weights, data=train_set,
            options=options, out=out, held_out=held_out,
        )  # fmt: skip
        wall = time.perf_counter() - started
        plan = choose_device("cpu", None)
        base = OnnxEmbedder("person", settings, weights=weights, device=plan)
        tuned = OnnxEmbedder("person", settings, weights=out, device=plan)
        m_before = market_pair(base, args.data, held_out)
        m_after = market_pair(tuned, args.data, held_out)
    r = report.result
    print(f"options: {options}")
    print(
        f"training: {r.steps} steps ({r.epochs} epochs) in {r.seconds} s, run {wall:.0f} s "
        f"wall; loss {r.first_loss} -> {r.last_loss}"
    )
    assert report.before is not None and report.after is not None
    print("| set | metric | original | tuned |")
    print("|---|---|---|---|")
    b, a = report.before, report.after
    print(f"| MOT17-mini held out ({b.queries} queries) | rank-1 | {b.rank1:.3f} | {a.rank1:.3f} |")
    print(
        f"| MOT17-mini held out ({b.queries} queries) | mAP | {b.mean_ap:.3f} | {a.mean_ap:.3f} |"
    )
    print(
        f"| Market 0001 pair vs held-out people | rank-1 | {m_before[0]:.3f} | {m_after[0]:.3f} |"
    )
    print(
        f"| MOT17-mini held out (pairs) | recall at 1% false | {b.recall_at_1pct:.3f} "
        f"| {a.recall_at_1pct:.3f} |"
    )
    print(f"| Market 0001 pair vs held-out people | mAP | {m_before[1]:.3f} | {m_after[1]:.3f} |")


if __name__ == "__main__":
    main()
