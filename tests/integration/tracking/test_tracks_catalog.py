"""Tracks in the real catalog (SQLite and PostgreSQL): ingest rows, backfill, retention."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from conftest import SettingsFactory
from sqlalchemy import text

from surveil.config import Settings
from surveil.container import Services, build_services
from surveil.domain import NewAppearance, NewKeyframe, SearchFilters, Space, TrackUpdate

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
DIM = 16


@pytest.fixture
def services(make_settings: SettingsFactory, database_url: str) -> Iterator[Services]:
    settings: Settings = make_settings(**{"database.url": database_url})
    if not database_url.startswith("sqlite"):
        from surveil.storage.migrate import upgrade

        upgrade(database_url)
    built = build_services(settings, reconcile_index=False)
    try:
        yield built
    finally:
        built.close()


def _unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def _walk(services: Services, people: dict[int, np.ndarray], seconds: int) -> None:
    """One keyframe per second; person p walks right from x=100*p with a fixed look."""
    src = services.catalog.open_source(
        camera_id="lobby", uri="test://lobby", fingerprint="f", start=T0, fps=1.0
    )
    for t in range(seconds):
        apps = tuple(
            NewAppearance(
                bbox=(100.0 * p + 5 * t, 50.0, 100.0 * p + 5 * t + 40, 150.0),
                label="person",
                confidence=0.9,
                space="person",
                embedding=vec,
                model_id="m",
                crop_path=f"crops/lobby/{src.id}/{t:08d}_{p:03d}.jpg",
            )
            for p, vec in people.items()
        )
        kf = NewKeyframe("lobby", src.id, t, T0 + timedelta(seconds=t), 640, 480, None, apps)
        committed = services.catalog.add_tracked([kf])
        from surveil.ingest.tracks import index_tracks

        index_tracks(services.index, committed.tracks)
    services.index.save()


def test_backfill_merges_one_member_tracks_into_tracks(services: Services) -> None:
    """What migration 0005 leaves (a track per appearance) becomes one track per person."""
    _walk(services, {1: _unit(1), 3: _unit(2)}, seconds=6)
    with services.engine.begin() as conn:  # as the migration names them
        conn.execute(text("UPDATE tracks SET key = 'legacy:' || CAST(id AS TEXT)"))
    assert services.catalog.count_tracks("person") == 12

    report = services.backfill().run()

    assert report.to_dict()["appearances"] == 12 and report.to_dict()["tracks"] == 2
    assert services.catalog.count_tracks("person") == 2
    assert services.index.size("person") == 2
    assert services.reconcile_index(full=True).changed is False
    result = services.search().by_appearance(1, limit=10)
    (best, *_rest) = sorted(result.sightings, key=lambda s: -s.best_score)
    assert len(best.hits) == 6 and best.best_score == pytest.approx(1.0, abs=1e-4)
    assert services.backfill().run().to_dict()["appearances"] == 0  # nothing left to do


def test_a_growing_track_keeps_one_index_entry_with_its_latest_vector(
    services: Services,
) -> None:
    src = services.catalog.open_source(
        camera_id="c", uri="test://c", fingerprint="g", start=T0, fps=1.0
    )
    a, b = _unit(5), _unit(6)
    from surveil.ingest.tracks import index_tracks

    for t, vec in enumerate((a, b)):
        app = NewAppearance((0, 0, 10, 20), "person", 0.9, "person", vec, "m", f"p{t}", 1.0, "T")
        kf = NewKeyframe("c", src.id, t, T0 + timedelta(seconds=t), 64, 64, None, (app,))
        pooled = (a + b) / np.linalg.norm(a + b) if t else a
        update = TrackUpdate("T", "c", "person", "person", T0, kf.ts, t + 1, pooled, "m")
        index_tracks(services.index, services.catalog.add_tracked([kf], [update]).tracks)
    assert services.index.size("person") == 1
    (track,) = services.catalog.tracks(list(services.catalog.track_members([1, 2, 3])))
    assert track.appearances == 2 and track.first_ts == T0
    hit = services.index.search("person", ((a + b) / np.linalg.norm(a + b)).astype(np.float32), 1)
    assert hit[0].id == track.id and hit[0].score == pytest.approx(1.0, abs=1e-5)


def test_member_vectors_are_the_stored_vectors_of_members_in_the_filters(
    services: Services,
) -> None:
    """What a search scores candidate tracks by: (track, id, own vector), filters applied."""
    people = {1: _unit(11), 3: _unit(12)}
    _walk(services, people, seconds=4)  # no tracker here: each appearance is its own track
    members = services.catalog.track_members(list(range(1, 100)))
    tracks = sorted(members)
    assert len(tracks) == 8

    got = services.catalog.member_vectors("person", tracks)
    assert sorted(got.ids.tolist()) == sorted(a.id for apps in members.values() for a in apps)
    for track, app_id, vector in zip(got.tracks, got.ids, got.vectors, strict=True):
        (owner,) = members[int(track)]
        assert owner.id == int(app_id)
        person = int(owner.bbox[0] // 100)  # person p walks from x = 100 p
        assert np.allclose(vector, people[person], atol=1e-6)

    since = T0 + timedelta(seconds=2)
    window = SearchFilters(since=since, cameras=frozenset({"lobby"}))
    inside = services.catalog.member_vectors("person", tracks, filters=window)
    assert len(inside.ids) == 4  # seconds 2 and 3, two people
    assert all(members[int(t)][0].ts >= since for t in inside.tracks)
    assert len(services.catalog.member_vectors("general", tracks).ids) == 0  # other space
    other = SearchFilters(cameras=frozenset({"elsewhere"}), labels=frozenset({"car"}))
    assert len(services.catalog.member_vectors("person", tracks, filters=other).ids) == 0


def test_a_searchs_member_reads_go_through_the_track_index(
    services: Services, database_url: str
) -> None:
    """SQLite has no statistics here: camera, label and space terms must not steer it
    onto (camera_id, ts), (label, ts) or (space, ts), which hold every appearance."""
    if not database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL plans by its statistics; the hint is SQLite's")
    from sqlalchemy import select

    from surveil.storage.tables import AppearanceRow as A
    from surveil.storage.tracks import _members_of

    filters = SearchFilters(
        cameras=frozenset({"lobby"}), labels=frozenset({"person"}), since=T0, until=T0
    )
    stmt = _members_of(select(A.id, A.embedding), "sqlite", [1, 2], filters, "person")
    compiled = stmt.compile(services.engine, compile_kwargs={"literal_binds": True})
    with services.engine.connect() as conn:
        plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}"))
    assert "ix_appearances_track_id_ts" in plan, plan


def test_track_vectors_are_the_pooled_vectors_of_that_space_in_id_order(
    services: Services,
) -> None:
    """What re-ranking builds its neighbour graph from: one read for many tracks."""
    from surveil.ingest.tracks import index_tracks

    src = services.catalog.open_source(
        camera_id="c", uri="test://c", fingerprint="v", start=T0, fps=1.0
    )
    pooled = {"P1": _unit(21), "P2": _unit(22), "V1": _unit(23)}
    for t, (key, vec) in enumerate(pooled.items()):
        space: Space = "general" if key.startswith("V") else "person"
        label = "car" if key.startswith("V") else "person"
        app = NewAppearance((0, 0, 10, 20), label, 0.9, space, vec, "m", f"v{t}", 1.0, key)
        kf = NewKeyframe("c", src.id, t, T0 + timedelta(seconds=t), 64, 64, None, (app,))
        update = TrackUpdate(key, "c", space, label, kf.ts, kf.ts, 1, vec, "m")
        index_tracks(services.index, services.catalog.add_tracked([kf], [update]).tracks)
    ids = sorted(services.catalog.track_members(list(range(1, 100))))
    assert len(ids) == 3
    got_ids, vectors = services.catalog.track_vectors("person", [*reversed(ids), 999])
    assert got_ids.tolist() == ids[:2]  # id order; the car's track and unknown ids left out
    assert np.allclose(vectors, np.stack([pooled["P1"], pooled["P2"]]), atol=1e-6)
    none_ids, none = services.catalog.track_vectors("person", [])
    assert none_ids.size == 0 and none.shape == (0, 0)
