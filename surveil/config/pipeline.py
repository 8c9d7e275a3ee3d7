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


#: `benchmarks/bench_min_score.py`: the lowest floor at which at most 1% of other objects'
#: tracks score as high as the query (OSNet x0.25 on MOT17-mini pedestrians, MobileNetV2 on
#: UA-DETRAC vehicles), with the search's own scoring (pooled vector or best member).
CALIBRATED_MIN_SCORE = {"person": 0.68, "general": 0.88}


class RerankSettings(Section):
    """Second stage over the top candidate tracks: k-reciprocal re-ranking (Zhong et al. 2017)."""

    mode: Literal["off", "k_reciprocal"] = Field(
        "off",
        title="Re-ranking mode",
        description=(
            "'k_reciprocal' re-orders the top candidate tracks by the k-reciprocal Jaccard "
            "distance; 'off' keeps cosine order. Off by default: it did not measurably help "
            "on the sample data (docs/performance.md, 'Re-ranking'). A request may override."
        ),
    )
    k1: int = Field(
        20, ge=1, le=200, title="k1", description="Neighbours whose reciprocity is checked."
    )
    k2: int = Field(
        6, ge=1, le=100, title="k2", description="Neighbours averaged by local query expansion."
    )
    lambda_: float = Field(
        0.3,
        ge=0.0,
        le=1.0,
        alias="lambda",
        title="Lambda",
        description="Weight of the cosine distance against the Jaccard distance in d*.",
    )
    depth: int = Field(
        200,
        ge=2,
        le=5000,
        title="Depth",
        description=(
            "Candidate tracks (best by cosine) that enter the neighbour graph; the cost "
            "grows with depth, not with the index."
        ),
    )


class SearchSettings(Section):
    overfetch: int = Field(
        4, ge=1, le=100, title="Over-fetch", description="Candidates fetched per result asked."
    )
    max_candidates: int = Field(
        20_000, ge=10, title="Max candidates", description="Deepest a filtered search goes."
    )
    gap_seconds: float = Field(
        10.0,
        gt=0.0,
        title="Sighting gap (unused)",
        description="No longer used: a sighting is one track. Kept so older configs load.",
    )
    limit: int = Field(
        50, ge=1, le=10_000, title="Limit", description="Sightings (tracks) returned."
    )
    min_score: float | None = Field(
        None,
        ge=-1.0,
        le=1.0,
        title="Minimum score",
        description="Cosine similarity floor for every space; unset: min_score_by_space.",
    )
    min_score_by_space: dict[str, float] = Field(
        default_factory=lambda: dict(CALIBRATED_MIN_SCORE),
        title="Minimum score per space",
        description=(
            "Default floor of each embedding space, calibrated on the sample data so that "
            "at most 1% of other objects' tracks pass (docs/performance.md, 'Default "
            "min_score'); a space not named here has no floor."
        ),
    )

    refine_margin: float = Field(
        0.2,
        ge=0.0,
        le=1.0,
        title="Refine margin",
        description=(
            "Tracks whose pooled vector scores up to this much under min_score are re-scored "
            "by their members (a crop from one end of a long track can be far from its mean)."
        ),
    )

    rerank: RerankSettings = Field(
        default_factory=RerankSettings,
        title="Re-ranking",
        description="Second stage that re-orders the candidates; scores stay cosine.",
    )

    def floor(self, space: str) -> float:
        """The min_score a search of `space` uses when the operator gives none."""
        if self.min_score is not None:
            return self.min_score
        return self.min_score_by_space.get(space, -1.0)

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
        title="Reuse static embeddings (unused)",
        description="No longer used: see tracking.reuse_embeddings. Kept so older configs load.",
    )
    static_iou: float = Field(
        0.9,
        ge=0.5,
        le=1.0,
        title="Static IoU (unused)",
        description="No longer used: see tracking.reuse_iou. Kept so older configs load.",
    )
