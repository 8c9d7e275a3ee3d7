"""Same-object vs different-object similarity per embedding space: the default min_score.

Ground-truth boxes are cut (with ingest's crop padding) and embedded by the real models:
- person space (OSNet x0.25): MOT17-mini pedestrians (consider=1, visibility >= 0.3,
  at least 40 px tall); same object = same sequence and identity in another frame;
- general space (MobileNetV2): UA-DETRAC MVI_20011 frames 1-9 vehicles (at least 24 px);
  same object = same track id in another frame;
- the two Market-1501 crops of identity 0001 (camera 1 and camera 6), a cross-camera pair.

For each space it prints the score distributions, then for thresholds the share of
same-object pairs kept (recall) and of different-object pairs let through (false
matches), crop to crop. A search scores tracks, so it then scores each crop against every
object's track (its other crops): pooled vector, best member, and the better of the two
(what the search uses). The default `search.min_score_by_space` is the lowest threshold
at which at most 1% of other objects' tracks score that high, with the search's scoring.

    .venv/bin/python benchmarks/bench_min_score.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import csv
import itertools
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import _settings

from surveil.container import build_services
from surveil.domain import Image, Space
from surveil.vision.crops import read_image

MOT = "mot/MOT17-mini/train"
DETRAC = "mot/UA-DETRAC_MVI_20011_first9"
MARKET = "reid/market1501_person_search_demo/query"
#: Share of different-object pairs a default threshold may let through.
FALSE_MATCH_BUDGET = 0.01

#: (group key, frame, crop) — the group key names one object.
Sample = tuple[str, int, Image]


def _cut(image: Image, box: tuple[float, float, float, float], padding: float) -> Image:
    x1, y1, x2, y2 = box
    px, py = (x2 - x1) * padding, (y2 - y1) * padding
    h, w = image.shape[:2]
    left, top = max(0, int(x1 - px)), max(0, int(y1 - py))
    right, bottom = min(w, int(x2 + px)), min(h, int(y2 + py))
    return image[top:bottom, left:right].copy()


def mot_people(data: Path, padding: float) -> list[Sample]:
    """Pedestrian crops of every MOT17-mini sequence, keyed by sequence and identity."""
    out: list[Sample] = []
    for seq in sorted((data / MOT).iterdir()):
        boxes: dict[int, list[tuple[int, tuple[float, float, float, float]]]] = defaultdict(list)
        for line in (seq / "gt" / "gt.txt").read_text().splitlines():
            f, tid, x, y, w, h, consider, cls, vis = line.split(",")[:9]
            keep = int(consider) == 1 and int(cls) == 1 and float(vis) >= 0.3
            if keep and float(h) >= 40:
                box = (float(x), float(y), float(x) + float(w), float(y) + float(h))
                boxes[int(f)].append((int(tid), box))
        for path in sorted((seq / "img1").glob("*.jpg")):
            image = read_image(path)
            for ident, box in boxes.get(int(path.stem), []):
                out.append((f"{seq.name}:{ident}", int(path.stem), _cut(image, box, padding)))
    return out


def detrac_vehicles(data: Path, padding: float) -> list[Sample]:
    """Vehicle crops of UA-DETRAC frames 1-9, keyed by track id."""
    root = data / DETRAC
    images = {int(p.stem[3:]): read_image(p) for p in sorted((root / "img").glob("*.jpg"))}
    out: list[Sample] = []
    with (root / "gt_frames1-9_derived.csv").open() as fh:
        for row in csv.DictReader(fh):
            x, y = float(row["left"]), float(row["top"])
            w, h = float(row["width"]), float(row["height"])
            frame = int(row["frame"])
            if min(w, h) >= 24 and frame in images:
                crop = _cut(images[frame], (x, y, x + w, y + h), padding)
                out.append((f"car:{row['track_id']}", frame, crop))
    return out


def pair_scores(keys: list[str], frames: list[int], vecs: np.ndarray) -> tuple[list[float], ...]:
    """Cosine of every pair: (same object in two frames, two different objects)."""
    sims = vecs @ vecs.T
    same, other = [], []
    for i, j in itertools.combinations(range(len(keys)), 2):
        if keys[i] == keys[j] and frames[i] != frames[j]:
            same.append(float(sims[i, j]))
        elif keys[i] != keys[j]:
            other.append(float(sims[i, j]))
    return same, other


Scores = dict[str, tuple[list[float], list[float]]]


def track_scores(keys: list[str], vecs: np.ndarray) -> Scores:
    """A crop against whole tracks (every other crop of each object, pooled or best member).

    A search scores tracks, not crops: a stranger's track of 50 crops has 50 chances to
    look like the query, so the best-member score of strangers runs higher than the
    crop-to-crop one. Returns, per scoring, (same-object scores, other-object scores).
    """
    by_key: dict[str, list[int]] = defaultdict(list)
    for i, k in enumerate(keys):
        by_key[k].append(i)
    sims = vecs @ vecs.T
    out: Scores = {
        "pooled": ([], []),
        "best member": ([], []),
        "max of both": ([], []),
    }
    for qi, qk in enumerate(keys):
        for key, members in by_key.items():
            rest = [m for m in members if m != qi]
            if not rest:
                continue
            pooled = vecs[rest].mean(0)
            pooled_score = float(pooled @ vecs[qi]) / float(np.linalg.norm(pooled))
            best = float(sims[qi, rest].max())
            side = 0 if key == qk else 1
            for name, value in (
                ("pooled", pooled_score),
                ("best member", best),
                ("max of both", max(pooled_score, best)),
            ):
                out[name][side].append(value)
    return out


def _at_budget(same: np.ndarray, other: np.ndarray) -> tuple[float, float]:
    grid = np.round(np.arange(0.0, 1.0, 0.01), 2)
    chosen = float(next(t for t in grid if np.mean(other >= t) <= FALSE_MATCH_BUDGET))
    return chosen, float(np.mean(same >= chosen))


def _auc(same: np.ndarray, other: np.ndarray, rng: np.random.Generator) -> float:
    """P(a same-object score beats an other-object one), on a sample of at most 20k each."""
    s = rng.choice(same, min(len(same), 20_000), replace=False)
    o = rng.choice(other, min(len(other), 20_000), replace=False)
    return float(np.mean(s[:, None] > o[None, :]))


def report_tracks(space: Space, scores: Scores) -> float:
    """Crop-to-track scorings side by side; returns the search's own ("max of both") floor."""
    rng = np.random.default_rng(0)
    print(f"  {space}, a crop against tracks ({len(scores['pooled'][0])} same-object queries):")
    for name, (same, other) in scores.items():
        s, o = np.array(same), np.array(other)
        auc = _auc(s, o, rng)
        t, kept = _at_budget(s, o)
        print(
            f"    {name:<12} threshold {t:.2f} keeps {kept:.3f} of same-object tracks; "
            f"AUC {auc:.4f}; other p99 {np.percentile(o, 99):.3f}"
        )
    same, other = scores["max of both"]
    return _at_budget(np.array(same), np.array(other))[0]


