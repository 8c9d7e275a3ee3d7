"""A catalog planted through the real storage path, for retention tests: rows, files, vectors.

Appearances are stored by `Catalog.add_keyframes` as ingest stores them, their crops and
keyframes by the blob store, their (synthetic) embeddings by the real FAISS index; no
model runs, so a test can lay out exactly which days and cameras hold what.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import numpy as np
from sqlalchemy import func, insert, select

from surveil.container import Services
from surveil.domain import SPACES, NewAppearance, NewKeyframe, Space
from surveil.index.sharded import ShardedFaissIndex
from surveil.storage.tables import (
    AlertRow,
    AlertRuleRow,
    AppearanceRow,
    DeliveryAttemptRow,
    DeliveryRow,
    KeyframeRow,
    RetentionJournalRow,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DIM = 16


@dataclass(frozen=True)
class Planted:
    """One planted keyframe and its appearance ids."""

    keyframe_id: int
    appearance_ids: list[int]
    image_path: str
    crop_paths: list[str]


def plant(
    services: Services,
    camera: str,
    *,
    age_days: float,
    labels: Sequence[str] = ("person",),
    count: int = 1,
    seed: int = 0,
) -> list[Planted]:
    """`count` keyframes of `camera` stamped `age_days` before NOW, one appearance per label."""
    source = services.catalog.open_source(
        camera_id=camera,
        uri=f"test://{camera}",
        fingerprint=uuid.uuid4().hex,
        start=NOW,
        fps=1.0,
    )
    rng = np.random.default_rng(seed)
    ts0 = NOW - timedelta(days=age_days)
    batch, blobs = [], []
    for i in range(count):
        ts = ts0 + timedelta(seconds=i)
        image = f"keyframes/{camera}/{source.id}/{i:08d}.jpg"
        blobs.append((image, b"K" * 100))
        apps = []
        for j, label in enumerate(labels):
            crop = f"crops/{camera}/{source.id}/{i:08d}_{j:03d}.jpg"
            blobs.append((crop, b"C" * 10))
            vec = rng.standard_normal(DIM).astype(np.float32)
            apps.append(
                NewAppearance(
                    bbox=(1.0, 2.0, 30.0, 60.0),
                    label=label,
                    confidence=0.9,
                    space=space_of(label),
                    embedding=vec / np.linalg.norm(vec),
                    model_id="test@1",
                    crop_path=crop,
                )
            )
        batch.append(NewKeyframe(camera, source.id, i, ts, 64, 48, image, tuple(apps)))
    services.blobs.put_many(blobs)
    ids = services.catalog.add_keyframes(batch)
    _index(services, batch, ids)
    return [
        Planted(
            keyframe_id=_keyframe_id(services, kf),
            appearance_ids=group,
            image_path=kf.image_path or "",
            crop_paths=[a.crop_path for a in kf.appearances],
        )
        for kf, group in zip(batch, ids, strict=True)
    ]


def space_of(label: str) -> Space:
    return "person" if label == "person" else "general"


def _index(services: Services, batch: Sequence[NewKeyframe], ids: list[list[int]]) -> None:
    for space in SPACES:
        rows = [
            (i, kf.ts.date(), app.embedding)
            for kf, group in zip(batch, ids, strict=True)
            for i, app in zip(group, kf.appearances, strict=True)
            if app.space == space
        ]
        if rows:
            services.index.add(
                space,
                np.array([r[0] for r in rows], np.int64),
                np.stack([np.asarray(r[2], np.float32) for r in rows]),
                [r[1] for r in rows],
            )
    services.index.save()


def _keyframe_id(services: Services, kf: NewKeyframe) -> int:
    stmt = select(KeyframeRow.id).where(
        KeyframeRow.source_id == kf.source_id, KeyframeRow.frame_index == kf.frame_index
    )
    with services.engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())


def add_alert(services: Services, appearance_id: int, *, acknowledged: bool = False) -> int:
    """An alert on an appearance, with a delivery and an attempt, as evaluation stores them."""
    app = select(AppearanceRow.camera_id, AppearanceRow.label, AppearanceRow.ts)
    with services.engine.begin() as conn:
        rule_id = conn.execute(select(AlertRuleRow.id).limit(1)).scalar()
        if rule_id is None:
            rule_id = conn.execute(
                insert(AlertRuleRow).values(_RULE).returning(AlertRuleRow.id)
            ).scalar_one()
        camera, label, ts = conn.execute(app.where(AppearanceRow.id == appearance_id)).one()
        acked = {"acknowledged_at": NOW, "acknowledged_by": "t"} if acknowledged else {}
        alert_id = conn.execute(
            insert(AlertRow)
            .values(rule_id=rule_id, appearance_id=appearance_id, camera_id=camera, label=label)
            .values(score=0.9, ts=ts, last_ts=ts, hits=1, created_at=NOW, **acked)
            .returning(AlertRow.id)
        ).scalar_one()
        delivery = conn.execute(
            insert(DeliveryRow)
            .values(alert_id=alert_id, url="http://127.0.0.1:9/", state="delivered")
            .values(attempts=1, next_at=NOW)
            .returning(DeliveryRow.id)
        ).scalar_one()
        conn.execute(
            insert(DeliveryAttemptRow).values(
                delivery_id=delivery, ts=NOW, status_code=200, seconds=0.1
            )
        )
    return int(alert_id)


_RULE: dict[str, Any] = {
    "name": "watch",
    "space": "person",
    "threshold": 0.8,
    "cameras": "[]",
    "labels": "[]",
    "interval_s": 60,
    "cooldown_s": 60,
    "gap_s": 10.0,
    "enabled": True,
    "webhooks": "[]",
    "watermark": 0,
    "created_at": NOW,
    "updated_at": NOW,
    "created_by": "t",
}


@dataclass(frozen=True)
class State:
    """Everything retention touches, read from the database and the disk (not from memory)."""

    appearances: frozenset[int]
    keyframes: frozenset[int]
    alerts: int
    deliveries: int
    attempts: int
    journal: int
    files: frozenset[str]
    vectors: dict[str, frozenset[int]]


def _ids(conn: Any, column: Any) -> frozenset[int]:
    return frozenset(int(i) for i in conn.execute(select(column)).scalars())


def _count(conn: Any, table: Any) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def blob_files(root: Path) -> frozenset[str]:
    """Every file under root/crops and root/keyframes, as blob keys."""
    return frozenset(
        p.relative_to(root).as_posix()
        for top in ("crops", "keyframes")
        for p in (root / top).rglob("*")
        if p.is_file()
    )


def index_ids(services: Services) -> dict[str, frozenset[int]]:
    """Vector ids per space as saved on disk (a fresh index object reads the files)."""
    settings = services.settings
    fresh = ShardedFaissIndex(
        settings.storage.root / "index",
        factory=settings.index.factory,
        shard_by=settings.index.shard_by,
    )
    out: dict[str, frozenset[int]] = {}
    for space in SPACES:
        by_day = fresh.ids_by_day(space)
        out[space] = frozenset(int(i) for ids in by_day.values() for i in ids)
    return out


def state(services: Services) -> State:
    """A snapshot to compare before and after a run."""
    with services.engine.connect() as conn:
        return State(
            appearances=_ids(conn, AppearanceRow.id),
            keyframes=_ids(conn, KeyframeRow.id),
            alerts=_count(conn, AlertRow),
            deliveries=_count(conn, DeliveryRow),
            attempts=_count(conn, DeliveryAttemptRow),
            journal=_count(conn, RetentionJournalRow),
            files=blob_files(services.settings.storage.root),
            vectors=index_ids(services),
        )


def sharded(services: Services) -> ShardedFaissIndex:
    """The live index as its concrete class (for shard-level assertions)."""
    return cast(ShardedFaissIndex, services.index)
