"""A weights-free detector: regions that changed since the previous image of the same camera.

The reference image is kept per stream (camera): live batches interleave cameras, and
camera B must never be compared with camera A. Images given without a stream (an
operator's query crop) have no previous image: they yield no boxes and touch no state.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from surveil.domain import Detections, Image

MOTION_LABEL = "motion"
_ANALYSIS_WIDTH = 640  # enough detail for person-sized regions, cheap on 1080p frames
_PIXEL_THRESHOLD = 25  # grey-level change that counts (sensor noise stays under it)

Mask = npt.NDArray[np.uint8]


class MotionDetector:
    """Frame differencing against each stream's previous image, for cameras with no YOLO weights.

    Each stream's images must come in time order; its first image (or one of a new size)
    only primes its reference and yields no boxes.
    """

    def __init__(self, *, min_area: int = 900, pixel_threshold: int = _PIXEL_THRESHOLD) -> None:
        self._min_area = min_area
        self._pixel_threshold = pixel_threshold
        self._previous: dict[str, Mask] = {}
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """Backend name, for logs and stored provenance."""
        return "motion"

    def reset(self, stream: str | None = None) -> None:
        """Forget one stream's reference image (its camera reconnected), or every stream's."""
        with self._lock:
            if stream is None:
                self._previous.clear()
            else:
                self._previous.pop(stream, None)

    def known_streams(self) -> frozenset[str]:
        """The streams a reference image is held for (for tests and diagnostics)."""
        with self._lock:
            return frozenset(self._previous)

    def detect(
        self, images: Sequence[Image], *, streams: Sequence[str] | None = None
    ) -> list[Detections]:
        """Boxes around what moved since the same stream's previous image, one per image.

        Without `streams` the images are lone crops: no boxes, and no stream's state changes.
        """
        if streams is None:
            return [Detections.empty() for _ in images]
        if len(streams) != len(images):
            raise ValueError(f"{len(images)} images but {len(streams)} streams")
        with self._lock:
            return [self._detect_one(image, s) for image, s in zip(images, streams, strict=True)]

    def _detect_one(self, image: Image, stream: str) -> Detections:
        scale = min(1.0, _ANALYSIS_WIDTH / image.shape[1])
        grey = _prepare(image, scale)
        previous = self._previous.get(stream)
        self._previous[stream] = grey
        if previous is None or previous.shape != grey.shape:
            return Detections.empty()
        mask = _motion_mask(previous, grey, self._pixel_threshold)
        height, width = image.shape[:2]
        return _boxes(mask, scale, self._min_area, (width, height))


def _prepare(image: Image, scale: float) -> Mask:
    """Small blurred grey image: differences then reflect objects, not noise or JPEG blocks."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if scale < 1.0:
        size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    return np.asarray(cv2.GaussianBlur(grey, (5, 5), 0), dtype=np.uint8)


def _motion_mask(previous: Mask, current: Mask, threshold: int) -> Mask:
    """Binary mask of moved pixels, opened to drop specks and closed to join body parts."""
    diff = cv2.absdiff(previous, current)
    _, mask = cv2.threshold(diff, threshold, 255, cv2.THRESH_BINARY)
    small = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    large = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (15, 15))
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, small)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, large)
    return np.asarray(mask, dtype=np.uint8)


def _boxes(mask: Mask, scale: float, min_area: int, frame: tuple[int, int]) -> Detections:
    """Bounding boxes of moved regions in frame pixels; confidence = share of the box that moved."""
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    boxes: list[tuple[float, float, float, float]] = []
    scores: list[float] = []
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        if (w * h) / (scale * scale) < min_area:
            continue
        moved = float(np.count_nonzero(mask[y : y + h, x : x + w])) / float(w * h)
        # Rounding in the resize can overshoot the frame by a pixel; clip to it.
        boxes.append(
            (x / scale, y / scale, min((x + w) / scale, frame[0]), min((y + h) / scale, frame[1]))
        )
        scores.append(moved)
    if not boxes:
        return Detections.empty()
    return Detections(
        xyxy=np.asarray(boxes, dtype=np.float32),
        confidence=np.asarray(scores, dtype=np.float32),
        labels=(MOTION_LABEL,) * len(boxes),
    )
