"""How to label a query crop without a 640 px detection: accuracy and ms per crop.

A search by example without --label picks the embedding space (person or general) from
the label the detector gives the crop. This prints, for each way of deciding, how often
the space (and the label) is right on labelled crops from the shared data, and how long
the decision takes per crop on this machine:

- persons: MOT17-mini pedestrians (gt class 1, consider=1, visibility >= 0.5, at least
  40 px tall), one crop per identity (its most visible frame), plus the two Market-1501
  query crops;
- vehicles: every UA-DETRAC MVI_20011 box of frames 1-9 and every MOT17-mini car
  (gt class 3, visibility >= 0.5), at least 24 px on each side; the right label is 'car';
- background: random patches of MOT17 first frames touching no ground-truth box of any
  class, where the right answer is the general space (any non-person label, or none).

Ways of deciding: YOLO at 640 px (today: detector.confidence 0.35), the same at the
crop confidence floor, YOLO at smaller inputs (the same int8 ONNX weights, the graph's
size constants rewritten: surveil/vision/onnx_resize.py), the crop's aspect ratio alone,
and the aspect ratio with a small YOLO check. The ImageNet classifier of the general
embedder is not a candidate: its bundled weights carry no classifier head.

Times are per crop, the fastest of --repeat passes over every crop (the machine may be
shared), after one warm-up call.

    .venv/bin/python benchmarks/bench_crop_label.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_min_score import MARKET, MOT, detrac_vehicles
from bench_min_score import _cut as padded_cut

from surveil.config import DetectorSettings, LoggingSettings
from surveil.domain import Image
from surveil.logs import configure_logging
from surveil.search.by_example import crop_label
from surveil.vision.crops import read_image
from surveil.vision.device import choose_device
from surveil.vision.yolo import CROP_CONFIDENCE, YoloDetector

REPO = Path(__file__).resolve().parent.parent
MODEL = "models/yolov8n_int8_dynamic.onnx"
VEHICLE_LABELS = frozenset({"car", "truck", "bus", "motorcycle", "bicycle"})
#: Height/width at or above which the aspect rules call a crop a standing person.
TALL = 1.5

Box = tuple[float, float, float, float]
Labeller = Callable[[Image], str | None]


@dataclass(frozen=True, slots=True)
class Sample:
    """One labelled crop: 'person', 'car' or 'background', and the object it shows."""

    truth: str
    key: str
    image: Image


def _cut(image: Image, box: Box) -> Image:
    """The box exactly, as an operator's tight crop (no ingest padding)."""
    return padded_cut(image, box, 0.0)


def _mot_rows(seq: Path) -> list[tuple[int, int, int, Box, float]]:
    """(frame, id, class, box, visibility) of a MOT17 gt.txt; persons need consider=1."""
    rows = []
    for line in (seq / "gt" / "gt.txt").read_text().splitlines():
        f, tid, x, y, w, h, consider, cls, vis = line.split(",")[:9]
        if int(cls) == 1 and int(consider) != 1:
            continue
        box = (float(x), float(y), float(x) + float(w), float(y) + float(h))
        rows.append((int(f), int(tid), int(cls), box, float(vis)))
    return rows


def _all_boxes(seq: Path) -> dict[int, list[Box]]:
    """Every ground-truth box (any class, any flag) per frame: what background must avoid."""
    out: dict[int, list[Box]] = defaultdict(list)
    for line in (seq / "gt" / "gt.txt").read_text().splitlines():
        f, _, x, y, w, h = line.split(",")[:6]
        out[int(f)].append((float(x), float(y), float(x) + float(w), float(y) + float(h)))
    return out


def _big_enough(box: Box, min_side: float) -> bool:
    return min(box[2] - box[0], box[3] - box[1]) >= min_side


def mot_samples(data: Path) -> list[Sample]:
    """One crop per MOT17 pedestrian (its most visible frame) and every visible car box."""
    out: list[Sample] = []
    for seq in sorted((data / MOT).iterdir()):
        frames = {int(p.stem): p for p in (seq / "img1").glob("*.jpg")}
        best: dict[int, tuple[float, int, Box]] = {}
        cars: list[tuple[int, int, Box]] = []
        for f, tid, cls, box, vis in _mot_rows(seq):
            if f not in frames or vis < 0.5:
                continue
            if cls == 1 and box[3] - box[1] >= 40 and vis > best.get(tid, (-1.0, 0, box))[0]:
                best[tid] = (vis, f, box)
            elif cls == 3 and _big_enough(box, 24):
                cars.append((f, tid, box))
        images = {f: read_image(p) for f, p in frames.items()}
        for tid, (_, f, box) in sorted(best.items()):
            out.append(Sample("person", f"{seq.name}:{tid}", _cut(images[f], box)))
        for f, tid, box in cars:
            out.append(Sample("car", f"{seq.name}:car{tid}", _cut(images[f], box)))
    return out


