"""Tracks as sightings: pure functions, plain data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from surveil.domain import SearchHit, StoredAppearance, label_group
from surveil.search.grouping import best_first, by_time, top_sighting, track_sighting

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


def test_track_sighting_orders_members_and_shows_the_commonest_label() -> None:
    members = [
        hit(3, 8, 0.0, label="truck").appearance,
        hit(1, 0, 0.0, label="car").appearance,
        hit(2, 4, 0.0, label="car").appearance,
    ]
    s = track_sighting(42, members, 0.77)
    assert s.track_id == 42 and s.label == "car" and s.best_score == 0.77
    assert [h.appearance.id for h in s.hits] == [1, 2, 3]
    assert all(h.score == 0.77 for h in s.hits)
    assert (s.first_seen, s.last_seen) == (T0, T0 + timedelta(seconds=8))


def test_best_first_then_by_time() -> None:
    a = track_sighting(1, [hit(1, 100, 0).appearance], 0.4)
    b = track_sighting(2, [hit(2, 0, 0).appearance], 0.9)
    c = track_sighting(3, [hit(3, 50, 0).appearance], 0.9)
    assert [s.track_id for s in best_first([a, b, c])] == [2, 3, 1]
    assert [s.track_id for s in by_time([a, b, c])] == [2, 3, 1]
    assert [s.track_id for s in by_time([a, c])] == [3, 1]


def test_top_sighting_is_the_best_match_and_empty_is_none() -> None:
    sightings = [track_sighting(1, [hit(1, 0, 0).appearance], 0.4)]
    sightings.append(track_sighting(2, [hit(2, 100, 0).appearance], 0.9))
    top = top_sighting(sightings)
    assert top is not None and top.best_score == 0.9
    assert top_sighting([]) is None
