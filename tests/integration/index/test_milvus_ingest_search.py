"""index.backend=milvus end to end: real frames, real models, PostgreSQL, a Milvus server.

Two MOT17 cameras are ingested once (module scope: the models are slow on two cores);
the tests then search through the SearchService, break the index and reconcile it, and
rebuild it, each checking the catalog (the source of truth) against Milvus.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from catalog_sql import catalog_rows
from cli_process import cli_env, run_cli
from conftest import fresh_pg_database

from surveil.alerts.notify import WebhookSender
from surveil.config import Settings, load_settings
from surveil.container import Services, build_services
from surveil.domain import SearchFilters
from surveil.index.milvus import MilvusIndex
from surveil.index.status import backend_line, backend_status
from surveil.ingest.pipeline import IngestOptions
from surveil.jobs.registry import RECONCILE, build_jobs
from surveil.ports import VectorMeta
from surveil.storage.migrate import upgrade

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
MOT09 = Path("mot/MOT17-mini/train/MOT17-09-FRCNN/img1")
MOT04 = Path("mot/MOT17-mini/train/MOT17-04-FRCNN/img1")
TOKEN = "root:not-a-real-secret"


@dataclass
class World:
    settings: Settings
    services: Services
    url: str


@pytest.fixture(scope="module")
def world(
    pg_server: str,
    milvus_uri: str,
    shared_data: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[World]:
    root = tmp_path_factory.mktemp("milvus-world")
    models = shared_data / "models"
    with pytest.MonkeyPatch.context() as mp, fresh_pg_database(pg_server) as url:
        for key in [k for k in os.environ if k.startswith("SURVEIL_")]:
            mp.delenv(key)
        # The contract other tools rely on: these two variables select the backend.
        mp.setenv("SURVEIL_INDEX__BACKEND", "milvus")
        mp.setenv("SURVEIL_INDEX__MILVUS__URI", milvus_uri)
        mp.setenv("SURVEIL_INDEX__MILVUS__TOKEN", TOKEN)  # Lite ignores it; it must not leak
        settings = load_settings(
            overrides={
                "storage.root": str(root / "data"),
                "database.url": url,
                "model_dir": str(models),
                "detector.weights": str(models / "yolov8n_int8_dynamic.onnx"),
                "index.milvus.collection_prefix": f"w{uuid.uuid4().hex[:8]}_",
            }
        )
        upgrade(url)
        services = build_services(settings)
        try:
            for camera, frames, start in (
                ("cam09", MOT09, T0),
                ("cam04", MOT04, T0 + timedelta(hours=1)),
            ):
                options = IngestOptions(camera_id=camera, all_frames=True)
                services.ingest(str(shared_data / frames), options, start=start)
            yield World(settings, services, url)
        finally:
            services.close()


def _tracks(url: str, camera: str) -> list[int]:
    rows = catalog_rows(
        url, f"SELECT id FROM tracks WHERE camera_id = '{camera}' AND space = 'person' ORDER BY id"
    )
    return [int(r[0]) for r in rows]


def test_every_track_is_in_milvus_and_status_hides_the_token(world: World) -> None:
    index = world.services.index
    assert isinstance(index, MilvusIndex)
    tracks = world.services.catalog.count_tracks("person")
    assert tracks > 5 and index.size("person") == tracks
    assert world.services.reconcile_index(full=True).changed is False
    status = backend_status(index)
    line = backend_line(status)
    assert status["uri"] == world.settings.index.milvus.uri and "milvus" in line
    assert "not-a-real-secret" not in repr(status) + line


def test_search_finds_the_track_and_filters_run_inside_milvus(world: World) -> None:
    search = world.services.search()
    track = _tracks(world.url, "cam09")[0]
    found = search.by_track(track, filters=SearchFilters(min_score=-1.0), limit=5)
    assert found.sightings and max(found.sightings, key=lambda s: s.best_score).track_id == track
    only04 = SearchFilters(cameras=frozenset({"cam04"}), min_score=-1.0)
    result = search.by_track(track, filters=only04, limit=5)
    assert len(result.sightings) == 5
    assert {s.camera_id for s in result.sightings} == {"cam04"}
    assert result.rounds == 1  # Milvus filtered before its cut: no deeper round
    late = SearchFilters(since=T0 + timedelta(minutes=30), min_score=-1.0)
    assert {s.camera_id for s in search.by_track(track, filters=late).sightings} == {"cam04"}


def test_reconcile_puts_back_lost_vectors_and_drops_strays(world: World) -> None:
    index, services = world.services.index, world.services
    lost = np.asarray(_tracks(world.url, "cam09")[:3], np.int64)
    assert index.remove("person", lost) == 3
    stray_day = date(2026, 3, 1)
    stray = np.full((1, index_dim(world)), 1 / np.sqrt(index_dim(world)), np.float32)
    meta = VectorMeta("cam09", "person", T0, T0)
    index.add("person", np.array([987_654], np.int64), stray, [stray_day], meta=[meta])
    report = services.reconcile_index()
    assert report.added["person"] == 3 and report.removed["person"] == 1
    assert index.size("person") == services.catalog.count_tracks("person")
    held = np.concatenate(list(index.ids_by_day("person").values()))
    assert set(lost.tolist()) <= set(held.tolist()) and 987_654 not in held


def test_a_shared_index_is_reconciled_by_the_scheduler_not_at_start(world: World) -> None:
    """A replica or CLI call starting must not scan Milvus; the scheduler's job repairs."""
    index, services = world.services.index, world.services
    lost = np.asarray(_tracks(world.url, "cam04")[:2], np.int64)
    assert index.remove("person", lost) == 2
    tracks = services.catalog.count_tracks("person")
    starting = build_services(world.settings)  # as `serve` or `surveil search` starts
    try:
        assert starting.index.size("person") == tracks - 2  # left alone at start
        sender = WebhookSender(timeout=2)
        jobs = {job.name: job for job in build_jobs(starting, sender)}
        assert jobs[RECONCILE].interval == timedelta(minutes=15)
        summary = jobs[RECONCILE].run()
        assert summary["added"] == 2 and summary["removed"] == 0
        assert starting.index.size("person") == tracks
    finally:
        starting.close()


