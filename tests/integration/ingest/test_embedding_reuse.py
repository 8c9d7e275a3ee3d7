"""Skipping the embedder for sure continuations is only sound if embedding would agree.

The UA-DETRAC junction (dozens of vehicles, most of them seen a tenth of a second apart)
is ingested by the real pipeline. Most appearances must then carry their track's vector
instead of being embedded (the saving), and embedding their stored crops afterwards must
give vectors close to what they carry, and tracks whose pooled vectors are close to the
pooling of every member (what a search scores against).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from conftest import SettingsFactory
from sqlalchemy import create_engine, text

from surveil.container import build_services
from surveil.ingest.pipeline import IngestOptions
from surveil.storage.index_feed import vectors_from_blobs
from surveil.tracking.state import pool_vectors
from surveil.vision.crops import decode_image

pytestmark = pytest.mark.slow

JUNCTION = "videos/ua_detrac_evadb/ua_detrac.mp4"


def test_carried_vectors_agree_with_the_crops_own_embeddings(
    make_settings: SettingsFactory, models_dir: Path, shared_data: Path
) -> None:
    settings = make_settings(
        model_dir=str(models_dir),
        **{"detector.weights": str(models_dir / "yolov8n_int8_dynamic.onnx")},
    )
    services = build_services(settings)
    try:
        start = datetime(2026, 6, 1, 12, tzinfo=UTC)
        stats = services.ingest(str(shared_data / JUNCTION), IngestOptions("junction"), start=start)
        engine = create_engine(settings.database_url)
        with engine.connect() as conn:
            skipped = conn.execute(text("SELECT count(*) FROM appearances WHERE quality = 0"))
            assert stats.reused_embeddings == skipped.scalar_one()
            rows = conn.execute(
                text(
                    "SELECT track_id, crop_path, embedding, dim, quality FROM appearances "
                    "WHERE space = 'general' ORDER BY ts, id"
                )
            ).all()
        engine.dispose()
        images = [decode_image(services.blobs.get(r[1]), what=r[1]) for r in rows]
        fresh = services.embedder("general").embed(images)
    finally:
        services.close()
    stored = vectors_from_blobs("general", [r[2] for r in rows], [r[3] for r in rows])
    carried = [i for i, r in enumerate(rows) if r[4] == 0.0]
    assert len(carried) >= 0.5 * len(rows), (len(carried), len(rows))  # the saving is real
    cosine = np.sum(stored[carried] * fresh[carried], axis=1)
    assert float(np.median(cosine)) >= 0.85, np.quantile(cosine, [0.05, 0.5])
    assert float(np.quantile(cosine, 0.05)) >= 0.7, np.quantile(cosine, [0.05, 0.5])
    members: dict[int, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        members[int(r[0])].append(i)
    agreement = [
        float(
            np.dot(
                pool_vectors(fresh[idx], [rows[i][4] for i in idx]),
                pool_vectors(fresh[idx], [1.0] * len(idx)),
            )
        )
        for idx in members.values()
        if any(rows[i][4] == 0.0 for i in idx)
    ]
    assert len(agreement) >= 20
    assert float(np.quantile(agreement, 0.05)) >= 0.9, sorted(agreement)[:5]
