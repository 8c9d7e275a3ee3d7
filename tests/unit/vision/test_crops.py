"""Crop geometry and image decoding on real frames: no models involved."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from surveil.domain import Detections, InputError
from surveil.vision.crops import (
    cut_crops,
    decode_image,
    encode_jpeg,
    pad_box,
    read_image,
    thumbnail,
)

FRAME = "mot/MOT17-mini/train/MOT17-09-FRCNN/img1/000001.jpg"


@pytest.fixture(scope="module")
def frame(shared_data: Path) -> np.ndarray:
    return read_image(shared_data / FRAME)


def _detections(boxes: Sequence[tuple[float, float, float, float]]) -> Detections:
    return Detections(
        xyxy=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        confidence=np.linspace(0.9, 0.5, len(boxes), dtype=np.float32),
        labels=tuple("person" for _ in boxes),
    )


def test_pad_box_grows_by_fraction_of_size() -> None:
    assert pad_box((100, 100, 200, 300), 0.1, 1000, 1000) == (90, 80, 210, 320)


def test_pad_box_clips_to_frame() -> None:
    assert pad_box((-20, 5, 1910, 1075), 0.2, 1920, 1080) == (0, 0, 1920, 1080)


def test_pad_box_zero_padding_is_identity() -> None:
    assert pad_box((1.5, 2.5, 30.0, 40.0), 0.0, 100, 100) == (1.5, 2.5, 30.0, 40.0)


def test_cut_crops_keeps_original_box_and_pads_the_cut(frame: np.ndarray) -> None:
    crops = cut_crops(frame, _detections([(260, 450, 362, 712)]), padding=0.1, min_size=16)
    assert len(crops) == 1
    crop = crops[0]
    assert crop.bbox == (260.0, 450.0, 362.0, 712.0)
    assert crop.label == "person"
    assert crop.confidence == pytest.approx(0.9)
    # 102 x 262 box padded by 10% each side: 122.4 x 314.4 -> whole pixels covering it.
    assert crop.image.shape[:2] == (316, 124)
    assert crop.image.flags["C_CONTIGUOUS"]
    assert np.array_equal(crop.image[0, 0], frame[423, 249])


def test_cut_crops_drops_small_and_outside_boxes(frame: np.ndarray) -> None:
    boxes = [(10, 10, 25, 200), (10, 10, 200, 20), (5000, 5000, 5100, 5100), (0, 0, 40, 40)]
    crops = cut_crops(frame, _detections(boxes), padding=0.0, min_size=16)
    assert [c.bbox for c in crops] == [(0.0, 0.0, 40.0, 40.0)]


def test_cut_crops_clips_boxes_leaving_the_frame(frame: np.ndarray) -> None:
    crops = cut_crops(frame, _detections([(-348, 235, 129, 930)]), padding=0.1, min_size=16)
    assert crops[0].bbox == (-348.0, 235.0, 129.0, 930.0)
    assert crops[0].image.shape[1] == 177  # 129 + 47.7 padding, from x=0


def test_cut_crops_empty_detections(frame: np.ndarray) -> None:
    assert cut_crops(frame, Detections.empty(), padding=0.1, min_size=16) == []


def test_thumbnail_keeps_aspect_and_never_enlarges(frame: np.ndarray) -> None:
    small = thumbnail(frame, 256)
    assert small.shape == (144, 256, 3)
    tiny = frame[:50, :20]
    assert thumbnail(tiny, 256) is tiny


def test_jpeg_round_trip(frame: np.ndarray) -> None:
    data = encode_jpeg(thumbnail(frame, 320), 90)
    assert data[:2] == b"\xff\xd8"
    again = decode_image(data, what="thumbnail")
    assert again.shape == (180, 320, 3)
    assert again.dtype == np.uint8


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"", "upload is empty"), (b"not an image at all", "upload is not an image")],
)
def test_decode_image_refuses_non_images(data: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        decode_image(data, what="upload")
    assert "\n" not in str(info.value)


def test_decode_image_refuses_truncated_jpeg(frame: np.ndarray) -> None:
    data = encode_jpeg(frame, 80)
    with pytest.raises(InputError):
        decode_image(data[:20], what="upload")


def test_read_image_errors(tmp_path: Path, shared_data: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_image(tmp_path / "missing.jpg")
    with pytest.raises(InputError, match="is not a file"):
        read_image(tmp_path)
    with pytest.raises(InputError, match="not an image"):
        read_image(shared_data / "MANIFEST.md")


def test_detections_shape_checks() -> None:
    with pytest.raises(ValueError, match="xyxy must have shape"):
        Detections(
            xyxy=np.zeros((2, 3), np.float32),
            confidence=np.zeros((2,), np.float32),
            labels=("a", "b"),
        )
    with pytest.raises(ValueError, match="confidence must have shape"):
        Detections(
            xyxy=np.zeros((2, 4), np.float32),
            confidence=np.zeros((1,), np.float32),
            labels=("a", "b"),
        )
    kept = _detections([(0, 0, 1, 1), (1, 1, 2, 2)]).select(np.array([False, True]))
    assert kept.labels == ("person",)
    assert kept.xyxy.shape == (1, 4)
