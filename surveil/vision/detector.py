"""Pick and build the detector; motion regions replace YOLO only when the settings ask."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import structlog

from surveil.config import DetectorSettings
from surveil.domain import ConfigError, Detections, Image
from surveil.ports import CropDetector, Detector
from surveil.vision.device import DevicePlan
from surveil.vision.motion import MotionDetector
from surveil.vision.yolo import (
    WEIGHTS_HINT,
    YoloDetector,
    detections_from_ultralytics,
    is_ultralytics_name,
    resolve_weights,
)

__all__ = [
    "FallbackDetector",
    "MotionDetector",
    "YoloDetector",
    "build_detector",
    "detections_from_ultralytics",
]

log = structlog.get_logger(__name__)


def _warn_fallback(reason: str) -> None:
    """The one warning an operator sees when YOLO is replaced by motion regions."""
    log.warning(
        "YOLO detector unavailable; detecting moving regions instead",
        reason=reason,
        fix=WEIGHTS_HINT,
    )


class FallbackDetector:
    """YOLO that turns into a motion detector if its weights fail to load at first use."""

    def __init__(self, primary: YoloDetector, fallback: MotionDetector) -> None:
        self._primary = primary
        self._fallback = fallback
        self._active: Detector | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """The detector actually in use (YOLO's name until it has been tried)."""
        return (self._active or self._primary).name

    def load(self) -> Detector:
        """Try YOLO now, settling on motion (with one warning) if it cannot load."""
        with self._lock:
            if self._active is None:
                try:
                    self._primary.load()
                    self._active = self._primary
                except ConfigError as exc:
                    _warn_fallback(str(exc))
                    self._active = self._fallback
            return self._active

    def detect(
        self, images: Sequence[Image], *, streams: Sequence[str] | None = None
    ) -> list[Detections]:
        """Detect with whichever backend could be loaded."""
        return self.load().detect(images, streams=streams)

    def load_crop(self) -> None:
        """Load YOLO's query-crop model now, if YOLO is what could be loaded."""
        active = self.load()
        if isinstance(active, YoloDetector):
            active.load_crop()

    def detect_crop(self, image: Image) -> Detections:
        """A query crop through YOLO's small-input path, or motion's ordinary one."""
        active = self.load()
        if isinstance(active, CropDetector):
            return active.detect_crop(image)
        (found,) = active.detect([image])
        return found


def _motion(settings: DetectorSettings) -> MotionDetector:
    return MotionDetector(min_area=settings.min_motion_area)


def _missing(settings: DetectorSettings, model_dir: Path) -> str:
    """Why the configured weights cannot be had, naming where they were looked for."""
    looked = [Path(settings.weights).expanduser()]
    if not looked[0].is_absolute():
        looked.append(model_dir / settings.weights)
    where = ", ".join(str(p) for p in looked)
    return f"YOLO weights {settings.weights!r} not found (looked at {where})"


def build_detector(settings: DetectorSettings, *, model_dir: Path, device: DevicePlan) -> Detector:
    """The configured detector; model loading stays lazy, missing files are caught now.

    Motion regions replace YOLO only when asked for (backend 'motion', or
    fallback_to_motion); a bare Ultralytics name is downloaded only with
    detector.download, so an offline machine never guesses.
    """
    if settings.backend == "motion":
        return _motion(settings)
    path = resolve_weights(settings.weights, model_dir)
    if path is not None:
        weights = str(path)
    elif settings.download and is_ultralytics_name(settings.weights):
        weights = settings.weights  # Ultralytics downloads it on first use
    else:
        reason = _missing(settings, model_dir)
        if not settings.fallback_to_motion:
            raise ConfigError(f"{reason}; {WEIGHTS_HINT}")
        _warn_fallback(reason)
        return _motion(settings)
    yolo = YoloDetector(settings, weights=weights, device=device)
    if settings.fallback_to_motion:
        return FallbackDetector(yolo, _motion(settings))
    return yolo