def detrac_samples(data: Path) -> list[Sample]:
    """Every UA-DETRAC box of frames 1-9 at least 24 px on each side (no padding)."""
    return [
        Sample("car", f"detrac:{key.removeprefix('car:')}", crop)
        for key, _frame, crop in detrac_vehicles(data, 0.0)
    ]


def market_samples(data: Path) -> list[Sample]:
    """The two Market-1501 query crops (64x128) of identity 0001."""
    return [
        Sample("person", "market:0001", read_image(p)) for p in sorted((data / MARKET).glob("*"))
    ]


def _touches(box: Box, others: Sequence[Box]) -> bool:
    return any(box[0] < o[2] and o[0] < box[2] and box[1] < o[3] and o[1] < box[3] for o in others)


def background_samples(data: Path, per_sequence: int, seed: int) -> list[Sample]:
    """Random patches (40-160 px wide, 0.5-3x as tall) of first frames, off every gt box."""
    rng = np.random.default_rng(seed)
    out: list[Sample] = []
    for seq in sorted((data / MOT).iterdir()):
        image = read_image(seq / "img1" / "000001.jpg")
        boxes = _all_boxes(seq)[1]
        h, w = image.shape[:2]
        found, tries = 0, 0
        while found < per_sequence and tries < 2000:
            tries += 1
            bw = float(rng.uniform(40, 160))
            bh = min(bw * float(rng.uniform(0.5, 3.0)), h - 1.0)
            x, y = float(rng.uniform(0, w - bw)), float(rng.uniform(0, h - bh))
            box = (x, y, x + bw, y + bh)
            if not _touches(box, boxes):
                out.append(Sample("background", f"{seq.name}:bg{found}", _cut(image, box)))
                found += 1
    return out


def aspect_only(image: Image) -> str | None:
    """Tall crops are persons; everything else goes to the general space unlabelled."""
    h, w = image.shape[:2]
    return "person" if h >= TALL * w else None


def aspect_then(check: Labeller) -> Labeller:
    """Tall crops are persons outright; the rest are asked of the fast check."""

    def label(image: Image) -> str | None:
        h, w = image.shape[:2]
        return "person" if h >= TALL * w else check(image)

    return label


def check_then_aspect(check: Labeller) -> Labeller:
    """The fast check decides; where it finds nothing, a tall crop is taken for a person."""

    def label(image: Image) -> str | None:
        return check(image) or aspect_only(image)

    return label


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one way of deciding gave on every sample, and its time per crop."""

    name: str
    labels: list[str | None]
    ms: list[float]


def run(name: str, labeller: Labeller, samples: Sequence[Sample], repeat: int) -> Outcome:
    """Label every sample `repeat` times (after one warm-up call); each crop's best time."""
    labeller(samples[0].image)
    labels: list[str | None] = []
    ms = [float("inf")] * len(samples)
    for _ in range(repeat):
        labels = []
        for i, sample in enumerate(samples):
            start = time.perf_counter()
            labels.append(labeller(sample.image))
            ms[i] = min(ms[i], (time.perf_counter() - start) * 1000)
    return Outcome(name, labels, ms)


def _space_right(truth: str, label: str | None) -> bool:
    return (label == "person") == (truth == "person")


def _label_right(truth: str, label: str | None) -> bool:
    if truth == "background":
        return label is None or label != "person"
    return label == truth


def _share(hits: Sequence[bool]) -> str:
    return f"{sum(hits)}/{len(hits)}" if hits else "-"


