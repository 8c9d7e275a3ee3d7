"""Crop geometry and image bytes: pure numpy/OpenCV, no models, no storage."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from surveil.domain import BBox, Crop, Detections, Image, InputError


def pad_box(bbox: BBox, padding: float, width: int, height: int) -> BBox:
    """Grow a box by a fraction of its size on each side (context helps re-ID), clipped."""
    x1, y1, x2, y2 = bbox
    pad_x = (x2 - x1) * padding
    pad_y = (y2 - y1) * padding
    return (
        float(min(max(x1 - pad_x, 0.0), width)),
        float(min(max(y1 - pad_y, 0.0), height)),
        float(min(max(x2 + pad_x, 0.0), width)),
        float(min(max(y2 + pad_y, 0.0), height)),
    )


def _pixel_bounds(box: BBox) -> tuple[int, int, int, int]:
    """Whole pixels that cover the box: floor the start, ceil the end."""
    x1, y1, x2, y2 = box
    return math.floor(x1), math.floor(y1), math.ceil(x2), math.ceil(y2)


def cut_crops(image: Image, detections: Detections, *, padding: float, min_size: int) -> list[Crop]:
    """Cut each detection out of its frame, dropping boxes too small to embed usefully."""
    height, width = image.shape[:2]
    crops: list[Crop] = []
    for box, conf, label in zip(
        detections.xyxy, detections.confidence, detections.labels, strict=True
    ):
        bbox: BBox = (float(box[0]), float(box[1]), float(box[2]), float(box[3]))
        if bbox[2] - bbox[0] < min_size or bbox[3] - bbox[1] < min_size:
            continue
        x1, y1, x2, y2 = _pixel_bounds(pad_box(bbox, padding, width, height))
        if x2 <= x1 or y2 <= y1:  # entirely outside the frame
            continue
        # Copy so a kept crop does not pin the whole frame in memory.
        cut = np.ascontiguousarray(image[y1:y2, x1:x2])
        crops.append(Crop(bbox=bbox, label=label, confidence=float(conf), image=cut))
    return crops


def thumbnail(image: Image, max_side: int) -> Image:
    """Shrink so the longest side is at most max_side, keeping the aspect; never enlarge."""
    height, width = image.shape[:2]
    longest = max(height, width)
    if longest <= max_side:
        return image
    scale = max_side / longest
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # INTER_AREA avoids the aliasing other filters show when shrinking a lot.
    return np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def encode_jpeg(image: Image, quality: int) -> bytes:
    """JPEG bytes for storage and the API."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"could not encode a {image.shape} image as JPEG")
    return bytes(buf.tobytes())


def decode_image(data: bytes, *, what: str) -> Image:
    """Decode uploaded or stored bytes to BGR, with a one-line error an operator can act on."""
    if not data:
        raise InputError(f"{what} is empty")
    buf = np.frombuffer(data, dtype=np.uint8)
    image = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"{what} is not an image OpenCV can read (JPEG, PNG, BMP, WebP, ...)")
    if image.size == 0 or image.shape[0] == 0 or image.shape[1] == 0:
        raise InputError(f"{what} has no pixels")
    return np.asarray(image, dtype=np.uint8)


def read_image(path: Path | str) -> Image:
    """Read an image file, turning every failure into an InputError naming the file."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"image {path} does not exist")
    if not path.is_file():
        raise InputError(f"image {path} is not a file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read image {path}: {exc.strerror or exc}") from exc
    return decode_image(data, what=f"image {path}")
