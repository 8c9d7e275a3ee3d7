"""Sighting grouping and per-keyframe de-duplication: pure functions, plain data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from surveil.domain import SearchHit, StoredAppearance
from surveil.search.grouping import best_per_keyframe, group_sightings, label_group, top_sighting

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
GROUPS = {"person": ["person"], "vehicle": ["car", "truck"]}


def hit(
    app_id: int,
    seconds: float,
    score: float,
    *,
    camera: str = "a",
    label: str = "person",
    keyframe: int | None = None,
) -> SearchHit:
    app = StoredAppearance(
        id=app_id,
        keyframe_id=app_id if keyframe is None else keyframe,
        camera_id=camera,
        ts=T0 + timedelta(seconds=seconds),
        frame_index=int(seconds),
        label=label,
        confidence=0.9,
        bbox=(0.0, 0.0, 10.0, 20.0),
        space="person" if label == "person" else "general",
        model_id="m",
        crop_path=f"c/{app_id}.jpg",
    )
    return SearchHit(appearance=app, score=score)


def test_label_group_maps_and_falls_back_to_label() -> None:
    assert label_group("truck", GROUPS) == "vehicle"
    assert label_group("backpack", GROUPS) == "backpack"


def test_hits_split_on_gap_camera_and_group() -> None:
    hits = [
        hit(1, 0, 0.9),
        hit(2, 5, 0.8),
        hit(3, 14, 0.7),  # 9 s gap: same sighting
        hit(4, 30, 0.6),  # 16 s gap: new sighting
        hit(5, 6, 0.95, camera="b"),  # other camera
        hit(6, 7, 0.5, label="car"),  # other label group, same camera and time
    ]
    sightings = group_sightings(hits, gap_seconds=10, groups=GROUPS)
    shape = [(s.camera_id, s.label, [h.appearance.id for h in s.hits]) for s in sightings]
    assert shape == [
        ("a", "person", [1, 2, 3]),
        ("b", "person", [5]),
        ("a", "car", [6]),
        ("a", "person", [4]),
    ]
    first = sightings[0]
    assert first.first_seen == T0 and first.last_seen == T0 + timedelta(seconds=14)
    assert first.best_score == 0.9
    assert [s.first_seen for s in sightings] == sorted(s.first_seen for s in sightings)


def test_car_and_truck_form_one_vehicle_sighting() -> None:
    hits = [hit(1, 0, 0.7, label="car"), hit(2, 1, 0.8, label="truck")]
    (only,) = group_sightings(hits, gap_seconds=10, groups=GROUPS)
    assert only.label == "truck"  # the best hit's label names the sighting
    assert len(only.hits) == 2


def test_best_per_keyframe_keeps_one_object_per_place_and_time() -> None:
    hits = [
        hit(1, 0, 0.6, keyframe=10),
        hit(2, 0, 0.9, keyframe=10),
        hit(3, 0, 0.8, keyframe=10, label="car"),  # other group in same keyframe stays
        hit(4, 1, 0.5, keyframe=11),
    ]
    kept = best_per_keyframe(hits, GROUPS)
    assert [h.appearance.id for h in kept] == [2, 3, 4]  # best first


def test_top_sighting_is_the_best_match_and_empty_is_none() -> None:
    sightings = group_sightings([hit(1, 0, 0.4), hit(2, 100, 0.9)], gap_seconds=10, groups=GROUPS)
    top = top_sighting(sightings)
    assert top is not None and top.hits[0].appearance.id == 2
    assert top_sighting([]) is None
