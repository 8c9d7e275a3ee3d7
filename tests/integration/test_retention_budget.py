"""Size budgets and the storage estimate on real SQLite and PostgreSQL, FAISS and files.

Frames are planted one per day (no age rule is due), so every removal is the budget's;
holds and alert evidence are planted among the oldest, where a budget would look first.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from conftest import SettingsFactory, services_for
from retention_world import NOW, Planted, add_alert, blob_files, plant, state

from surveil.config import Settings
from surveil.container import Services
from surveil.files import Disk
from surveil.jobs.retention import RetentionReport, measure, retention_parts, run_retention
from surveil.jobs.retention_budget import frame_cost
from surveil.jobs.storage import check_storage, disk_excess, storage_estimate
from surveil.jobs.usage import Usage
from surveil.search.render import iso


@dataclass
class World:
    services: Services
    frames: dict[str, list[Planted]]  # per camera, oldest first
    held: Planted
    evidence: Planted


def _world(services: Services) -> World:
    frames: dict[str, list[Planted]] = {"a": [], "b": []}
    # a: 30, 28, .. 16 days old; b: 29, 27, .. 15: interleaved in time, a day shard each,
    # so a removed frame takes its whole shard file (tiny shards are mostly header).
    for n in range(8):
        frames["a"] += plant(services, "a", age_days=30 - 2 * n)
        frames["b"] += plant(services, "b", age_days=29 - 2 * n)
    held, evidence = frames["a"][0], frames["b"][0]  # the two oldest of all
    services.retention.set_appearance_holds(held.appearance_ids, True)
    add_alert(services, evidence.appearance_ids[0])
    return World(services, frames, held, evidence)


def _settings(make_settings: SettingsFactory, database_url: str, **extra: Any) -> Settings:
    return make_settings(**{"database.url": database_url, "retention.days": 60, **extra})


@pytest.fixture
def world(make_settings: SettingsFactory, database_url: str) -> Iterator[World]:
    with services_for(_settings(make_settings, database_url)) as services:
        yield _world(services)


def _with(world: World, **retention: Any) -> Services:
    """The same catalog and files under other retention settings."""
    settings = world.services.settings
    changed = settings.retention.model_copy(update=retention)
    return _rebuilt(world.services, settings.model_copy(update={"retention": changed}))


def _rebuilt(services: Services, settings: Settings) -> Services:
    from dataclasses import replace

    return replace(services, settings=settings)


def _run(services: Services, **kwargs: Any) -> RetentionReport:
    return run_retention(retention_parts(services), services.settings.retention, now=NOW, **kwargs)


def _usage(services: Services) -> Usage:
    return measure(retention_parts(services))


def _oldest_first(services: Services, usage: Usage, camera: str | None = None) -> list[Any]:
    """(frame, bytes deleting it frees) for every frame, oldest first, holds included."""
    frames = services.usage.oldest_frames(camera=camera, limit=1000)
    return [(f, frame_cost(f, usage.overheads)[0]) for f in frames]


def _file_bytes(services: Services) -> int:
    root = services.settings.storage.root
    return sum((root / key).stat().st_size for key in blob_files(root))


def test_budget_removes_exactly_the_oldest_unheld_footage_and_stops_at_it(world: World) -> None:
    services = world.services
    usage = _usage(services)
    costs = _oldest_first(services, usage)
    free = [(f, c) for f, c in costs if f.kept == 0]
    assert len(free) == 14 and costs[0][0].kept == 1 and costs[1][0].kept == 1
    # A budget that five of the free frames cannot meet and six can (half a frame to
    # spare: averages of row sizes move by a few bytes as rows go).
    budget = usage.total - sum(c for _, c in free[:5]) - free[5][1] // 2
    before = state(services)

    report = _run(_with(world, max_bytes=budget))

    gone = {f.id for f, _ in free[:6]}
    after = state(services)
    assert before.keyframes - after.keyframes == gone
    assert world.held.keyframe_id in after.keyframes  # held: older, kept
    assert world.evidence.keyframe_id in after.keyframes  # evidence: older, kept
    assert len(before.appearances - after.appearances) == 6
    assert len(before.files - after.files) == 12 and after.journal == 0
    assert after.vectors["person"] == after.appearances  # vectors went with their rows
    assert report.reason["budget"].keyframes == 6 and report.reason["age"].keyframes == 0
    assert report.budget is not None and report.budget.unmet == 0
    remeasured = _usage(services).total
    assert remeasured <= budget < remeasured + free[5][1]  # under it, by the last frame only
    assert _run(_with(world, max_bytes=budget)).appearances == 0  # met stays met


def test_a_camera_budget_takes_only_that_cameras_oldest(world: World) -> None:
    services = world.services
    usage = _usage(services)
    b = [(f, c) for f, c in _oldest_first(services, usage, "b") if f.kept == 0]
    budget = usage.cameras["b"].bytes - b[0][1] - b[1][1] - b[2][1] // 2  # three frames
    before = state(services)

    report = _run(_with(world, camera_max_bytes={"b": budget}))

    assert before.keyframes - state(services).keyframes == {f.id for f, _ in b[:3]}
    assert report.per_camera.keys() == {"b"}
    assert _usage(services).cameras["b"].bytes <= budget


def test_only_holds_and_evidence_left_is_reported_not_deleted(world: World) -> None:
    services = world.services
    for cam in ("a", "b"):
        for p in world.frames[cam][1:]:
            services.retention.set_appearance_holds(p.appearance_ids, True)
    before = state(services)

    report = _run(_with(world, max_bytes=1))

    assert state(services) == before
    assert report.budget is not None and report.budget.unmet > 0
    assert report.budget.kept_bytes >= 16 * (100 + 10)  # every file is held or evidence
    assert report.to_dict()["budget"]["unmet_bytes"] == report.budget.unmet
    from surveil.telemetry import PROCESS

    assert PROCESS.get_sample_value("surveil_storage_budget_unmet_bytes") == report.budget.unmet
    _run(_with(world, max_bytes=10**9))  # a budget met again: the gauge says so
    assert PROCESS.get_sample_value("surveil_storage_budget_unmet_bytes") == 0


def test_dry_run_predicts_the_budget_run_and_changes_nothing(world: World) -> None:
    services = world.services
    usage = _usage(services)
    free = [c for f, c in _oldest_first(services, usage) if f.kept == 0]
    # Seven frames and half of the eighth: clear of a frame boundary, where the few bytes
    # row-size averages move by as rows go would let the real run take one frame more.
    services = _with(world, max_bytes=usage.total - sum(free[:7]) - free[7] // 2)
    before = state(services)

    dry = _run(services, dry_run=True)

    assert state(services) == before
    real = _run(services)
    assert vars(dry.reason["budget"]) == vars(real.reason["budget"])
    assert dry.reason["budget"].keyframes == 8


def test_the_disk_high_water_mark_frees_the_oldest_until_under_it(world: World) -> None:
    services = world.services
    assert disk_excess(Disk(total=1000, free=20), 0.95) == 30
    assert disk_excess(Disk(total=1000, free=80), 0.95) == 0
    assert disk_excess(Disk(total=1000, free=20), None) == 0
    assert disk_excess(None, 0.95) == 0
    usage = _usage(services)
    free = [(f, c) for f, c in _oldest_first(services, usage) if f.kept == 0]
    before = state(services)

    _run(services, disk_excess=free[0][1] + free[1][1])  # no budget: the disk asks alone

    assert before.keyframes - state(services).keyframes == {free[0][0].id, free[1][0].id}


def test_the_storage_check_runs_retention_only_when_over(world: World) -> None:
    services = world.services
    total = _usage(services).total
    quiet = check_storage(_with(world, max_bytes=total + 1))
    assert quiet["freed_keyframes"] == 0 and quiet["stored_bytes"] == total
    over = check_storage(_with(world, max_bytes=total - 10))
    assert over["freed_keyframes"] == 1 and over["budget"]["unmet_bytes"] == 0


def test_the_estimate_matches_the_stored_bytes(world: World) -> None:
    services = _with(world, max_bytes=10**6, camera_max_bytes={"a": 10**4})
    est = storage_estimate(services)
    usage = est.usage
    files = usage.total - usage.overheads.catalog_bytes - usage.overheads.index_bytes
    assert files == _file_bytes(services) == 16 * (100 + 10)  # sized from the blob store
    assert usage.overheads.catalog_bytes > 16 * 2 * 16 * 4  # rows hold their embeddings
    out = est.to_dict()
    assert out["bytes_stored"] == usage.total and out["budget_bytes"] == 10**6
    cams = {c["camera_id"]: c for c in out["cameras"]}
    assert abs(sum(c["bytes"] for c in cams.values()) - usage.total) <= 2  # rounding only
    for cam in ("a", "b"):
        assert cams[cam]["days_stored"] == 8
        assert cams[cam]["bytes_per_day"] == round(cams[cam]["bytes"] / 8)
    rate = sum(c.bytes_per_day for c in usage.cameras.values())
    assert cams["b"]["days_that_fit"] == round(10**6 / rate, 1)  # shares the global budget
    assert cams["a"]["days_that_fit"] == round(10**4 / usage.cameras["a"].bytes_per_day, 1)
    days_left = (10**6 - usage.total) / rate
    assert out["budget_full_at"] == iso(est.now + timedelta(days=days_left))
    assert out["disk_free_bytes"] > 0  # a disk fill date over 100 years out is not given
    assert (out["disk_full_at"] is None) == (out["disk_free_bytes"] / rate > 36500)


def test_the_bytes_stored_per_camera_metric_moves_with_a_check(world: World) -> None:
    from surveil.telemetry import PROCESS

    def sample(camera: str) -> float | None:
        return PROCESS.get_sample_value("surveil_storage_bytes", {"camera": camera})

    check_storage(world.services)
    usage = _usage(world.services)
    assert sample("a") == usage.cameras["a"].bytes
    plant(world.services, "a", age_days=1)
    check_storage(world.services)
    assert sample("a") == _usage(world.services).cameras["a"].bytes > usage.cameras["a"].bytes