def test_rebuild_moves_the_alias_to_a_fresh_collection(world: World) -> None:
    index, services = world.services.index, world.services
    assert isinstance(index, MilvusIndex)
    before = index.collections()
    counts = services.rebuild_index()
    after = index.collections()
    assert counts["person"] == services.catalog.count_tracks("person") == index.size("person")
    assert after["person"] != before["person"]
    track = _tracks(world.url, "cam04")[0]
    hits = services.search().by_track(track, filters=SearchFilters(min_score=-1.0), limit=3)
    assert any(s.track_id == track for s in hits.sightings)


def test_cli_index_status_and_rebuild_against_milvus(world: World) -> None:
    """The operator's commands: backend and URI shown, token nowhere, counts agreeing."""
    m = world.settings.index.milvus
    env = cli_env(
        world.settings.storage.root,
        world.url,
        SURVEIL_INDEX__BACKEND="milvus",
        SURVEIL_INDEX__MILVUS__URI=m.uri,
        SURVEIL_INDEX__MILVUS__TOKEN=TOKEN,
        SURVEIL_INDEX__MILVUS__COLLECTION_PREFIX=m.collection_prefix,
    )
    tracks = world.services.catalog.count_tracks("person")
    status = run_cli(env, "index", "status", "--json")
    shown = json.loads(status.stdout)
    assert shown["index"]["backend"] == "milvus" and shown["index"]["uri"] == m.uri
    assert shown["vectors"]["person"] == shown["tracks"]["person"] == tracks
    rebuilt = run_cli(env, "index", "rebuild", "--json")
    assert json.loads(rebuilt.stdout)["rebuilt"]["person"] == tracks
    text = run_cli(env, "index", "status").stdout
    assert f"index: milvus at {m.uri}" in text
    for out in (status, rebuilt):
        assert "not-a-real-secret" not in out.stdout + out.stderr


def index_dim(world: World) -> int:
    return world.services.embedder("person").dim


def test_retention_removes_one_cameras_vectors_from_milvus(world: World) -> None:
    """cam09 expires (1 day), cam04 is kept (10 days): rows and vectors leave together."""
    from surveil.jobs.retention import retention_parts, run_retention

    services, index = world.services, world.services.index
    policy = world.settings.retention.model_copy(update={"days": 10.0, "cameras": {"cam09": 1.0}})
    kept = set(_tracks(world.url, "cam04"))
    assert _tracks(world.url, "cam09")
    run_retention(retention_parts(services), policy, now=T0 + timedelta(days=2))
    assert _tracks(world.url, "cam09") == []
    held = {int(i) for ids in index.ids_by_day("person").values() for i in ids}
    assert held == kept == set(_tracks(world.url, "cam04"))
    assert services.reconcile_index(full=True).changed is False
