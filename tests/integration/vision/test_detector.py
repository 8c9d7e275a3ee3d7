"""The real detectors on real frames: YOLO (ONNX, offline) and the motion fallback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from structlog.testing import capture_logs

from surveil.config import DetectorSettings, Settings
from surveil.domain import ConfigError, Detections, Image
from surveil.vision.crops import read_image
from surveil.vision.detector import FallbackDetector, MotionDetector, YoloDetector, build_detector
from surveil.vision.device import DevicePlan, choose_device

MOT09 = "mot/MOT17-mini/train/MOT17-09-FRCNN"
WALKER = "videos/intel_sample_videos/one-by-one-person-detection.mp4"
TRAFFIC = "videos/ua_detrac_evadb/ua_detrac.mp4"
YOLO_ONNX = "yolov8n_int8_dynamic.onnx"

SettingsFactory = Callable[..., Settings]


@pytest.fixture(scope="module")
def plan() -> DevicePlan:
    return choose_device("auto", None)


@pytest.fixture(scope="module")
def mot_frame(shared_data: Path) -> Image:
    return read_image(shared_data / MOT09 / "img1" / "000001.jpg")


def _gt_pedestrians(shared_data: Path, frame: int, min_visibility: float) -> np.ndarray:
    """Ground-truth pedestrian boxes (xyxy) of one MOT frame, clipped to the image."""
    rows = np.loadtxt(shared_data / MOT09 / "gt" / "gt.txt", delimiter=",", ndmin=2)
    keep = (rows[:, 0] == frame) & (rows[:, 6] == 1) & (rows[:, 7] == 1)
    keep &= rows[:, 8] >= min_visibility
    left, top, width, height = rows[keep, 2], rows[keep, 3], rows[keep, 4], rows[keep, 5]
    boxes = np.stack([left, top, left + width, top + height], axis=1)
    return np.asarray(np.clip(boxes, 0, [1920, 1080, 1920, 1080]), dtype=np.float32)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of two xyxy box sets."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return np.asarray(inter / (area_a[:, None] + area_b[None, :] - inter))


def _video_frames(path: Path, indices: list[int]) -> list[Image]:
    cap = cv2.VideoCapture(str(path))
    frames: dict[int, Image] = {}
    index = 0
    while index <= max(indices):
        ok, image = cap.read()
        assert ok, f"{path} ended before frame {index}"
        if index in indices:
            frames[index] = np.asarray(image, dtype=np.uint8)
        index += 1
    cap.release()
    return [frames[i] for i in indices]


def _yolo(models_dir: Path, plan: DevicePlan, **fields: Any) -> YoloDetector:
    settings = DetectorSettings(weights=str(models_dir / YOLO_ONNX), **fields)
    return YoloDetector(settings, weights=settings.weights, device=plan)


def test_yolo_finds_the_visible_pedestrians(
    shared_data: Path, models_dir: Path, plan: DevicePlan, mot_frame: Image
) -> None:
    detections = _yolo(models_dir, plan).detect([mot_frame])[0]
    assert isinstance(detections, Detections)
    persons = detections.select(np.array([lbl == "person" for lbl in detections.labels]))
    truth = _gt_pedestrians(shared_data, 1, min_visibility=0.5)
    assert len(truth) >= 4
    matched = (_iou(truth, persons.xyxy).max(axis=1) >= 0.5).sum()
    assert matched >= 0.75 * len(truth), f"{matched}/{len(truth)} pedestrians found"
    assert ((persons.confidence >= 0.35) & (persons.confidence <= 1.0)).all()


def test_yolo_batches_match_single_images(
    shared_data: Path, models_dir: Path, plan: DevicePlan
) -> None:
    images = [read_image(shared_data / MOT09 / "img1" / f"00000{i}.jpg") for i in (1, 2, 3)]
    yolo = _yolo(models_dir, plan, batch_size=2)
    batched = yolo.detect(images)
    assert len(batched) == 3
    for image, result in zip(images, batched, strict=True):
        single = yolo.detect([image])[0]
        assert single.labels == result.labels
        np.testing.assert_allclose(single.xyxy, result.xyxy, atol=1.0)
    assert yolo.detect([]) == []


def test_label_filter(models_dir: Path, plan: DevicePlan, mot_frame: Image) -> None:
    only_cars = _yolo(models_dir, plan, labels=["car"]).detect([mot_frame])[0]
    assert set(only_cars.labels) <= {"car"}
    everything = _yolo(models_dir, plan, labels=[]).detect([mot_frame])[0]
    persons = _yolo(models_dir, plan, labels=["person"]).detect([mot_frame])[0]
    assert set(persons.labels) == {"person"}
    assert len(everything) >= len(persons) + len(only_cars)


def test_build_detector_uses_yolo_from_model_dir(
    make_settings: SettingsFactory, models_dir: Path, plan: DevicePlan, mot_frame: Image
) -> None:
    settings = make_settings(**{"detector.weights": YOLO_ONNX})
    detector = build_detector(settings.detector, model_dir=models_dir, device=plan)
    assert isinstance(detector, YoloDetector)  # no motion fallback unless asked for
    assert "person" in detector.detect([mot_frame])[0].labels
    assert detector.name == f"yolo:{YOLO_ONNX}"


def test_missing_weights_fall_back_to_motion_with_one_warning(
    make_settings: SettingsFactory, tmp_path: Path, plan: DevicePlan
) -> None:
    settings = make_settings(
        **{"detector.weights": "no-such-model.onnx", "detector.fallback_to_motion": True}
    )
    with capture_logs() as logs:
        detector = build_detector(settings.detector, model_dir=tmp_path, device=plan)
    assert isinstance(detector, MotionDetector)
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert len(warnings) == 1
    assert "SURVEIL_DETECTOR__WEIGHTS" in warnings[0]["fix"]


def test_missing_weights_without_fallback_is_a_config_error(
    make_settings: SettingsFactory, tmp_path: Path, plan: DevicePlan
) -> None:
    settings = make_settings(
        **{"detector.weights": "no-such-model.onnx", "detector.fallback_to_motion": False}
    )
    with pytest.raises(ConfigError, match="SURVEIL_DETECTOR__WEIGHTS"):
        build_detector(settings.detector, model_dir=tmp_path, device=plan)


def test_default_weights_missing_is_an_error_not_a_download(
    make_settings: SettingsFactory, tmp_path: Path, plan: DevicePlan
) -> None:
    # yolo11n.pt is an Ultralytics asset name: offline, a download would hang or fail late.
    settings = make_settings()
    assert settings.detector.weights == "yolo11n.pt"
    assert not settings.detector.fallback_to_motion
    with pytest.raises(ConfigError, match=r"'yolo11n.pt' not found .*detector\.weights"):
        build_detector(settings.detector, model_dir=tmp_path, device=plan)


def test_unloadable_weights_fall_back_at_first_use(
    make_settings: SettingsFactory, shared_data: Path, plan: DevicePlan, mot_frame: Image
) -> None:
    # A file that exists but is no model passes the cheap build-time check.
    settings = make_settings(
        **{
            "detector.weights": str(shared_data / "MANIFEST.md"),
            "detector.fallback_to_motion": True,
        }
    )
    detector = build_detector(settings.detector, model_dir=shared_data, device=plan)
    assert isinstance(detector, FallbackDetector)
    with capture_logs() as logs:
        first = detector.detect([mot_frame])
        assert [len(d) for d in first] == [0]  # motion primes on its first image
        detector.detect([mot_frame])
    assert detector.name == "motion"
    assert sum(e["log_level"] == "warning" for e in logs) == 1

    strict = make_settings(
        **{
            "detector.weights": str(shared_data / "MANIFEST.md"),
            "detector.fallback_to_motion": False,
        }
    )
    yolo = build_detector(strict.detector, model_dir=shared_data, device=plan)
    with pytest.raises(ConfigError, match="SURVEIL_DETECTOR__WEIGHTS"):
        yolo.detect([mot_frame])


def test_motion_backend_needs_no_weights(make_settings: SettingsFactory, plan: DevicePlan) -> None:
    settings = make_settings(**{"detector.backend": "motion", "detector.weights": "nowhere.pt"})
    detector = build_detector(settings.detector, model_dir=Path("/nonexistent"), device=plan)
    assert detector.name == "motion"


def test_motion_detector_finds_the_walking_person(
    shared_data: Path, models_dir: Path, plan: DevicePlan
) -> None:
    before, after = _video_frames(shared_data / WALKER, [180, 185])
    motion = MotionDetector(min_area=900)
    # The first image only primes the camera's reference.
    assert len(motion.detect([before], streams=["lobby"])[0]) == 0
    moved = motion.detect([after], streams=["lobby"])[0]
    assert len(moved) >= 1
    assert set(moved.labels) == {"motion"}
    assert ((moved.confidence > 0) & (moved.confidence <= 1)).all()
    height, width = after.shape[:2]
    assert (moved.xyxy[:, [0, 2]] <= width).all() and (moved.xyxy[:, [1, 3]] <= height).all()
    person = _yolo(models_dir, plan, labels=["person"]).detect([after])[0]
    assert len(person) >= 1
    assert _iou(person.xyxy, moved.xyxy).max() >= 0.3
    # Nothing moved between identical frames.
    assert len(motion.detect([after], streams=["lobby"])[0]) == 0


def _boxes(found: list[Detections]) -> list[list[list[float]]]:
    return [d.xyxy.round(2).tolist() for d in found]


WALKER_FRAMES = [170, 175, 180, 185, 190]


def test_motion_state_is_per_camera_interleaved_like_each_alone(shared_data: Path) -> None:
    walker = _video_frames(shared_data / WALKER, WALKER_FRAMES)
    traffic = _video_frames(shared_data / TRAFFIC, [0, 3, 6, 9, 12])
    alone_a = MotionDetector().detect(walker, streams=["a"] * len(walker))
    alone_b = MotionDetector().detect(traffic, streams=["b"] * len(traffic))
    assert sum(len(d) for d in alone_a) > 0 and sum(len(d) for d in alone_b) > 0
    mixed = MotionDetector()
    # As live batches come: cameras interleaved, in batches that split either camera.
    images = [img for pair in zip(walker, traffic, strict=True) for img in pair]
    streams = ["a", "b"] * len(walker)
    found = mixed.detect(images[:3], streams=streams[:3])
    found += mixed.detect(images[3:], streams=streams[3:])
    assert _boxes(found[0::2]) == _boxes(alone_a)
    assert _boxes(found[1::2]) == _boxes(alone_b)
    assert mixed.known_streams() == {"a", "b"}


def test_a_query_crop_gets_no_motion_boxes_and_leaves_cameras_alone(shared_data: Path) -> None:
    before, after = _video_frames(shared_data / WALKER, [180, 185])
    untouched, probed = MotionDetector(), MotionDetector()
    untouched.detect([before], streams=["lobby"])
    probed.detect([before], streams=["lobby"])
    crop = np.ascontiguousarray(after[100:300, 200:320])
    # A lone crop (no stream) has no previous image: no boxes, whatever its size.
    assert [len(d) for d in probed.detect([crop, after])] == [0, 0]
    assert probed.known_streams() == {"lobby"}
    expected = _boxes(untouched.detect([after], streams=["lobby"]))
    assert expected != [[]]
    assert _boxes(probed.detect([after], streams=["lobby"])) == expected


def test_motion_refuses_images_and_streams_that_do_not_pair_up(shared_data: Path) -> None:
    (frame,) = _video_frames(shared_data / WALKER, [0])
    with pytest.raises(ValueError, match="2 images but 1 streams"):
        MotionDetector().detect([frame, frame], streams=["a"])
