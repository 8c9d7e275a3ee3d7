"""How much a crop counts in its track's pooled vector: confident, large, sharp crops more."""

from __future__ import annotations

import cv2
import numpy as np

from surveil.config.tracking import TrackingSettings
from surveil.domain import BBox, Image

#: Crop area (pixels) at which size stops adding weight: a 64x128 person is well resolved.
FULL_AREA = 64 * 128


def sharpness(image: Image) -> float:
    """Variance of the Laplacian of the grey crop, squashed to 0..1 (blur scores low)."""
    if image.size == 0:
        return 0.0
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    var = float(cv2.Laplacian(grey, cv2.CV_32F).var())
    return var / (var + 100.0)


def crop_quality(image: Image, bbox: BBox, confidence: float, settings: TrackingSettings) -> float:
    """The pooling weight of one crop (> 0), by `tracking.quality_weighting`."""
    area = max((bbox[2] - bbox[0]) * (bbox[3] - bbox[1]), 1.0)
    size = min(area / FULL_AREA, 1.0)
    conf = float(np.clip(confidence, 0.0, 1.0))
    mode = settings.quality_weighting
    if mode == "uniform":
        weight = 1.0
    elif mode == "confidence":
        weight = conf
    elif mode == "area":
        weight = size
    elif mode == "sharpness":
        weight = sharpness(image)
    elif mode == "confidence_sharpness":
        weight = conf * sharpness(image)
    else:
        weight = conf * size
    return max(weight, 1e-3)
