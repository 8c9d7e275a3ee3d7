"""Box IoU, the geometry association and embedding reuse are built on."""

from __future__ import annotations

import numpy as np

from surveil.tracking.boxes import box_iou


def test_box_iou_matrix() -> None:
    a = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [100, 100, 110, 110]], np.float32)
    iou = box_iou(a, b)
    assert iou.shape == (2, 3)
    np.testing.assert_allclose(iou[0], [1.0, 50 / 150, 0.0], rtol=1e-6)
    np.testing.assert_allclose(iou[1], [0.0, 0.0, 0.0])
    assert box_iou(a[:0], b).shape == (0, 3)
