"""Ultralytics YOLO behind the Detector port; Ultralytics types stop at this module."""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from surveil.config import DetectorSettings
from surveil.domain import ConfigError, Detections, Image
from surveil.vision.device import DevicePlan
from surveil.vision.onnx_resize import UnsupportedGraphError, onnx_input_size, resized_detector_file

log = structlog.get_logger(__name__)

#: Input size and confidence floor for a lone query crop (search by example without a
#: label), instead of detector.image_size and detector.confidence. Chosen by
#: benchmarks/bench_crop_label.py on 217 labelled crops (95 MOT17/Market-1501 persons,
#: 87 MOT17/UA-DETRAC cars, 35 background patches; 2 shared CPU cores, 2026-12-06):
#: 640 px at 0.35 (before) put 26/95 persons, 84/87 cars, 35/35 patches in the right
#: space at 174 ms per crop: a tight crop blown up to fill 640 px is mostly not found at
#: all. 160 px at 0.1: 81/95, 86/87, 35/35 at 17 ms. 192 px was about as right (79/95, 87/87)
#: but slower, 128 px faster but missed more persons (75/95); the crop's aspect ratio got
#: every person but sent 21/35 background patches to the person space. The lower floor:
#: ingest needs 0.35 against false boxes in a whole frame, but for a crop the question is
#: only which class fits it best (160 px at 0.35 got only 61/95 persons right).
CROP_IMAGE_SIZE = 160
CROP_CONFIDENCE = 0.1

WEIGHTS_ENV = "SURVEIL_DETECTOR__WEIGHTS"
WEIGHTS_HINT = (
    f"set detector.weights (or {WEIGHTS_ENV}) to a local .pt/.onnx file, e.g. "
    "../shared/data/models/yolov8n_int8_dynamic.onnx (`surveil demo --data DIR` writes it "
    "to ./surveil.yaml); or detector.download: true with a network, or "
    "detector.backend: motion"
)


def ultralytics_dir() -> Path:
    """Where Ultralytics keeps its settings, and surveil its derived model files."""
    default = Path(tempfile.gettempdir()) / f"surveil-ultralytics-{os.getuid()}"
    return Path(os.environ.get("YOLO_CONFIG_DIR", str(default)))


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
    """Batched Ultralytics YOLO; the model loads on first use so start-up stays fast.

    Lone query crops go to a second instance of the same weights at a small input size
    (`detect_crop`), so a by-example search never pays a full-size detection.
    """

    def __init__(
        self,
        settings: DetectorSettings,
        *,
        weights: str,
        device: DevicePlan,
        crop_image_size: int = CROP_IMAGE_SIZE,
        crop_confidence: float = CROP_CONFIDENCE,
    ) -> None:
        self._settings = settings
        self._weights = weights
        self._device = device
        self._crop_size = min(crop_image_size, settings.image_size)
        self._crop_confidence = min(crop_confidence, settings.confidence)
        self._keep = frozenset(settings.labels)
        self._model: Any = None
        self._crop_model: Any = None
        self._classes: list[int] | None = None
        self._precision: dict[str, Any] = {}
        self._lock = threading.Lock()
        # Ultralytics' predictor keeps per-call state on the model: one call at a time.
        self._predict_lock = threading.Lock()
        self._crop_lock = threading.Lock()
        self._runs: Counter[int] = Counter()
        self._runs_lock = threading.Lock()

    @property
    def name(self) -> str:
        """Backend and weights, for logs and stored provenance."""
        return f"yolo:{Path(self._weights).name}"

    @property
    def images_by_input_size(self) -> Mapping[int, int]:
        """Images run so far per network input side (px), as Ultralytics' predictor ran them.

        Observable proof of which path did the work: query crops must not show up at
        detector.image_size.
        """
        with self._runs_lock:
            return dict(self._runs)

    def load(self) -> None:
        """Load the weights now; raises ConfigError saying which setting to change."""
        with self._lock:
            if self._model is None:
                self._model = self._load_model(self._weights, self._settings.image_size)
                log.info("detector loaded", weights=self._weights, device=self._device.torch_device)

    def _load_model(self, weights: str, size: int) -> Any:
        prepare_ultralytics_env(offline=Path(weights).is_file())
        from ultralytics.models import YOLO

        _route_ultralytics_logs()
        self._precision = _precision_args(self._device.half)
        try:
            model = YOLO(weights, task="detect")
            # Non-.pt backends only open on the first predict: do it now so a bad file
            # fails here (and can fall back) instead of in the middle of ingest.
            blank = [np.zeros((64, 64, 3), np.uint8)]
            self._run(model, blank, classes=None, size=size, conf=self._settings.confidence)
        except (
            Exception
        ) as exc:  # Ultralytics raises many kinds: missing file, no network, bad file
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(
                f"cannot load YOLO weights {weights!r} ({first}); {WEIGHTS_HINT}"
            ) from exc
        self._classes = self._class_ids(model.names)  # the same weights: the same classes
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
            results = self._run(
                self._model,
                batch,
                classes=self._classes,
                size=self._settings.image_size,
                conf=self._settings.confidence,
            )
        return [detections_from_ultralytics(r, self._keep) for r in results]

    def detect_crop(self, image: Image) -> Detections:
        """Detect in one lone query crop at the small crop input size (changes no state).

        The full-size model is not loaded for this: a search process may never need it.
        """
        with self._crop_lock:
            self._ensure_crop_model()
            (result,) = self._run(
                self._crop_model,
                [image],
                classes=self._classes,
                size=self._crop_size,
                conf=self._crop_confidence,
            )
        return detections_from_ultralytics(result, self._keep)

    def load_crop(self) -> None:
        """Load the query-crop model now (`serve` does, so the first search is not slower)."""
        with self._crop_lock:
            self._ensure_crop_model()

    def _ensure_crop_model(self) -> None:
        if self._crop_model is None:
            self._crop_model = self._load_crop_model()

    def _load_crop_model(self) -> Any:
        """The same weights ready to run at the crop size (a resized graph if fixed-shape)."""
        weights = self._crop_weights()
        model = self._load_model(weights, self._crop_size)
        log.info("crop detector loaded", weights=weights, image_size=self._crop_size)
        return model

    def _crop_weights(self) -> str:
        """Weights that run at the crop size: these, or a fixed-shape ONNX rewritten for it.

        Anything else fixed-shape (TensorRT, OpenVINO...) keeps its own size, which is
        today's full-size behaviour, only slower, never wrong.
        """
        path = Path(self._weights)
        if path.suffix != ".onnx" or not path.is_file():
            return self._weights  # .pt weights (and names) take any input size
        try:
            fixed = onnx_input_size(path)
            if fixed is None or fixed == self._crop_size:
                return self._weights
            return str(resized_detector_file(path, self._crop_size, ultralytics_dir()))
        except (UnsupportedGraphError, OSError) as exc:
            log.warning("crop detector keeps the full input size", reason=str(exc))
            self._crop_size = self._settings.image_size
            return self._weights

    def _run(
        self,
        model: Any,
        batch: list[Image],
        *,
        classes: list[int] | None,
        size: int,
        conf: float,
    ) -> list[Any]:
        results: list[Any] = model.predict(
            batch,
            imgsz=size,
            conf=conf,
            iou=self._settings.iou,
            device=self._device.torch_device,
            classes=classes,
            verbose=False,
            **self._precision,
        )
        ran = max(model.predictor.imgsz)  # fixed-shape models run at their own size
        with self._runs_lock:
            self._runs[int(ran)] += len(batch)
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
