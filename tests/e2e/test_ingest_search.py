"""Ingest real video and MOT17 frames with the real models, then search: both catalogs.

The catalog is built once per back-end (module scope) because the models are slow on
two CPU cores; every test here reads it without changing it.
"""

from __future__ import annotations

import contextlib
import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from catalog_sql import catalog_rows
from conftest import fresh_pg_database

from surveil.config import Settings, load_settings
from surveil.container import Services, build_services
from surveil.domain import BBox, IngestStats, InputError, SearchFilters, Sighting
from surveil.ingest.pipeline import IngestOptions
from surveil.search.grouping import top_sighting
from surveil.storage.migrate import upgrade
from surveil.vision.crops import read_image

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
MOT09 = Path("mot/MOT17-mini/train/MOT17-09-FRCNN")
MOT04 = Path("mot/MOT17-mini/train/MOT17-04-FRCNN")
LOBBY = Path("videos/intel_sample_videos/one-by-one-person-detection.mp4")
#: The six people who cross the Intel lobby one after another, as video frame ranges
#: counted by eye (a contact sheet of every track's crops, 2026-12-06); each range runs
#: from a gap with nobody in view to the next, so a track holding two people spans two.
LOBBY_PEOPLE = [(0, 212), (212, 475), (475, 720), (720, 895), (895, 1216), (1216, 1394)]


@dataclass
class World:
    """A catalog with three cameras ingested, and the services over it."""

    settings: Settings
    services: Services
    stats: dict[str, IngestStats]
    data: Path


def _ingest(
    services: Services, path: Path, camera: str, start: datetime, all_frames: bool
) -> IngestStats:
    options = IngestOptions(camera_id=camera, all_frames=all_frames)
    return services.ingest(str(path), options, start=start)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, shared_data: Path
) -> Iterator[World]:
    root = tmp_path_factory.mktemp(f"world-{request.param}")
    with pytest.MonkeyPatch.context() as mp, _database(request, root) as url:
        for key in [k for k in os.environ if k.startswith("SURVEIL_")]:
            mp.delenv(key)
        models = shared_data / "models"
        settings = load_settings(
            overrides={
                "storage.root": str(root / "data"),
                "database.url": url,
                "model_dir": str(models),
                "detector.weights": str(models / "yolov8n_int8_dynamic.onnx"),
            }
        )
        upgrade(url)  # what `surveil db upgrade` does; PostgreSQL is never auto-migrated
        services = build_services(settings)
        stats = {
            "cam09": _ingest(services, shared_data / MOT09 / "img1", "cam09", T0, True),
            "cam04": _ingest(
                services, shared_data / MOT04 / "img1", "cam04", T0 + timedelta(hours=1), True
            ),
            "lobby": _ingest(
                services, shared_data / LOBBY, "lobby", T0 + timedelta(hours=2), False
            ),
        }
        try:
            yield World(settings, services, stats, shared_data)
        finally:
            services.close()


def _database(request: pytest.FixtureRequest, root: Path) -> contextlib.AbstractContextManager[str]:
    if request.param == "sqlite":
        return contextlib.nullcontext(f"sqlite:///{(root / 'catalog.db').as_posix()}")
    server: str = request.getfixturevalue("pg_server")
    return fresh_pg_database(server)


def _gt_boxes(seq: Path) -> dict[int, dict[int, BBox]]:
    """Pedestrian ground truth: {track id: {frame number: box}} (MOT rows, class 1)."""
    out: dict[int, dict[int, BBox]] = {}
    with (seq / "gt" / "gt.txt").open() as fh:
        for row in csv.reader(fh):
            frame, tid, left, top, w, h, consider, cls, vis = row[:9]
            if int(consider) != 1 or int(cls) != 1 or float(vis) < 0.6:
                continue
            x, y = float(left) - 1, float(top) - 1  # MOT is 1-based
            out.setdefault(int(tid), {})[int(frame)] = (x, y, x + float(w), y + float(h))
    return out


def iou(a: BBox, b: BBox) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _crop(image: np.ndarray, box: BBox) -> np.ndarray:
    x1, y1, x2, y2 = (round(v) for v in box)
    return np.ascontiguousarray(image[max(y1, 0) : y2, max(x1, 0) : x2])


def _pedestrians(world: World, count: int) -> list[tuple[int, dict[int, BBox]]]:
    """Tall, well-visible pedestrians present in all four frames, largest first."""
    gt = _gt_boxes(world.data / MOT09)
    full = [(tid, boxes) for tid, boxes in gt.items() if set(boxes) >= {1, 2, 3, 4}]
    full = [(tid, b) for tid, b in full if b[1][3] - b[1][1] >= 120]
    full.sort(key=lambda item: -(item[1][1][3] - item[1][1][1]))
    return full[:count]


