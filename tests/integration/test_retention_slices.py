"""The incremental orphan sweep on real SQLite and PostgreSQL, real files and FAISS shards.

A cycle of `retention.sweep_slices` runs finds every orphan file and vector exactly once
and never removes a file a row references (even from another source's folder, or one
younger than the grace period); a source written to since the last sweep is swept on the
next run whatever its slice; a dry run previews without moving the rotation.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import SettingsFactory, services_for
from retention_world import NOW, Planted, plant, state
from sqlalchemy import update

from surveil.config import Settings
from surveil.container import Services
from surveil.jobs.retention import RetentionReport, retention_parts, run_retention
from surveil.jobs.retention_slices import STATE_NAME, SweepState, in_slice
from surveil.storage.tables import AppearanceRow

SLICES = 3


@pytest.fixture
def settings(make_settings: SettingsFactory, database_url: str) -> Settings:
    # Nothing expires: only the sweep acts.
    return make_settings(
        **{"database.url": database_url, "retention.days": 30, "retention.sweep_slices": SLICES}
    )


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    with services_for(settings) as built:
        yield built


def _run(services: Services, **kwargs: Any) -> RetentionReport:
    kwargs.setdefault("now", NOW)
    return run_retention(retention_parts(services), services.settings.retention, **kwargs)


def _orphan(services: Services, key: str, *, age_days: float = 2) -> None:
    services.blobs.put(key, b"O" * 7)
    old = time.time() - age_days * 86400
    os.utime(services.settings.storage.root / key, (old, old))


def _state_file(settings: Settings) -> Path:
    return settings.storage.root / STATE_NAME


def test_a_cycle_of_slices_removes_every_orphan_once_and_nothing_owned(
    services: Services, settings: Settings
) -> None:
    root = settings.storage.root
    planted = [
        plant(services, cam, age_days=1 + i, count=2, seed=i) for i, cam in enumerate("abab")
    ]
    sources = sorted({p.image_path.split("/")[2] for group in planted for p in group})
    orphans = [
        *(f"crops/{cam}/{src}/9999_000.jpg" for cam in "ab" for src in sources),
        *(f"keyframes/{cam}/{src}/99999999.jpg" for cam in "ab" for src in sources),
        "crops/ghost/77/00000001_000.jpg",  # no camera, no source row
        "keyframes/a/12345/00000001.jpg",  # a source id the catalog never had
    ]
    for key in orphans:
        _orphan(services, key)
    young = f"crops/a/{sources[0]}/young.jpg"
    _orphan(services, young, age_days=0)  # maybe an ingest about to commit: kept
    # A row that references a file in another source's folder: never an orphan.
    other = planted[1][0].image_path.split("/")[2]  # camera b's first source
    moved = f"crops/b/{other}/moved.jpg"
    _orphan(services, moved)
    owner = planted[0][0].appearance_ids[0]
    with services.engine.begin() as conn:
        conn.execute(update(AppearanceRow).where(AppearanceRow.id == owner).values(crop_path=moved))
    services.index.add(
        "person", np.array([10**9], np.int64), np.ones((1, 16), np.float32), [NOW.date()]
    )
    services.index.save()
    before = state(services)

    preview = _run(services, dry_run=True)
    assert not _state_file(settings).exists()  # a dry run does not move the rotation
    found = {"files": 0, "bytes": 0, "vectors": 0}
    for _ in range(SLICES):
        report = _run(services)
        assert report.orphans is not None
        for k in found:
            found[k] += getattr(report.orphans, k)
        assert report.orphans.rows_missing_files == {"appearances": 0, "keyframes": 0}
    assert preview.orphans is not None and preview.orphans.files <= found["files"]

    assert found == {"files": len(orphans), "bytes": 7 * len(orphans), "vectors": 1}
    assert not any((root / key).exists() for key in orphans)
    assert (root / young).exists() and (root / moved).exists()
    after = state(services)
    assert after.appearances == before.appearances and after.keyframes == before.keyframes
    assert before.files - after.files == set(orphans)
    assert after.vectors["person"] == after.appearances
    assert SweepState.load(_state_file(settings)).runs == SLICES
    # A second cycle finds nothing more.
    again = [_run(services).orphans for _ in range(SLICES)]
    assert sum(o.files + o.vectors for o in again if o is not None) == 0


def test_a_source_written_since_the_last_sweep_is_swept_whatever_its_slice(
    make_settings: SettingsFactory, database_url: str
) -> None:
    many = 300  # so that neither folder below is in run 1's slice (asserted)
    settings = make_settings(
        **{"database.url": database_url, "retention.days": 30, "retention.sweep_slices": many}
    )
    with services_for(settings) as services:
        old_src = plant(services, "a", age_days=3, count=1)[0].image_path.split("/")[2]
        # No grace: "since the last sweep" is then exactly since run 0 started.
        first = _run(services, grace=timedelta(0))  # run 0
        assert first.orphans is not None and first.orphans.files == 0
        new_src = plant(services, "b", age_days=1, count=1)[0].image_path.split("/")[2]
        assert not in_slice(f"b/{new_src}/", 1, many) and not in_slice(f"a/{old_src}/", 1, many)
        crashed = f"crops/b/{new_src}/00000009_000.jpg"  # a batch that never committed
        untouched = f"crops/a/{old_src}/00000009_000.jpg"  # hands on the data
        _orphan(services, crashed)
        _orphan(services, untouched)

        report = _run(services, grace=timedelta(0))  # run 1
        root = settings.storage.root
        assert report.orphans is not None and report.orphans.files == 1
        assert not (root / crashed).exists()
        assert (root / untouched).exists()  # its source was not written to: not its turn
        full = _run(services, grace=timedelta(0), full_sweep=True)
        assert full.orphans is not None and full.orphans.files == 1
        assert not (root / untouched).exists()


def test_a_file_a_row_of_another_source_references_is_never_removed(
    services: Services, settings: Settings
) -> None:
    planted = [plant(services, "a", age_days=1, count=1, seed=i)[0] for i in range(4)]
    # The owner's own folder must not be swept in run 0, so only the exact check saves it.
    owner = next(p for p in planted if not in_slice(_folder(p), 0, SLICES))
    folder = next(f"b/{n}/" for n in range(50_000, 50_100) if in_slice(f"b/{n}/", 0, SLICES))
    moved = f"crops/{folder}moved.jpg"
    _orphan(services, moved)
    _orphan(services, f"crops/{folder}orphan.jpg")
    with services.engine.begin() as conn:
        stmt = update(AppearanceRow).where(AppearanceRow.id == owner.appearance_ids[0])
        conn.execute(stmt.values(crop_path=moved))

    report = _run(services)  # run 0: only its slice, nothing "written since"
    assert report.orphans is not None and report.orphans.files == 1
    assert (settings.storage.root / moved).exists()
    assert not (settings.storage.root / f"crops/{folder}orphan.jpg").exists()


def _folder(p: Planted) -> str:
    return p.image_path.split("/", 1)[1].rpartition("/")[0] + "/"


def test_rows_missing_files_are_reported_for_the_folders_swept(
    services: Services, settings: Settings
) -> None:
    kept = plant(services, "a", age_days=1, count=2)
    missing = kept[1].crop_paths[0]
    (settings.storage.root / missing).unlink()
    reports = [_run(services, grace=timedelta(0)).orphans for _ in range(SLICES)]
    counts = [o.rows_missing_files["appearances"] for o in reports if o is not None]
    assert sum(counts) == 1  # once per cycle, in the run whose slice holds the folder
    examples = [key for o in reports if o is not None for key in o.missing_examples]
    assert examples == [missing]
    assert state(services).appearances == {a for p in kept for a in p.appearance_ids}
