"""Retention on real SQLite and PostgreSQL, real FAISS shards and real files.

Policy (default, camera and label days, alert evidence, legal holds), dry run, removal
from rows, index and disk together, whole-day shard drops, and the orphan sweep.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import SettingsFactory, services_for
from retention_world import NOW, Planted, add_alert, plant, sharded, state

from surveil.config import Settings
from surveil.container import Services, build_services
from surveil.jobs.retention import RetentionReport, policy_for, retention_parts, run_retention
from surveil.storage.retention import RetentionPolicy

POLICY = {
    "retention.days": 30,
    "retention.cameras": {"b": 60},
    "retention.labels": {"car": 5},
    "retention.evidence_days": 365,
}
FIVE = ("appearances", "keyframes", "vectors", "files", "bytes")


@pytest.fixture
def settings(make_settings: SettingsFactory, database_url: str) -> Settings:
    return make_settings(**{"database.url": database_url, **POLICY})


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    with services_for(settings) as built:
        yield built


def _run(services: Services, **kwargs: Any) -> RetentionReport:
    kwargs.setdefault("now", NOW)
    return run_retention(retention_parts(services), services.settings.retention, **kwargs)


def _five(report: RetentionReport) -> dict[str, int]:
    return {k: v for k, v in report.to_dict().items() if k in FIVE}


@dataclass
class World:
    """Which planted rows the policy must keep and which it must remove."""

    gone_apps: set[int]
    gone_keyframes: set[int]
    gone_files: set[str]


def _only(planted: list[Planted]) -> Planted:
    assert len(planted) == 1
    return planted[0]


def _policy_world(services: Services) -> World:
    """Every rule of the policy, each with a row it keeps and a row it removes."""
    gone = World(set(), set(), set())

    def expires(p: Planted, *, keyframe: bool = True, apps: slice = slice(None)) -> None:
        gone.gone_apps.update(p.appearance_ids[apps])
        gone.gone_files.update(p.crop_paths[apps])
        if keyframe:
            gone.gone_keyframes.add(p.keyframe_id)
            gone.gone_files.add(p.image_path)

    expires(_only(plant(services, "a", age_days=40)))  # past the default 30 days
    plant(services, "a", age_days=10)  # within
    held = _only(plant(services, "a", age_days=40))
    services.retention.set_appearance_holds(held.appearance_ids, True)
    evidence = _only(plant(services, "a", age_days=40))
    add_alert(services, evidence.appearance_ids[0])  # kept for evidence_days
    old_evidence = _only(plant(services, "a", age_days=400))
    add_alert(services, old_evidence.appearance_ids[0], acknowledged=True)
    expires(old_evidence)  # past evidence_days too: goes with its alert
    mixed = _only(plant(services, "a", age_days=10, labels=("person", "car")))
    expires(mixed, keyframe=False, apps=slice(1, 2))  # car: 5 days; the keyframe stays
    expires(_only(plant(services, "a", age_days=10, labels=("car",))), keyframe=False)
    plant(services, "b", age_days=40)  # camera b keeps 60 days
    expires(_only(plant(services, "b", age_days=70)))
    expires(_only(plant(services, "b", age_days=7, labels=("car",))), keyframe=False)
    plant(services, "c", age_days=100, labels=("person", "car"))
    services.retention.set_camera_hold("c", True)
    return gone


def test_policy_days_per_label_win_over_camera_over_default() -> None:
    policy = RetentionPolicy(NOW, 30, {"b": 60}, {"car": 5}, 365)
    assert policy.days_for(camera="a") == 30
    assert policy.days_for(camera="b") == 60
    assert policy.days_for(camera="b", label="car") == 5
    assert policy.days_for(camera="b", label="person") == 60
    assert policy.cutoff(30) == NOW - timedelta(days=30)
    assert policy.shortest_days == 5
    assert RetentionPolicy(NOW, 30, {}, {}, 365).shortest_days == 30


def test_run_removes_exactly_what_policy_says_everywhere(services: Services) -> None:
    world = _policy_world(services)
    before = state(services)
    report = _run(services)

    after = state(services)
    assert after.appearances == before.appearances - world.gone_apps
    assert after.keyframes == before.keyframes - world.gone_keyframes
    assert after.files == before.files - world.gone_files
    kept_vectors = after.vectors["person"] | after.vectors["general"]
    assert kept_vectors == after.appearances  # vectors left == rows left
    assert (after.alerts, after.deliveries, after.attempts) == (1, 1, 1)
    assert after.journal == 0
    assert _five(report) == {
        "appearances": 6,
        "keyframes": 3,
        "vectors": 6,
        "files": 9,
        "bytes": 6 * 10 + 3 * 100,
    }
    assert report.per_camera["a"].appearances == 4 and report.per_camera["b"].appearances == 2
    assert "c" not in report.per_camera

    again = _run(services)  # idempotent: nothing left to do
    assert all(v == 0 for v in _five(again).values())
    assert state(services) == after


def test_dry_run_changes_nothing_and_predicts_the_run(services: Services) -> None:
    _policy_world(services)
    index_dir = services.settings.storage.root / "index"
    stamps = {p: p.stat().st_mtime_ns for p in index_dir.rglob("*") if p.is_file()}
    before = state(services)

    preview = _run(services, dry_run=True)

    assert state(services) == before
    assert {p: p.stat().st_mtime_ns for p in index_dir.rglob("*") if p.is_file()} == stamps
    assert preview.dry_run
    done = _run(services)
    assert _five(preview) == _five(done)
    assert preview.to_dict()["per_camera"] == done.to_dict()["per_camera"]


def test_legal_hold_cleared_lets_policy_apply_again(services: Services) -> None:
    kept = _only(plant(services, "c", age_days=100))
    services.retention.set_camera_hold("c", True)
    assert _run(services).appearances == 0
    services.retention.set_camera_hold("c", False)
    report = _run(services)
    assert report.appearances == 1 and report.keyframes == 1
    assert kept.appearance_ids[0] not in state(services).appearances


def test_an_expired_day_is_a_shard_file_delete(services: Services, settings: Settings) -> None:
    whole = plant(services, "a", age_days=40, count=5)  # a UTC day that expires entirely
    partial = plant(services, "a", age_days=38, count=3)  # a day that keeps one held row
    recent = plant(services, "a", age_days=2, count=4)  # recent: never touched
    services.retention.set_appearance_holds(partial[0].appearance_ids, True)
    person = settings.storage.root / "index" / "person"
    day = {p.day: p for p in _shard_files(person)}
    whole_day = (NOW - timedelta(days=40)).date()
    partial_day = (NOW - timedelta(days=38)).date()
    recent_day = (NOW - timedelta(days=2)).date()
    recent_stamp = day[recent_day].path.stat().st_mtime_ns

    fresh = build_services(settings, reconcile_index=False)  # nothing loaded yet
    try:
        report = _run(fresh)
        loaded = sharded(fresh).loaded_days("person")
    finally:
        fresh.close()

    assert report.index.shards_dropped == 1 and report.index.shards_edited == 1
    assert report.vectors == 5 + 2
    assert not day[whole_day].path.exists()
    assert day[partial_day].path.exists()
    assert day[recent_day].path.stat().st_mtime_ns == recent_stamp
    assert whole_day not in loaded and recent_day not in loaded  # dropped unread; not read
    after = state(services)
    kept = {*partial[0].appearance_ids, *(i for p in recent for i in p.appearance_ids)}
    assert after.appearances == kept and after.vectors["person"] == kept
    assert not {i for p in whole for i in p.appearance_ids} & after.appearances


@dataclass
class _Shard:
    day: Any
    path: Path


def _shard_files(folder: Path) -> list[_Shard]:
    from datetime import date

    return [_Shard(date.fromisoformat(p.stem), p) for p in folder.glob("*.faiss")]


def _age(path: Path, days: float) -> None:
    """Make a file look written `days` ago by the wall clock (the sweep's grace is real time)."""
    old = time.time() - days * 86400
    os.utime(path, (old, old))


def test_orphan_sweep_finds_files_vectors_and_rows_without_files(
    services: Services, settings: Settings
) -> None:
    kept = plant(services, "a", age_days=1, count=3)
    root = settings.storage.root
    orphans = {
        "crops/a/999/00000000_000.jpg": True,  # no row: swept
        "keyframes/ghost/1/00000001.jpg": True,  # no row, unknown camera: swept
        "crops/a/1/.00000007_000.jpg.tmp-123-abcd": True,  # a crashed write: swept
        "crops/a/998/00000000_000.jpg": False,  # no row but written just now: ingest?
        "audit/ab/abcdef.jpg": False,  # audited search crop: never swept
        "rules/ab/abcdef.jpg": False,  # rule example: never swept
    }
    for key, old in orphans.items():
        services.blobs.put(key, b"O" * 7)
        if old:
            _age(root / key, 2)
    services.index.add(
        "person", np.array([10**9], np.int64), np.ones((1, 16), np.float32), [NOW.date()]
    )
    services.index.save()
    missing = kept[1].crop_paths[0]
    (root / missing).unlink()  # a row whose file is gone: reported, kept

    # The full sweep, in one run (the incremental one: test_retention_slices.py).
    preview = _run(services, dry_run=True, full_sweep=True)
    assert preview.orphans is not None
    dry = preview.orphans.to_dict()
    assert (dry["files"], dry["bytes"], dry["vectors"]) == (3, 21, 1)
    assert dry["rows_missing_files"] == {"appearances": 1, "keyframes": 0}
    assert all((root / key).exists() for key in orphans)

    report = _run(services, full_sweep=True)
    assert report.orphans is not None
    done = report.orphans.to_dict()
    assert (done["files"], done["bytes"], done["vectors"]) == (3, 21, 1)
    assert done["rows_missing_files"] == {"appearances": 1, "keyframes": 0}
    assert done["missing_examples"] == [missing]
    for key, swept in orphans.items():
        assert (root / key).exists() != swept, key
    after = state(services)
    assert after.vectors["person"] == after.appearances
    assert len(after.appearances) == 3  # the row without a file is kept
    assert _run(services, full_sweep=True).orphans.to_dict()["files"] == 0  # type: ignore[union-attr]


def test_policy_from_settings_uses_every_override(settings: Settings) -> None:
    policy = policy_for(settings.retention, NOW)
    assert policy.days_for(camera="b", label="car") == 5
    assert policy.evidence_days == 365


def test_sizes_recorded_at_ingest_are_used_without_asking_the_blob_store(
    services: Services,
) -> None:
    """A row's recorded bytes (what ingest stores) are what retention counts for it; only
    rows from before the byte columns are sized through the blob store."""
    from sqlalchemy import update

    from surveil.storage.tables import AppearanceRow, KeyframeRow

    recorded = _only(plant(services, "a", age_days=40))  # files: crop 10 B, keyframe 100 B
    _only(plant(services, "b", age_days=70))  # no recorded sizes: asked of the disk
    with services.engine.begin() as conn:
        conn.execute(
            update(AppearanceRow)
            .where(AppearanceRow.keyframe_id == recorded.keyframe_id)
            .values(crop_bytes=7)
        )
        conn.execute(
            update(KeyframeRow).where(KeyframeRow.id == recorded.keyframe_id).values(image_bytes=70)
        )
    dry = _run(services, dry_run=True)
    assert (dry.per_camera["a"].files, dry.per_camera["a"].bytes) == (2, 7 + 70)
    assert (dry.per_camera["b"].files, dry.per_camera["b"].bytes) == (2, 10 + 100)
    real = _run(services)
    assert real.per_camera["a"].bytes == 7 + 70  # what the rows said
    assert real.bytes == 2 * (10 + 100)  # the totals: what the deletes really freed
