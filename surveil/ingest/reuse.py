"""Static objects: reuse an embedding instead of recomputing it for a box that did not move.

A fixed camera sees the same parked cars in every keyframe. A box of the same label that
overlaps a box of the previous keyframe almost exactly holds the same pixels, so its
embedding is the same up to noise; on the UA-DETRAC intersection this skips most of the
general embedder's work (docs/performance.md). Pure functions over plain data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from surveil.domain import Crop


def box_iou(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Pairwise IoU of (N, 4) and (M, 4) xyxy boxes as an (N, M) matrix."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.asarray(inter / np.maximum(union, 1e-9), dtype=np.float32)


def static_matches(
    previous: Sequence[Crop], current: Sequence[Crop], *, min_iou: float
) -> list[int | None]:
    """For each current crop, the index of the previous crop it repeats, or None.

    A match needs the same label and IoU >= min_iou; each previous crop is used once,
    so two objects side by side never share one embedding.
    """
    matches: list[int | None] = [None] * len(current)
    if not previous or not current:
        return matches
    ious = box_iou(
        np.array([c.bbox for c in current], np.float32),
        np.array([p.bbox for p in previous], np.float32),
    )
    labels_differ = np.array([[c.label != p.label for p in previous] for c in current], dtype=bool)
    ious[labels_differ] = 0.0
    taken: set[int] = set()
    # Greedy by overlap, best pairs first.
    for flat in np.argsort(-ious, axis=None):
        n, m = divmod(int(flat), len(previous))
        if ious[n, m] < min_iou:
            break
        if matches[n] is None and m not in taken:
            matches[n] = m
            taken.add(m)
    return matches