def table(samples: Sequence[Sample], outcomes: Sequence[Outcome]) -> None:
    """Print space and label accuracy per group, and ms per crop (median, p90)."""
    groups = ("person", "car", "background")
    header = ["method"]
    header += [f"{g} space" for g in groups] + ["all space", "car label", "vehicle label"]
    header += ["ms median", "ms p90"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for out in outcomes:
        pairs = list(zip((s.truth for s in samples), out.labels, strict=True))
        cells = [out.name]
        cells += [_share([_space_right(t, lb) for t, lb in pairs if t == g]) for g in groups]
        cells.append(_share([_space_right(t, lb) for t, lb in pairs]))
        cells.append(_share([_label_right(t, lb) for t, lb in pairs if t == "car"]))
        cells.append(_share([lb in VEHICLE_LABELS for t, lb in pairs if t == "car"]))
        p90 = float(np.percentile(out.ms, 90))
        cells += [f"{statistics.median(out.ms):.1f}", f"{p90:.1f}"]
        print("| " + " | ".join(cells) + " |")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options; the defaults measure every candidate on every sample crop."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=REPO.parent / "shared" / "data",
        help="shared test data directory (default: ../shared/data from the repo root)",
    )
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[320, 256, 224, 192, 160, 128],
        help="small YOLO input sizes to try (multiples of 32)",
    )
    parser.add_argument(
        "--check-size", type=int, default=160, help="YOLO size of the aspect-ratio rules' check"
    )
    parser.add_argument(
        "--crop-confidence",
        type=float,
        default=CROP_CONFIDENCE,
        help=f"confidence floor of the small YOLO runs (default: surveil's {CROP_CONFIDENCE})",
    )
    parser.add_argument("--repeat", type=int, default=2, help="timed passes over every crop")
    parser.add_argument("--background", type=int, default=5, help="patches per MOT17 sequence")
    parser.add_argument("--seed", type=int, default=0, help="seed of the background patches")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    return parser.parse_args(argv)


def samples_from(data: Path, background: int, seed: int) -> list[Sample]:
    """Every labelled crop, persons first."""
    if not (data / MODEL).is_file():
        raise SystemExit(f"no detector at {data / MODEL}: pass --data DIR (see --help)")
    found = mot_samples(data) + detrac_samples(data) + market_samples(data)
    found += background_samples(data, background, seed)
    return sorted(found, key=lambda s: ("person", "car", "background").index(s.truth))


def main(argv: Sequence[str] | None = None) -> None:
    """Measure, print, exit."""
    configure_logging(LoggingSettings(level="WARNING"))  # figures on stdout, no chatter
    args = parse_args(argv)
    samples = samples_from(args.data, args.background, args.seed)
    plan = choose_device(args.device, None)
    today = DetectorSettings(weights=str(args.data / MODEL))
    floor = args.crop_confidence

    def yolo(size: int, conf: float) -> YoloDetector:
        settings = today.model_copy(update={"confidence": max(conf, today.confidence)})
        return YoloDetector(
            settings, weights=today.weights, device=plan, crop_image_size=size, crop_confidence=conf
        )

    def full(conf: float) -> Labeller:
        detector = YoloDetector(
            today.model_copy(update={"confidence": conf}), weights=today.weights, device=plan
        )
        return lambda image: crop_label(detector.detect([image])[0], image)

    def small(size: int, conf: float) -> Labeller:
        detector = yolo(size, conf)
        return lambda image: crop_label(detector.detect_crop(image), image)

    counts = {t: sum(s.truth == t for s in samples) for t in ("person", "car", "background")}
    objects = {t: len({s.key for s in samples if s.truth == t}) for t in counts}
    print(f"device {plan.torch_device}; crops {counts}; distinct objects {objects}")
    size, conf = today.image_size, today.confidence
    candidates: list[tuple[str, Labeller]] = [
        (f"YOLO {size} px, conf {conf} (today)", full(conf)),
        (f"YOLO {size} px, conf {floor}", full(floor)),
        (f"YOLO {args.check_size} px, conf {conf}", small(args.check_size, conf)),
    ]
    candidates += [(f"YOLO {s} px, conf {floor}", small(s, floor)) for s in args.sizes]
    check = small(args.check_size, floor)
    candidates += [
        (f"aspect h/w >= {TALL} alone", aspect_only),
        (f"aspect, else YOLO {args.check_size} px", aspect_then(check)),
        (f"YOLO {args.check_size} px, else aspect", check_then_aspect(check)),
    ]
    table(samples, [run(name, labeller, samples, args.repeat) for name, labeller in candidates])


if __name__ == "__main__":
    main()
