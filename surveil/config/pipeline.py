"""Ingest and search: keyframe selection, crops, the ingest loop, index and search."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from surveil.config.base import Section

VEHICLE_LABELS = ["bicycle", "car", "motorcycle", "bus", "truck"]


class KeyframeSettings(Section):
    motion_threshold: float = Field(
        0.01,
        ge=0.0,
        le=1.0,
        title="Motion threshold",
        description="Fraction of pixels that must change to keep a frame.",
    )
    pixel_threshold: int = Field(
        25, ge=1, le=255, title="Pixel threshold", description="Grey-level change counted."
    )
    histogram_threshold: float = Field(
        0.25,
        ge=0.0,
        le=1.0,
        title="Histogram threshold",
        description="Bhattacharyya distance between colour histograms that counts as a cut.",
    )
    heartbeat_seconds: float = Field(
        5.0, gt=0.0, title="Heartbeat", description="Keep a frame at least this often."
    )
    analysis_width: int = Field(
        160, ge=32, le=1024, title="Analysis width", description="Width frames are compared at."
    )


class CropSettings(Section):
    padding: float = Field(
        0.1, ge=0.0, le=1.0, title="Padding", description="Box padding as a fraction of its size."
    )
    min_size: int = Field(
        16, ge=1, title="Minimum size", description="Boxes narrower or shorter are dropped."
    )
    thumbnail_max_side: int = Field(
        256, ge=32, le=2048, title="Thumbnail size", description="Longest side of stored crops."
    )


class IndexSettings(Section):
    factory: str = Field(
        "Flat",
        title="FAISS factory string",
        description="Index type per shard, e.g. 'Flat' (exact) or 'HNSW32' (approximate).",
    )
    shard_by: Literal["day", "none"] = Field(
        "day", title="Sharding", description="One index file per UTC day, or one in all."
    )


class SearchSettings(Section):
    overfetch: int = Field(
        4, ge=1, le=100, title="Over-fetch", description="Candidates fetched per result asked."
    )
    max_candidates: int = Field(
        20_000, ge=10, title="Max candidates", description="Deepest a filtered search goes."
    )
    gap_seconds: float = Field(
        10.0, gt=0.0, title="Sighting gap", description="Hits further apart split a sighting."
    )
    limit: int = Field(50, ge=1, le=10_000, title="Limit", description="Appearances returned.")
    min_score: float = Field(
        0.0, ge=-1.0, le=1.0, title="Minimum score", description="Cosine similarity floor."
    )
    label_groups: dict[str, list[str]] = Field(
        default_factory=lambda: {"person": ["person"], "vehicle": list(VEHICLE_LABELS)},
        title="Label groups",
        description="Labels that may form one sighting (a car seen as a truck is one vehicle).",
    )


class IngestSettings(Section):
    batch_size: int = Field(
        8, ge=1, le=512, title="Keyframe batch", description="Keyframes per detect/commit."
    )
    queue_size: int = Field(
        8,
        ge=0,
        le=256,
        title="Decode-ahead queue",
        description="Frames decoded ahead of the models by a reader thread; 0 decodes inline.",
    )
    reuse_static_embeddings: bool = Field(
        True,
        title="Reuse static embeddings",
        description=(
            "A box repeating a same-label box of the previous keyframe (IoU >= static_iou) "
            "reuses its embedding instead of running the embedder again."
        ),
    )
    static_iou: float = Field(
        0.9, ge=0.5, le=1.0, title="Static IoU", description="Overlap that counts as unmoved."
    )
