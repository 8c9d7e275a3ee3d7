"""Static-object embedding reuse: box IoU and one-to-one matching, on plain data."""

from __future__ import annotations

import numpy as np

from surveil.domain import BBox, Crop
from surveil.ingest.reuse import box_iou, static_matches

PIXELS = np.zeros((4, 4, 3), np.uint8)


def crop(box: BBox, label: str = "car") -> Crop:
    return Crop(bbox=box, label=label, confidence=0.9, image=PIXELS)


def test_box_iou_matrix() -> None:
    a = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [100, 100, 110, 110]], np.float32)
    iou = box_iou(a, b)
    assert iou.shape == (2, 3)
    np.testing.assert_allclose(iou[0], [1.0, 50 / 150, 0.0], rtol=1e-6)
    np.testing.assert_allclose(iou[1], [0.0, 0.0, 0.0])
    assert box_iou(a[:0], b).shape == (0, 3)


def test_unmoved_box_of_same_label_is_matched() -> None:
    previous = [crop((0, 0, 100, 50)), crop((200, 0, 300, 50))]
    current = [crop((201, 1, 301, 51)), crop((0, 0, 100, 50)), crop((500, 0, 600, 50))]
    assert static_matches(previous, current, min_iou=0.9) == [1, 0, None]


def test_label_change_or_movement_is_not_matched() -> None:
    previous = [crop((0, 0, 100, 50), "car")]
    assert static_matches(previous, [crop((0, 0, 100, 50), "truck")], min_iou=0.9) == [None]
    assert static_matches(previous, [crop((20, 0, 120, 50))], min_iou=0.9) == [None]


def test_each_previous_box_feeds_at_most_one_current_box() -> None:
    previous = [crop((0, 0, 100, 50))]
    current = [crop((0, 0, 100, 50)), crop((1, 0, 101, 50))]
    assert static_matches(previous, current, min_iou=0.9) == [0, None]


def test_nothing_to_match() -> None:
    assert static_matches([], [crop((0, 0, 1, 1))], min_iou=0.9) == [None]
    assert static_matches([crop((0, 0, 1, 1))], [], min_iou=0.9) == []
