"""A weights-free detector: regions that changed since the previous image of the camera."""

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
    """Frame differencing against the previous image, for cameras with no YOLO weights.

    Images must come from one camera in time order; the first image (or one of a new
    size) only primes the reference and yields no boxes.
    """

    def __init__(self, *, min_area: int = 900, pixel_threshold: int = _PIXEL_THRESHOLD) -> None:
        self._min_area = min_area
        self._pixel_threshold = pixel_threshold
        self._previous: Mask | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """Backend name, for logs and stored provenance."""
        return "motion"

    def reset(self) -> None:
        """Forget the reference image (e.g. when the camera's stream restarts)."""
        with self._lock:
            self._previous = None

    def detect(self, images: Sequence[Image]) -> list[Detections]:
        """Boxes around regions that moved since the previous image, one result per image."""
        with self._lock:
            return [self._detect_one(image) for image in images]

    def _detect_one(self, image: Image) -> Detections:
        scale = min(1.0, _ANALYSIS_WIDTH / image.shape[1])
        grey = _prepare(image, scale)
        previous, self._previous = self._previous, grey
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
