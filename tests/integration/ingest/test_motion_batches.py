"""Live batches mix cameras: the motion fallback must compare each camera with itself only."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from surveil.config import Settings
from surveil.container import Services, build_services
from surveil.domain import Frame, Image, Keyframe
from surveil.vision.motion import MotionDetector

WALKER = "videos/intel_sample_videos/one-by-one-person-detection.mp4"
TRAFFIC = "videos/ua_detrac_evadb/ua_detrac.mp4"
pytestmark = pytest.mark.slow

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _frames(path: Path, indices: list[int]) -> list[Image]:
    cap = cv2.VideoCapture(str(path))
    out: dict[int, Image] = {}
    for index in range(max(indices) + 1):
        ok, image = cap.read()
        assert ok
        if index in indices:
            out[index] = np.asarray(image, dtype=np.uint8)
    cap.release()
    return [out[i] for i in indices]


def _keyframes(camera: str, images: list[Image]) -> list[Keyframe]:
    return [
        Keyframe(Frame(camera, n, T0 + timedelta(seconds=n), img), "all")
        for n, img in enumerate(images)
    ]


def _boxes(services: Services, batches: list[list[Keyframe]]) -> dict[str, list[Any]]:
    """Per camera, the boxes of each keyframe, prepared batch by batch as live ingest does."""
    detector = services.detector()
    assert isinstance(detector, MotionDetector)
    detector.reset()  # every run starts with no camera seen
    pipeline = services.ingest_pipeline()
    out: dict[str, list[Any]] = {}
    for batch in batches:
        ids = [1 if k.frame.camera_id == "lobby" else 2 for k in batch]
        prepared = pipeline.prepare(batch, ids)
        pipeline.discard(prepared)
        for row in prepared.rows:
            boxes = sorted(tuple(round(v, 1) for v in a.bbox) for a in row.appearances)
            out.setdefault(row.camera_id, []).append(boxes)
    pipeline.close()
    return out


def test_interleaved_cameras_in_one_batch_get_the_boxes_each_gets_alone(
    make_settings: Callable[..., Settings], models_dir: Path, shared_data: Path
) -> None:
    settings = make_settings(**{"model_dir": str(models_dir), "detector.backend": "motion"})
    lobby = _keyframes("lobby", _frames(shared_data / WALKER, [170, 175, 180, 185]))
    gate = _keyframes("gate", _frames(shared_data / TRAFFIC, [0, 3, 6, 9]))
    services = build_services(settings)
    try:
        alone = _boxes(services, [lobby]) | _boxes(services, [gate])
        assert any(alone["lobby"]) and any(alone["gate"])
        mixed = [k for pair in zip(lobby, gate, strict=True) for k in pair]
        assert _boxes(services, [mixed[:3], mixed[3:]]) == alone
    finally:
        services.close()
