"""A query crop without a label gets its space from a small-input YOLO, not a 640 px one.

Real weights, real crops: MOT17-09 pedestrians, the Market-1501 query crops, UA-DETRAC
and MOT17-13 cars. Which input size did the work is read from the detector's own
`images_by_input_size`, not from a stand-in.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from surveil.config import DetectorSettings, EmbeddersSettings
from surveil.domain import Image, Space
from surveil.ports import CropDetector, Detector, Embedder
from surveil.search.by_example import QueryEmbedding, crop_label, embed_example
from surveil.vision.crops import read_image
from surveil.vision.detector import FallbackDetector, build_detector
from surveil.vision.device import DevicePlan, choose_device
from surveil.vision.embedder import build_embedder
from surveil.vision.onnx_resize import (
    UnsupportedGraphError,
    cell_count,
    onnx_input_size,
    resized_detector,
)
from surveil.vision.yolo import CROP_IMAGE_SIZE, YoloDetector

YOLO_ONNX = "yolov8n_int8_dynamic.onnx"
OSNET_ONNX = "osnet_x0_25_msmt17.onnx"
MOT = "mot/MOT17-mini/train"
DETRAC = "mot/UA-DETRAC_MVI_20011_first9"
MARKET = "reid/market1501_person_search_demo/query"
FULL_SIZE = DetectorSettings().image_size

Box = tuple[int, int, int, int]


def _cut(image: Image, box: Box) -> Image:
    left, top, right, bottom = box
    return image[max(top, 0) : bottom, max(left, 0) : right].copy()


def _mot_boxes(shared_data: Path, seq: str, cls: int) -> list[Box]:
    """Frame-1 gt boxes of one class, visibility >= 0.5, at least 40 px tall, 24 px wide."""
    out: list[Box] = []
    for line in (shared_data / MOT / seq / "gt" / "gt.txt").read_text().splitlines():
        f, _, x, y, w, h, consider, c, vis = line.split(",")[:9]
        wanted = int(f) == 1 and int(c) == cls and float(vis) >= 0.5
        pedestrian_ok = cls != 1 or int(consider) == 1
        if wanted and pedestrian_ok and float(h) >= 40 and float(w) >= 24:
            left, top = int(float(x)), int(float(y))
            out.append((left, top, left + int(float(w)), top + int(float(h))))
    return out


@pytest.fixture(scope="module")
def person_crops(shared_data: Path) -> list[Image]:
    frame = read_image(shared_data / MOT / "MOT17-09-FRCNN" / "img1" / "000001.jpg")
    crops = [_cut(frame, b) for b in _mot_boxes(shared_data, "MOT17-09-FRCNN", 1)]
    crops += [read_image(p) for p in sorted((shared_data / MARKET).glob("*.jpg"))]
    assert len(crops) >= 6
    return crops


@pytest.fixture(scope="module")
def vehicle_crops(shared_data: Path) -> list[Image]:
    frame = read_image(shared_data / MOT / "MOT17-13-FRCNN" / "img1" / "000001.jpg")
    crops = [_cut(frame, b) for b in _mot_boxes(shared_data, "MOT17-13-FRCNN", 3)]
    detrac = read_image(shared_data / DETRAC / "img" / "img00001.jpg")
    with (shared_data / DETRAC / "gt_frames1-9_derived.csv").open() as fh:
        for row in csv.DictReader(fh):
            x, y, w, h = (float(row[k]) for k in ("left", "top", "width", "height"))
            if row["frame"] == "1" and min(w, h) >= 24:
                crops.append(_cut(detrac, (int(x), int(y), int(x + w), int(y + h))))
    assert len(crops) >= 6
    return crops


@pytest.fixture(scope="module")
def plan() -> DevicePlan:
    return choose_device("cpu", None)


@pytest.fixture(scope="module")
def embedders(models_dir: Path, plan: DevicePlan) -> dict[Space, Embedder]:
    settings = EmbeddersSettings()
    return {
        "person": build_embedder("person", settings.person, model_dir=models_dir, device=plan),
        "general": build_embedder("general", settings.general, model_dir=models_dir, device=plan),
    }


def _yolo(models_dir: Path, plan: DevicePlan) -> YoloDetector:
    detector = build_detector(
        DetectorSettings(weights=YOLO_ONNX), model_dir=models_dir, device=plan
    )
    assert isinstance(detector, YoloDetector)
    return detector


def _embed(
    crop: Image, detector: Detector, embedders: dict[Space, Embedder], label: str | None = None
) -> QueryEmbedding:
    return embed_example(
        crop,
        label=label,
        person_labels=["person"],
        embedder_for=embedders.__getitem__,
        detector=lambda: detector,
    )


def test_unlabelled_crops_get_their_space_without_a_full_size_detection(
    models_dir: Path,
    plan: DevicePlan,
    embedders: dict[Space, Embedder],
    person_crops: list[Image],
    vehicle_crops: list[Image],
) -> None:
    detector = _yolo(models_dir, plan)
    assert isinstance(detector, CropDetector)
    persons = [_embed(c, detector, embedders) for c in person_crops]
    vehicles = [_embed(c, detector, embedders) for c in vehicle_crops]

    # At most one miss each (bench_crop_label.py: 81/95 persons, 86/87 vehicles; the one
    # vehicle miss is DETRAC's truncated close-up car of frame 1, which is in this set).
    right = sum(q.space == "person" for q in persons)
    assert right >= len(persons) - 1, f"{right}/{len(persons)} person crops in the person space"
    right = sum(q.space == "general" for q in vehicles)
    assert right >= len(vehicles) - 1, f"{right}/{len(vehicles)} vehicles in the general space"
    assert sum(q.label in {"car", "truck", "bus"} for q in vehicles) >= len(vehicles) // 2
    for q in persons + vehicles:
        assert q.label_source == ("detector" if q.label else "default")
        assert q.vector.shape == (embedders[q.space].dim,)

    runs = detector.images_by_input_size
    assert FULL_SIZE not in runs, f"a query crop ran at {FULL_SIZE} px: {runs}"
    # Every crop, plus the one blank image that opens the model, ran at the crop size.
    assert runs == {CROP_IMAGE_SIZE: len(person_crops) + len(vehicle_crops) + 1}


def test_small_input_is_right_at_least_as_often_as_full_size(
    models_dir: Path, plan: DevicePlan, person_crops: list[Image], vehicle_crops: list[Image]
) -> None:
    detector = _yolo(models_dir, plan)
    truth = ["person"] * len(person_crops) + ["general"] * len(vehicle_crops)
    crops = person_crops + vehicle_crops

    def right(label_of: Callable[[Image], str | None]) -> int:
        spaces = ["person" if label_of(c) == "person" else "general" for c in crops]
        return sum(s == t for s, t in zip(spaces, truth, strict=True))

    small = right(lambda c: crop_label(detector.detect_crop(c), c))
    full = right(lambda c: crop_label(detector.detect([c])[0], c))
    assert small >= full, f"{small} right at {CROP_IMAGE_SIZE} px, {full} at {FULL_SIZE} px"
    assert set(detector.images_by_input_size) == {CROP_IMAGE_SIZE, FULL_SIZE}


def test_the_operators_label_wins_and_runs_no_detector(
    models_dir: Path, plan: DevicePlan, embedders: dict[Space, Embedder], person_crops: list[Image]
) -> None:
    detector = _yolo(models_dir, plan)
    query = _embed(person_crops[0], detector, embedders, label="car")
    assert (query.space, query.label, query.label_source) == ("general", "car", "given")
    assert detector.images_by_input_size == {}


def test_motion_fallback_answers_crops_by_its_ordinary_path(
    shared_data: Path, plan: DevicePlan, person_crops: list[Image]
) -> None:
    settings = DetectorSettings(weights=str(shared_data / "MANIFEST.md"), fallback_to_motion=True)
    detector = build_detector(settings, model_dir=shared_data, device=plan)
    assert isinstance(detector, FallbackDetector)
    # No YOLO to ask: motion finds nothing in a lone crop, so the space is the default.
    assert len(detector.detect_crop(person_crops[0])) == 0
    assert detector.name == "motion"


def test_resizing_to_the_exported_size_changes_nothing(models_dir: Path) -> None:
    path = models_dir / YOLO_ONNX
    assert onnx_input_size(path) == FULL_SIZE
    same = ort.InferenceSession(resized_detector(path, FULL_SIZE))
    original = ort.InferenceSession(str(path))
    x = np.random.default_rng(0).random((1, 3, FULL_SIZE, FULL_SIZE), dtype=np.float32)
    np.testing.assert_array_equal(
        same.run(None, {"images": x})[0], original.run(None, {"images": x})[0]
    )
    small = ort.InferenceSession(resized_detector(path, CROP_IMAGE_SIZE))
    x = x[:, :, :CROP_IMAGE_SIZE, :CROP_IMAGE_SIZE].copy()
    assert small.run(None, {"images": x})[0].shape == (1, 84, cell_count(CROP_IMAGE_SIZE))


def test_a_model_that_is_no_yolo_detector_is_refused(models_dir: Path) -> None:
    with pytest.raises(UnsupportedGraphError, match="not square"):
        resized_detector(models_dir / OSNET_ONNX, CROP_IMAGE_SIZE)


def test_loading_the_crop_model_opens_only_the_small_one(
    models_dir: Path, plan: DevicePlan
) -> None:
    detector = _yolo(models_dir, plan)
    detector.load_crop()  # what `serve` does before it listens
    assert detector.images_by_input_size == {CROP_IMAGE_SIZE: 1}  # the blank that opens it
