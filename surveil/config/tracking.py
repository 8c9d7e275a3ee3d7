"""How detections in successive keyframes of one camera become one track.

Defaults were chosen by `benchmarks/bench_tracking.py` on MOT17-mini with its ground
truth, at every frame and every 2nd and 3rd frame (docs/performance.md, "Tracking").
"""

from __future__ import annotations

from pydantic import Field

from surveil.config.base import Section


class TrackingSettings(Section):
    max_age_seconds: float = Field(
        10.0,
        gt=0,
        title="Max age",
        description=(
            "Seconds a track may go unseen (occlusion, a missed detection) and still be "
            "continued; longer than the keyframe heartbeat, so a still object stays one track."
        ),
    )
    min_cosine_person: float = Field(
        0.55,
        ge=-1,
        le=1,
        title="Min appearance similarity (persons)",
        description="Re-id cosine a person detection needs to join a track it does not overlap.",
    )
    min_cosine_other: float = Field(
        0.7,
        ge=-1,
        le=1,
        title="Min appearance similarity (other objects)",
        description="The same for vehicles and other objects (a generic embedder: stricter).",
    )
    overlap_min_cosine: float = Field(
        0.3,
        ge=-1,
        le=1,
        title="Min similarity when overlapping",
        description="Lower floor for a detection overlapping the predicted box (IoU >= 0.5).",
    )
    motion_weight: float = Field(
        0.3,
        ge=0,
        le=1,
        title="Motion weight",
        description="Share of the cost given to box overlap when keyframes are close in time.",
    )
    motion_decay_seconds: float = Field(
        1.0,
        gt=0,
        title="Motion decay",
        description="Time over which box overlap loses weight to appearance (e^-dt/decay).",
    )
    gate_heights: float = Field(
        0.75,
        gt=0,
        title="Motion gate",
        description="Centre distance allowed at once, in box heights, from the predicted box.",
    )
    gate_heights_per_second: float = Field(
        1.5,
        ge=0,
        title="Motion gate growth",
        description="How much the gate widens per second unseen (a walker covers ~1 height/s).",
    )
    quality_weighting: str = Field(
        "confidence_area",
        pattern="^(uniform|confidence|area|sharpness|confidence_area|confidence_sharpness)$",
        title="Pooling weights",
        description="What a member weighs in its track's pooled vector.",
    )
    reuse_embeddings: bool = Field(
        True,
        title="Reuse embeddings of sure continuations",
        description=(
            "A detection that surely continues a track (its box on the track's predicted "
            "box, nothing else near, size unchanged) carries the track's latest vector "
            "instead of running the embedder (benchmarks/bench_reuse.py)."
        ),
    )
    reuse_iou: float = Field(
        0.6,
        ge=0.3,
        le=1.0,
        title="Reuse overlap",
        description="Overlap with the track's predicted box that makes a continuation sure.",
    )
    reembed_seconds: float = Field(
        1.0,
        ge=0,
        title="Re-embed interval",
        description="A track is embedded again at least this often while it is seen.",
    )
    reembed_quality_gain: float = Field(
        1.25,
        ge=1.0,
        title="Re-embed on better crops",
        description=(
            "A crop this many times better (confidence x size) than the track's best "
            "embedded one is embedded, so the pooled vector takes the best crops."
        ),
    )
