"""Print detector images/s and embedder crops/s on real frames from the shared test data.

Run from the repository root:  .venv/bin/python benchmarks/bench_detector.py --frames 32
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from surveil.config import DetectorSettings, EmbeddersSettings, LoggingSettings
from surveil.domain import Image, Space
from surveil.logs import configure_logging
from surveil.vision.crops import cut_crops
from surveil.vision.detector import MotionDetector, YoloDetector
from surveil.vision.device import DevicePlan, choose_device
from surveil.vision.embedder import build_embedder

REPO = Path(__file__).resolve().parent.parent
VIDEOS = (
    "videos/intel_sample_videos/one-by-one-person-detection.mp4",
    "videos/ua_detrac_evadb/ua_detrac.mp4",
)
BATCHES = (1, 16, 64)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options; defaults measure the offline models on this machine."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=REPO.parent / "shared" / "data",
        help="shared test data directory (default: ../shared/data from the repo root)",
    )
    parser.add_argument("--frames", type=int, default=32, help="frames read from each video")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--batch", type=int, default=8, help="detector batch size")
    parser.add_argument("--image-size", type=int, default=640, help="detector inference size")
    parser.add_argument("--crops", type=int, default=128, help="crops embedded per batch size")
    return parser.parse_args(argv)


def read_frames(path: Path, count: int) -> list[Image]:
    """The first `count` decoded frames of a video."""
    cap = cv2.VideoCapture(str(path))
    frames: list[Image] = []
    while len(frames) < count:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(np.asarray(image, dtype=np.uint8))
    cap.release()
    if not frames:
        raise SystemExit(f"no frames could be read from {path}")
    return frames


def rate(items: int, run: Callable[[], object], repeats: int = 1) -> float:
    """Items per second of `run`, best of `repeats` (the first call is a warm-up)."""
    run()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return items / best


def bench_detectors(args: argparse.Namespace, plan: DevicePlan) -> list[Image]:
    """Print YOLO and motion images/s per video; return person-ish crops for embedding."""
    settings = DetectorSettings(
        weights=str(args.data / "models" / "yolov8n_int8_dynamic.onnx"),
        batch_size=args.batch,
        image_size=args.image_size,
    )
    yolo = YoloDetector(settings, weights=settings.weights, device=plan)
    crops: list[Image] = []
    for video in VIDEOS:
        frames = read_frames(args.data / video, args.frames)
        h, w = frames[0].shape[:2]
        fps = rate(len(frames), partial(yolo.detect, frames))
        motion = rate(len(frames), partial(MotionDetector().detect, frames))
        found = yolo.detect(frames)
        boxes = sum(len(d) for d in found)
        print(
            f"{video} ({len(frames)} frames {w}x{h}): yolo {fps:6.1f} img/s "
            f"({boxes} boxes), motion {motion:6.1f} img/s"
        )
        for frame, dets in zip(frames, found, strict=True):
            crops.extend(c.image for c in cut_crops(frame, dets, padding=0.1, min_size=16))
    return crops


def bench_embedders(args: argparse.Namespace, plan: DevicePlan, crops: list[Image]) -> None:
    """Print crops/s of both embedders at several batch sizes on real detector crops."""
    pool = (crops * (args.crops // max(len(crops), 1) + 1))[: args.crops]
    spaces: tuple[Space, ...] = ("person", "general")
    defaults = EmbeddersSettings()
    for space in spaces:
        base = defaults.person if space == "person" else defaults.general
        for batch in BATCHES:
            settings = base.model_copy(update={"batch_size": batch})
            embedder = build_embedder(space, settings, model_dir=args.data / "models", device=plan)
            speed = rate(len(pool), partial(embedder.embed, pool))
            print(f"embedder {embedder.model_id:45s} batch {batch:3d}: {speed:7.1f} crops/s")


def main(argv: Sequence[str] | None = None) -> None:
    """Measure, print, exit."""
    configure_logging(LoggingSettings(level="WARNING"))  # figures on stdout, no chatter
    args = parse_args(argv)
    plan = choose_device(args.device, None)
    print(f"device {plan.torch_device} half={plan.half} onnx={plan.onnx_providers}")
    crops = bench_detectors(args, plan)
    print(f"{len(crops)} real crops from the detector")
    bench_embedders(args, plan, crops)


if __name__ == "__main__":
    main()
