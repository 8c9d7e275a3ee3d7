"""The path across cameras: legs, hops, and tracks that overlap on other cameras."""

from __future__ import annotations

from datetime import timedelta

from test_grouping import T0, hit

from surveil.domain import Sighting
from surveil.search.grouping import track_sighting
from surveil.search.path import camera_path, path_text, path_to_dict
from surveil.search.render import iso


def _track(track_id: int, camera: str, start: float, end: float, score: float = 0.8) -> Sighting:
    members = [
        hit(track_id * 10, start, 0, camera=camera).appearance,
        hit(track_id * 10 + 1, end, 0, camera=camera).appearance,
    ]
    return track_sighting(track_id, members, score)


def test_legs_follow_time_and_hops_give_the_time_between_cameras() -> None:
    path = camera_path(
        [
            _track(3, "entrance", 40, 52),
            _track(1, "lobby", 14, 20),
            _track(2, "lobby", 22, 26, score=0.9),  # the tracker split: still one leg
        ]
    )
    assert [(leg.camera_id, leg.track_ids) for leg in path.legs] == [
        ("lobby", (1, 2)),
        ("entrance", (3,)),
    ]
    lobby = path.legs[0]
    assert (lobby.first_seen, lobby.last_seen) == (
        T0 + timedelta(seconds=14),
        T0 + timedelta(seconds=26),
    )
    assert lobby.best_score == 0.9
    (hop,) = path.hops
    assert (hop.from_camera, hop.to_camera, hop.seconds) == ("lobby", "entrance", 14.0)
    assert path.overlapping == 0
    text = path_text(path)
    assert "lobby" in text and "12:00:14-12:00:26" in text and "+14 s" in text
    assert "warning" not in text


def test_a_track_overlapping_another_camera_is_flagged_on_both_sides() -> None:
    path = camera_path(
        [_track(1, "lobby", 0, 30), _track(2, "garage", 10, 12), _track(3, "lobby", 100, 110)]
    )
    flagged = {leg.track_ids: leg.overlaps for leg in path.legs}
    assert flagged == {(1,): (2,), (2,): (1,), (3,): ()}
    assert path.overlapping == 2
    assert path.hops[0].seconds < 0  # garage starts before the lobby leg ended
    assert "overlaps" in path_text(path) and "warning: 2 leg(s)" in path_text(path)


def test_same_camera_overlap_is_not_a_conflict_and_json_has_every_field() -> None:
    path = camera_path([_track(1, "lobby", 0, 30), _track(2, "lobby", 10, 12)])
    assert path.overlapping == 0 and len(path.legs) == 1 and not path.hops
    body = path_to_dict(path, iso)
    assert body == {
        "legs": [
            {
                "camera_id": "lobby",
                "first_seen": "2026-01-01T12:00:00.000Z",
                "last_seen": "2026-01-01T12:00:30.000Z",
                "track_ids": [1, 2],
                "best_score": 0.8,
                "overlaps": [],
            }
        ],
        "hops": [],
        "overlapping": 0,
    }
    assert camera_path([]).legs == () and path_text(camera_path([])) == "path: no sightings"
