"""Keyframe selection: pure functions on synthetic arrays, the selector on real video."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from surveil.config import KeyframeSettings
from surveil.domain import Frame, Image
from surveil.ingest.keyframes import (
    KeyframeSelector,
    colour_histogram,
    downscale,
    histogram_distance,
    motion_fraction,
    small_grey,
)
from surveil.ingest.sources import open_source

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def scene(colour: tuple[int, int, int] = (90, 110, 130), box_x: int | None = None) -> Image:
    """A 640x360 flat scene, optionally with a white 80x80 'object' at x=box_x."""
    image = np.empty((360, 640, 3), np.uint8)
    image[:] = colour
    if box_x is not None:
        image[140:220, box_x : box_x + 80] = 255
    return image


def frame(index: int, image: Image, fps: float = 10.0) -> Frame:
    return Frame(camera_id="cam", index=index, ts=T0 + timedelta(seconds=index / fps), image=image)


def test_small_grey_is_downscaled_single_channel() -> None:
    grey = small_grey(scene(), 160)
    assert grey.shape == (90, 160)
    assert grey.dtype == np.uint8


def test_downscale_keeps_small_images_as_they_are() -> None:
    image = scene()[:50, :100]
    assert downscale(image, 160) is image


def test_motion_fraction_identical_is_zero() -> None:
    grey = small_grey(scene(box_x=100), 160)
    assert motion_fraction(grey, grey.copy(), 25) == 0.0


def test_motion_fraction_sees_a_moved_object() -> None:
    before = small_grey(scene(box_x=100), 160)
    after = small_grey(scene(box_x=300), 160)
    fraction = motion_fraction(before, after, 25)
    # Two 20x20 squares at analysis scale out of 160x90 change: ~5% of the pixels.
    assert 0.02 < fraction < 0.2


def test_motion_fraction_rejects_different_shapes() -> None:
    with pytest.raises(ValueError, match="shapes"):
        motion_fraction(np.zeros((9, 16), np.uint8), np.zeros((10, 16), np.uint8), 25)


def test_histogram_distance_same_scene_is_zero_and_different_scenes_high() -> None:
    a = colour_histogram(downscale(scene((20, 40, 200)), 160))
    b = colour_histogram(downscale(scene((20, 40, 200)), 160))
    c = colour_histogram(downscale(scene((200, 120, 10)), 160))
    assert histogram_distance(a, b) == pytest.approx(0.0, abs=1e-6)
    assert histogram_distance(a, c) > 0.9
    assert 0.0 <= histogram_distance(a, c) <= 1.0


def test_selector_keeps_the_first_frame() -> None:
    selector = KeyframeSelector(KeyframeSettings())
    kept = selector.consider(frame(0, scene()))
    assert kept is not None
    assert kept.reason == "first"


def test_static_scene_only_heartbeats() -> None:
    selector = KeyframeSelector(KeyframeSettings(heartbeat_seconds=5.0))
    image = scene(box_x=200)
    kept = [k for i in range(121) if (k := selector.consider(frame(i, image))) is not None]
    assert [(k.frame.index, k.reason) for k in kept] == [
        (0, "first"),
        (50, "heartbeat"),
        (100, "heartbeat"),
    ]


def test_a_change_is_kept_as_motion() -> None:
    selector = KeyframeSelector(KeyframeSettings())
    assert selector.consider(frame(0, scene())) is not None
    assert selector.consider(frame(1, scene())) is None
    kept = selector.consider(frame(2, scene(box_x=300)))
    assert kept is not None
    assert kept.reason == "motion"


def test_a_colour_change_with_the_same_grey_level_is_kept_as_histogram() -> None:
    selector = KeyframeSelector(KeyframeSettings())
    # Pure red (grey 76) and a green of the same grey level: no motion, other colours.
    assert selector.consider(frame(0, scene((0, 0, 255)))) is not None
    kept = selector.consider(frame(1, scene((0, 130, 0))))
    assert kept is not None
    assert kept.reason == "histogram"


def test_slow_drift_is_caught_against_the_last_kept_keyframe() -> None:
    selector = KeyframeSelector(KeyframeSettings(heartbeat_seconds=1000.0))
    reasons = []
    for i in range(40):
        # Brightness creeps up 2 levels a frame: never more than the 25-level pixel
        # threshold between neighbours, but it adds up against the kept frame.
        image = scene((60 + 2 * i, 60 + 2 * i, 60 + 2 * i))
        kept = selector.consider(frame(i, image))
        if kept is not None:
            reasons.append((i, kept.reason))
    assert reasons[0] == (0, "first")
    assert any(reason == "motion" for _, reason in reasons[1:])
    assert len(reasons) < 10


def test_all_frames_keeps_every_frame() -> None:
    selector = KeyframeSelector(KeyframeSettings(), all_frames=True)
    image = scene()
    kept = [selector.consider(frame(i, image)) for i in range(20)]
    assert all(k is not None and k.reason == "all" for k in kept)


def test_real_video_keeps_a_small_fraction_including_people(shared_data: Path) -> None:
    path = shared_data / "videos/intel_sample_videos/one-by-one-person-detection.mp4"
    settings = KeyframeSettings()
    selector = KeyframeSelector(settings)
    source = open_source(str(path), camera_id="lobby")
    reasons: Counter[str] = Counter()
    empty_scene = None
    differs_from_empty = 0
    total = 0
    try:
        for f in source.frames():
            total += 1
            grey = small_grey(f.image, settings.analysis_width)
            if empty_scene is None:
                empty_scene = grey  # the clip opens on the empty room
            kept = selector.consider(f)
            if kept is None:
                continue
            reasons[kept.reason] += 1
            # A kept frame that differs a lot from the empty room has someone in it.
            if motion_fraction(empty_scene, grey, settings.pixel_threshold) > 0.03:
                differs_from_empty += 1
    finally:
        source.close()
    kept_total = sum(reasons.values())
    assert total == 1394
    assert 0.02 * total <= kept_total <= 0.5 * total
    assert reasons["first"] == 1
    assert reasons["motion"] > 0
    assert differs_from_empty >= 20