def test_ingest_counts(world: World) -> None:
    cam09 = world.stats["cam09"]
    assert cam09.frames_read == 4 and cam09.keyframes == 4  # --all-frames
    assert cam09.appearances >= 8  # MOT17-09 frame 1 has a dozen pedestrians
    lobby = world.stats["lobby"]
    assert lobby.frames_read == 1394
    assert 0 < lobby.keyframes < lobby.frames_read  # keyframe selection dropped frames
    catalog = world.services.catalog
    # One vector per track: the index scans far fewer than one per appearance.
    assert world.services.index.size("person") == catalog.count_tracks("person")
    assert catalog.count_tracks("person") < catalog.count_appearances("person") / 3


def test_each_lobby_passer_by_is_one_track_and_no_track_holds_two(world: World) -> None:
    rows = catalog_rows(
        world.settings.database_url,
        "SELECT track_id, frame_index FROM appearances "
        "WHERE camera_id = 'lobby' AND label = 'person'",
    )
    frames: dict[int, list[int]] = {}
    for track, frame in rows:
        frames.setdefault(int(track), []).append(int(frame))

    def person(frame: int) -> int:
        return next(n for n, (a, b) in enumerate(LOBBY_PEOPLE) if a <= frame < b)

    spans = {t: {person(f) for f in fs} for t, fs in frames.items()}
    report = f"{len(frames)} tracks for {len(LOBBY_PEOPLE)} people: " + ", ".join(
        f"{len(frames[t])}@{sorted(p)}" for t, p in sorted(spans.items())
    )
    assert all(len(p) == 1 for p in spans.values()), report  # nobody shares a track
    long = [next(iter(spans[t])) for t, fs in frames.items() if len(fs) >= 10]
    assert sorted(long) == list(range(len(LOBBY_PEOPLE))), report  # one track each
    assert len(frames) - len(long) <= 3, report  # a few edge fragments at most


def test_ground_truth_pedestrians_found_in_their_top_sighting(world: World) -> None:
    frame1 = read_image(world.data / MOT09 / "img1" / "000001.jpg")
    search = world.services.search()
    checked = 0
    for tid, boxes in _pedestrians(world, 5):
        result = search.by_image(_crop(frame1, boxes[1]), label="person")
        top = top_sighting(result.sightings)
        assert top is not None, f"pedestrian {tid}: no sighting"
        assert top.camera_id == "cam09", f"pedestrian {tid}: top sighting on {top.camera_id}"
        by_frame = {h.appearance.frame_index: h.appearance.bbox for h in top.hits}
        for frame in (2, 3, 4):
            found = by_frame.get(frame - 1)
            assert found is not None, f"pedestrian {tid}: frame {frame} missing from top sighting"
            overlap = iou(found, boxes[frame])
            assert overlap >= 0.5, f"pedestrian {tid} frame {frame}: IoU {overlap:.2f} < 0.5"
        checked += 1
    assert checked >= 3, "too few ground-truth pedestrians to make the check meaningful"


def _person_query(world: World) -> np.ndarray:
    frame1 = read_image(world.data / MOT09 / "img1" / "000001.jpg")
    (_tid, boxes), *_ = _pedestrians(world, 1)
    return _crop(frame1, boxes[1])


def _assert_ordered(sightings: list[Sighting]) -> None:
    firsts = [s.first_seen for s in sightings]
    assert firsts == sorted(firsts)
    for s in sightings:
        times = [h.appearance.ts for h in s.hits]
        assert times == sorted(times)
        assert s.first_seen == times[0] and s.last_seen == times[-1]
        # Each member scores against its own vector; the track's may be higher (pooled).
        assert s.best_score >= max(h.score for h in s.hits)


def _hits(sightings: list[Sighting]) -> list[tuple[int, float]]:
    return [(h.appearance.id, h.score) for s in sightings for h in s.hits]


def test_results_span_cameras_ordered_by_time(world: World) -> None:
    # No floor: everyone in the catalog, so every camera shows up (the lobby's are others).
    everything = SearchFilters(min_score=-1.0)
    result = world.services.search().by_image(
        _person_query(world), label="person", limit=200, filters=everything
    )
    _assert_ordered(result.sightings)
    assert {s.camera_id for s in result.sightings} == {"cam09", "cam04", "lobby"}


