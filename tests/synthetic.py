"""Catalog content with chosen embeddings, written through the real ingest write path.

For tests that need exact similarity scores (alert rules, retention) without running
the models: appearances are stored by `Catalog.add_keyframes` like ingest stores them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from surveil.alerts.model import RuleSpec
from surveil.container import Services
from surveil.domain import NewAppearance, NewKeyframe, Space, SurveilError
from surveil.storage.alerts import NewExample

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
DIM = 512


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


TARGET = unit(1)
OTHER = unit(2)


def near(target: np.ndarray, score: float, seed: int) -> np.ndarray:
    """A unit vector whose cosine with `target` is exactly `score`."""
    noise = unit(seed + 1_000_003)  # never the target itself
    noise -= noise.dot(target) * target
    noise /= np.linalg.norm(noise)
    mixed: np.ndarray = score * target + np.sqrt(1 - score**2) * noise
    return mixed.astype(np.float32)


def model_id(services: Services, space: Space = "person") -> str:
    """The configured embedder's model id, so planted vectors agree with the model guard;
    "test@1" where no model file is configured (nothing is embedded there)."""
    try:
        return services.embedder(space).model_id
    except SurveilError:
        return "test@1"


def store_persons(
    services: Services, camera: str, items: Sequence[tuple[float, np.ndarray]]
) -> list[int]:
    """One keyframe per (seconds after T0, embedding), one person appearance each."""
    source = services.catalog.open_source(
        camera_id=camera,
        uri=f"test://{camera}",
        fingerprint=f"{camera}-{uuid.uuid4().hex}",
        start=T0,
        fps=1.0,
    )
    batch = [
        NewKeyframe(
            camera_id=camera,
            source_id=source.id,
            frame_index=i,
            ts=T0 + timedelta(seconds=t),
            width=640,
            height=480,
            image_path=None,
            appearances=(
                NewAppearance(
                    bbox=(1.0, 2.0, 50.0, 120.0),
                    label="person",
                    confidence=0.9,
                    space="person",
                    embedding=vec,
                    model_id=model_id(services),
                    crop_path=f"crops/{camera}/{i}.jpg",
                ),
            ),
        )
        for i, (t, vec) in enumerate(items)
    ]
    return [ids[0] for ids in services.catalog.add_keyframes(batch)]


def make_rule(services: Services, **changes: Any) -> int:
    """A person rule with TARGET as its one example (threshold 0.8, gap 10 s, cooldown 60 s)."""
    spec = RuleSpec(name=changes.pop("name", "suspect"), threshold=0.8, gap_s=10, cooldown_s=60)
    spec = RuleSpec(**{**spec.__dict__, **changes})
    example = NewExample("rules/aa/x.jpg", "x" * 64, model_id(services), TARGET)
    return services.alerts.create_rule(spec, space="person", examples=[example], created_by="t").id
