"""Reusing an unmoved box's embedding is only sound if recomputing it would agree."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from surveil.config import DetectorSettings, GeneralEmbedderSettings
from surveil.ingest.reuse import static_matches
from surveil.ingest.sources import open_source
from surveil.vision.crops import cut_crops
from surveil.vision.detector import build_detector
from surveil.vision.device import choose_device
from surveil.vision.embedder import build_embedder


def test_reused_embeddings_match_recomputed_ones(models_dir: Path, shared_data: Path) -> None:
    device = choose_device("cpu", None)
    detector = build_detector(
        DetectorSettings(weights=str(models_dir / "yolov8n_int8_dynamic.onnx")),
        model_dir=models_dir,
        device=device,
    )
    embedder = build_embedder(
        "general", GeneralEmbedderSettings(), model_dir=models_dir, device=device
    )
    source = open_source(
        str(shared_data / "videos/ua_detrac_evadb/ua_detrac.mp4"),
        camera_id="x",
        start=datetime(2026, 1, 1, tzinfo=UTC),
    )
    try:
        frames = [f.image for f, _ in zip(source.frames(), range(6), strict=False)][::2]
    finally:
        source.close()
    crops = [
        [c for c in cut_crops(img, det, padding=0.1, min_size=16) if c.label != "person"]
        for img, det in zip(frames, detector.detect(frames), strict=True)
    ]
    pairs = 0
    for prev, cur in itertools.pairwise(crops):
        matches = static_matches(prev, cur, min_iou=0.9)
        kept = [(n, m) for n, m in enumerate(matches) if m is not None]
        if not kept:
            continue
        fresh = embedder.embed([cur[n].image for n, _ in kept])
        reused = embedder.embed([prev[m].image for _, m in kept])
        cosine = np.sum(fresh * reused, axis=1)
        assert cosine.min() >= 0.9, cosine
        pairs += len(kept)
    assert pairs >= 5, "the busy intersection should have parked or queued vehicles"