def test_camera_filter_does_not_lose_matches(world: World) -> None:
    """A filtered search equals the unfiltered ranking restricted to the filter."""
    search = world.services.search()
    query = _person_query(world)
    # No floor: cam04 holds other people only, and the check needs a deep ranking there.
    everything = search.by_image(
        query, label="person", limit=10_000, filters=SearchFilters(min_score=-1.0)
    )
    ranked = sorted(
        (s for s in everything.sightings if s.camera_id == "cam04"),
        key=lambda s: (-s.best_score, s.track_id or 0),  # the search's own tie-break
    )
    want = {s.track_id for s in ranked[:5]}
    got = search.by_image(
        query,
        label="person",
        limit=5,
        filters=SearchFilters(cameras=frozenset({"cam04"}), min_score=-1.0),
    )
    assert {s.track_id for s in got.sightings} == want
    assert got.rounds >= 1
    assert all(s.camera_id == "cam04" for s in got.sightings)


def test_time_label_and_score_filters(world: World) -> None:
    search = world.services.search()
    query = _person_query(world)
    since, until = T0 + timedelta(minutes=59), T0 + timedelta(hours=1, minutes=1)
    windowed = search.by_image(
        query, label="person", filters=SearchFilters(since=since, until=until, min_score=-1.0)
    )
    assert windowed.sightings
    assert all(since <= h.appearance.ts <= until for s in windowed.sightings for h in s.hits)
    assert {s.camera_id for s in windowed.sightings} == {"cam04"}

    floor = 0.6
    strong = search.by_image(query, label="person", filters=SearchFilters(min_score=floor))
    assert strong.sightings
    assert all(s.best_score >= floor for s in strong.sightings)  # the floor is per track

    persons = search.by_image(
        query, label="person", filters=SearchFilters(labels=frozenset({"person"}), min_score=-1.0)
    )
    assert persons.sightings
    assert all(h.appearance.label == "person" for s in persons.sightings for h in s.hits)

    with pytest.raises(InputError, match="different embedding spaces"):
        search.by_image(query, label="person", filters=SearchFilters(labels=frozenset({"car"})))


def test_a_sighting_is_one_whole_track(world: World) -> None:
    """Sightings never mix tracks, and the old --gap no longer regroups (it says so)."""
    search = world.services.search()
    query = _person_query(world)
    result = search.by_image(query, label="person", limit=200)
    tracks = [s.track_id for s in result.sightings]
    assert None not in tracks and len(tracks) == len(set(tracks))
    for s in result.sightings:
        assert {h.appearance.track_id for h in s.hits} == {s.track_id}
    (first,) = world.services.catalog.tracks([int(tracks[0] or 0)])
    assert len(result.sightings[0].hits) == first.appearances  # no filter: every member
    with_gap = search.by_image(query, label="person", gap_seconds=0.01, limit=200)
    assert [s.track_id for s in with_gap.sightings] == tracks
    assert any("--gap" in w for w in with_gap.warnings)


def test_the_default_floor_keeps_strangers_out(world: World) -> None:
    """With no --min-score the person space's calibrated floor applies: the lobby's people
    (others, filmed elsewhere) stay out, the query's own track stays in."""
    floor = world.services.settings.search.floor("person")
    assert floor == world.services.settings.search.min_score_by_space["person"] > 0.5
    result = world.services.search().by_image(_person_query(world), label="person", limit=200)
    assert result.sightings and all(s.best_score >= floor for s in result.sightings)
    cameras = {s.camera_id for s in result.sightings}
    assert "cam09" in cameras and "lobby" not in cameras


def test_ingest_records_each_files_bytes_for_size_budgets(world: World) -> None:
    """Every crop and keyframe row carries its stored file's size (what budgets count), so
    an estimate after ingest has nothing left to size."""
    from sqlalchemy import select

    from surveil.jobs.storage import storage_estimate
    from surveil.storage.tables import AppearanceRow, KeyframeRow

    root = world.settings.storage.root
    with world.services.engine.connect() as conn:
        crops = conn.execute(select(AppearanceRow.crop_path, AppearanceRow.crop_bytes)).all()
        frames = conn.execute(select(KeyframeRow.image_path, KeyframeRow.image_bytes)).all()
    stored = [(str(p), int(n or 0)) for p, n in [*crops, *frames] if p]
    assert len(stored) > 100
    assert all(n == (root / p).stat().st_size for p, n in stored)
    usage = storage_estimate(world.services).usage
    assert usage.sized == 0
    files = usage.total - usage.overheads.catalog_bytes - usage.overheads.index_bytes
    assert files == sum(n for _, n in stored)
