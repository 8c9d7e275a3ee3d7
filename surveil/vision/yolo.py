"""Ultralytics YOLO behind the Detector port; Ultralytics types stop at this module."""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from surveil.config import DetectorSettings
from surveil.domain import ConfigError, Detections, Image
from surveil.vision.device import DevicePlan

log = structlog.get_logger(__name__)

WEIGHTS_ENV = "SURVEIL_DETECTOR__WEIGHTS"
WEIGHTS_HINT = (
    f"set detector.weights (or {WEIGHTS_ENV}) to a local .pt/.onnx file, e.g. "
    "../shared/data/models/yolov8n_int8_dynamic.onnx (`surveil demo --data DIR` writes it "
    "to ./surveil.yaml); or detector.download: true with a network, or "
    "detector.backend: motion"
)


def prepare_ultralytics_env(*, offline: bool) -> None:
    """Keep Ultralytics from pip-installing, probing the network or writing into $HOME."""
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    if offline:
        # Local weights need no network; this skips Ultralytics' DNS probe at import.
        os.environ.setdefault("YOLO_OFFLINE", "true")
    default_dir = Path(tempfile.gettempdir()) / f"surveil-ultralytics-{os.getuid()}"
    os.environ.setdefault("YOLO_CONFIG_DIR", str(default_dir))


def is_ultralytics_name(weights: str) -> bool:
    """True for a bare release asset name Ultralytics knows how to download (yolo11n.pt)."""
    if Path(weights).name != weights:
        return False
    prepare_ultralytics_env(offline=False)
    from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES

    return weights in GITHUB_ASSETS_NAMES


def resolve_weights(weights: str, model_dir: Path) -> Path | None:
    """The weights file: as given if it exists, else under model_dir; None if neither."""
    given = Path(weights).expanduser()
    if given.is_file():
        return given
    if not given.is_absolute() and (model_dir / given).is_file():
        return model_dir / given
    return None


def detections_from_ultralytics(result: Any, keep_labels: Collection[str]) -> Detections:
    """Convert one Ultralytics Results to domain Detections, keeping only wanted labels."""
    boxes = result.boxes
    if boxes is None or len(boxes) == 0:
        return Detections.empty()
    names: dict[int, str] = result.names
    xyxy = np.asarray(boxes.xyxy.cpu().numpy(), dtype=np.float32).reshape(-1, 4)
    conf = np.asarray(boxes.conf.cpu().numpy(), dtype=np.float32).reshape(-1)
    labels = tuple(names[int(c)] for c in boxes.cls.cpu().numpy().reshape(-1))
    detections = Detections(xyxy=xyxy, confidence=conf, labels=labels)
    if not keep_labels:
        return detections
    keep = np.fromiter((lbl in keep_labels for lbl in labels), dtype=np.bool_, count=len(labels))
    return detections.select(keep)


class YoloDetector:
    """Batched Ultralytics YOLO; the model loads on first use so start-up stays fast."""

    def __init__(self, settings: DetectorSettings, *, weights: str, device: DevicePlan) -> None:
        self._settings = settings
        self._weights = weights
        self._device = device
        self._keep = frozenset(settings.labels)
        self._model: Any = None
        self._classes: list[int] | None = None
        self._precision: dict[str, Any] = {}
        self._lock = threading.Lock()
        # Ultralytics' predictor keeps per-call state on the model: one call at a time.
        self._predict_lock = threading.Lock()

    @property
    def name(self) -> str:
        """Backend and weights, for logs and stored provenance."""
        return f"yolo:{Path(self._weights).name}"

    def load(self) -> None:
        """Load the weights now; raises ConfigError saying which setting to change."""
        with self._lock:
            if self._model is None:
                self._model = self._load_model()

    def _load_model(self) -> Any:
        prepare_ultralytics_env(offline=Path(self._weights).is_file())
        from ultralytics.models import YOLO

        _route_ultralytics_logs()
        self._precision = _precision_args(self._device.half)
        try:
            model = YOLO(self._weights, task="detect")
            # Non-.pt backends only open on the first predict: do it now so a bad file
            # fails here (and can fall back) instead of in the middle of ingest.
            self._run(model, [np.zeros((64, 64, 3), np.uint8)], classes=None)
        except (
            Exception
        ) as exc:  # Ultralytics raises many kinds: missing file, no network, bad file
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(
                f"cannot load YOLO weights {self._weights!r} ({first}); {WEIGHTS_HINT}"
            ) from exc
        self._classes = self._class_ids(model.names)
        log.info("detector loaded", weights=self._weights, device=self._device.torch_device)
        return model

    def _class_ids(self, names: dict[int, str]) -> list[int] | None:
        """Class ids to ask NMS for, so unwanted classes never compete for the top boxes."""
        if not self._keep:
            return None
        unknown = sorted(self._keep - set(names.values()))
        if unknown:
            log.warning("detector labels not in the model's classes", labels=unknown)
        return [i for i, n in names.items() if n in self._keep]

    def detect(
        self, images: Sequence[Image], *, streams: Sequence[str] | None = None
    ) -> list[Detections]:
        """Detect objects in BGR images, batch_size images per forward pass (stateless)."""
        if not images:
            return []
        self.load()
        out: list[Detections] = []
        size = self._settings.batch_size
        for start in range(0, len(images), size):
            out.extend(self._predict(list(images[start : start + size])))
        return out

    def _predict(self, batch: list[Image]) -> list[Detections]:
        with self._predict_lock:
            results = self._run(self._model, batch, classes=self._classes)
        return [detections_from_ultralytics(r, self._keep) for r in results]

    def _run(self, model: Any, batch: list[Image], *, classes: list[int] | None) -> list[Any]:
        results: list[Any] = model.predict(
            batch,
            imgsz=self._settings.image_size,
            conf=self._settings.confidence,
            iou=self._settings.iou,
            device=self._device.torch_device,
            classes=classes,
            verbose=False,
            **self._precision,
        )
        return results


def _route_ultralytics_logs() -> None:
    """Send Ultralytics' INFO chatter to stderr at WARNING: stdout carries --json output."""
    from ultralytics.utils import LOGGER

    # Its own handler writes to stdout; the root logger (stderr, see logs.py) takes over.
    LOGGER.handlers.clear()
    LOGGER.propagate = True
    LOGGER.setLevel(logging.WARNING)


def _precision_args(half: bool) -> dict[str, Any]:
    """fp16 flag in whichever spelling this Ultralytics release understands."""
    from ultralytics.utils import DEFAULT_CFG_DICT

    if "quantize" in DEFAULT_CFG_DICT:  # 8.4+: 'half' is deprecated in favour of 'quantize'
        return {"quantize": 16 if half else None}
    return {"half": half}
