"""The tracker over synthetic boxes and vectors: continuity, crossings, occlusion, resume."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from surveil.config import TrackingSettings
from surveil.tracking import CameraTracker, Member, TrackState

T0 = datetime(2026, 1, 1, 23, 59, 50, tzinfo=UTC)
GROUPS = {"person": ["person"], "vehicle": ["car", "truck"]}


def _unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(64).astype(np.float32)
    return v / np.linalg.norm(v)


def _m(t: float, x: float, vec: np.ndarray, label: str = "person") -> Member:
    return Member(T0 + timedelta(seconds=t), (x, 100.0, x + 40.0, 200.0), label, 0.9, vec, 0.9)


def _run(tracker: CameraTracker, frames: list[list[Member]]) -> list[list[str]]:
    out = []
    for n, members in enumerate(frames):
        ts = members[0].ts
        out.append(tracker.step(ts, members, [f"k{n}:{i}" for i in range(len(members))]))
    return out


def test_one_walker_is_one_track_and_two_strangers_are_two() -> None:
    a, b = _unit(1), _unit(2)
    frames = [[_m(t, 10 + 20 * t, a), _m(t, 600 - 20 * t, b)] for t in (0.0, 1.0, 2.0)]
    keys = _run(CameraTracker(TrackingSettings(), GROUPS), frames)
    assert {k[0] for k in keys} == {"k0:0"} and {k[1] for k in keys} == {"k0:1"}


def test_crossing_objects_keep_their_identity_by_appearance() -> None:
    """Two people swap sides while keyframes are 2 s apart: boxes alone would swap them."""
    a, b = _unit(3), _unit(4)
    frames = [[_m(0, 100, a), _m(0, 160, b)], [_m(2, 160, a), _m(2, 100, b)]]
    keys = _run(CameraTracker(TrackingSettings(), GROUPS), frames)
    assert keys[1] == ["k0:0", "k0:1"]


def test_a_stranger_in_the_same_place_later_is_a_new_track() -> None:
    frames = [[_m(0, 100, _unit(5))], [_m(1, 100, _unit(6))]]
    keys = _run(CameraTracker(TrackingSettings(), GROUPS), frames)
    assert keys[1] == ["k1:0"]


def test_short_occlusion_continues_long_one_does_not() -> None:
    a = _unit(7)
    settings = TrackingSettings(max_age_seconds=3)
    short = _run(CameraTracker(settings, GROUPS), [[_m(0, 100, a)], [_m(2.5, 110, a)]])
    long = _run(CameraTracker(settings, GROUPS), [[_m(0, 100, a)], [_m(3.5, 110, a)]])
    assert short[1] == ["k0:0"] and long[1] == ["k1:0"]


def test_labels_of_other_groups_never_join_and_car_truck_flips_do() -> None:
    v = _unit(8)
    keys = _run(
        CameraTracker(TrackingSettings(), GROUPS),
        [[_m(0, 100, v, "car")], [_m(1, 102, v, "truck")], [_m(2, 104, v, "person")]],
    )
    assert keys[1] == ["k0:0"] and keys[2] == ["k2:0"]


def test_groups_of_different_spaces_in_one_keyframe_are_tracked_apart() -> None:
    """Persons (512-d re-ID) and cars (1280-d general CNN) share keyframes of a junction."""
    person, car = _unit(10), np.resize(_unit(11), 1280)
    car /= np.linalg.norm(car)
    frames = [[_m(t, 100 + 5 * t, person), _m(t, 400 + 5 * t, car, "car")] for t in (0, 1, 2)]
    keys = _run(CameraTracker(TrackingSettings(), GROUPS), frames)
    assert keys == [["k0:0", "k0:1"]] * 3


def test_a_track_never_spans_two_utc_days() -> None:
    v = _unit(9)
    keys = _run(CameraTracker(TrackingSettings(), GROUPS), [[_m(5, 100, v)], [_m(12, 101, v)]])
    assert keys[1] == ["k1:0"]  # T0+12 s is past midnight


def test_from_members_equals_stepping_so_a_resume_continues_the_same_track() -> None:
    a = _unit(10)
    members = [_m(t, 100 + 5 * t, (a + 0.1 * _unit(20 + int(t))) / 1.005) for t in (0, 1, 2)]
    tracker = CameraTracker(TrackingSettings(), GROUPS)
    _run(tracker, [[m] for m in members])
    (stepped,) = tracker.open_tracks()
    rebuilt = TrackState.from_members("k0:0", "person", members)
    assert rebuilt.members == stepped.members == 3
    np.testing.assert_array_equal(rebuilt.pooled(), stepped.pooled())
    assert rebuilt.velocity == stepped.velocity and rebuilt.last_bbox == stepped.last_bbox
    resumed = CameraTracker(TrackingSettings(), GROUPS)
    resumed.restore([rebuilt])
    nxt = _m(3, 115, a)
    assert resumed.step(nxt.ts, [nxt], ["new"]) == tracker.step(nxt.ts, [nxt], ["new"])


def test_pooled_vector_is_the_weighted_mean_renormalised() -> None:
    a, b = _unit(11), _unit(12)
    first = Member(T0, (0, 0, 10, 20), "person", 0.9, a, 3.0)
    second = Member(T0 + timedelta(seconds=1), (0, 0, 10, 20), "person", 0.9, b, 1.0)
    pooled = TrackState.from_members("k", "person", [first, second]).pooled()
    want = 3 * a.astype(np.float64) + b
    np.testing.assert_allclose(pooled, want / np.linalg.norm(want), rtol=1e-6)