def report(space: Space, same: list[float], other: list[float]) -> float:
    """Print distributions and the threshold table; return the calibrated default."""
    s, o = np.array(same), np.array(other)
    q = [1, 5, 25, 50, 75, 95, 99]
    print(f"\n== {space}: {len(s)} same-object pairs, {len(o)} different-object pairs")
    print("  percentile      " + "  ".join(f"p{p:<4}" for p in q))
    print("  same object     " + "  ".join(f"{np.percentile(s, p):.3f}" for p in q))
    print("  other objects   " + "  ".join(f"{np.percentile(o, p):.3f}" for p in q))
    print("  threshold  kept same  let through other")
    for t in np.arange(0.3, 0.95, 0.05):
        print(f"  {t:9.2f}  {np.mean(s >= t):9.3f}  {np.mean(o >= t):17.4f}")
    chosen, _kept = _at_budget(s, o)
    print(
        f"  -> lowest threshold letting <= {FALSE_MATCH_BUDGET:.0%} of other objects through: "
        f"{chosen:.2f} (keeps {np.mean(s >= chosen):.3f} of same-object pairs)"
    )
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    args = parser.parse_args()
    data = args.data.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        services = build_services(_settings(Path(tmp), data, None))
        padding = services.settings.crops.padding
        chosen: dict[str, float] = {}
        spaces: list[tuple[Space, list[Sample]]] = [
            ("person", mot_people(data, padding)),
            ("general", detrac_vehicles(data, padding)),
        ]
        for space, samples in spaces:
            keys, frames, crops = zip(*samples, strict=True)
            vecs = np.asarray(services.embedder(space).embed(list(crops)), np.float32)
            same, other = pair_scores(list(keys), list(frames), vecs)
            report(space, same, other)
            chosen[space] = report_tracks(space, track_scores(list(keys), vecs))
        market = [read_image(p) for p in sorted((data / MARKET).glob("*.jpg"))]
        a, b = services.embedder("person").embed(market)
        print(f"\n== Market-1501 identity 0001, camera 1 vs camera 6: cosine {float(a @ b):.3f}")
        print(f"\ncalibrated search.min_score_by_space: {chosen}")


if __name__ == "__main__":
    main()
