"""Which crops need no embedding: the planner over synthetic boxes, and the tracker after it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from surveil.config import TrackingSettings
from surveil.domain import BBox
from surveil.tracking import CameraTracker, Member
from surveil.tracking.reuse import Continuation, ReusePlanner

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
GROUPS = {"person": ["person"], "vehicle": ["car", "truck"]}
VEC = np.eye(8, dtype=np.float32)[0]


def _box(x: float, w: float = 40.0) -> BBox:
    return (x, 100.0, x + w, 200.0)


def _tracked(*members: tuple[float, float]) -> CameraTracker:
    """A tracker holding one car track seen at (seconds, x) for each member, embedded."""
    tracker = CameraTracker(TrackingSettings(), GROUPS)
    for t, x in members:
        ts = T0 + timedelta(seconds=t)
        tracker.step(ts, [Member(ts, _box(x), "car", 0.9, VEC, 0.5)], [f"k{t}"])
    return tracker


def _plan(
    tracker: CameraTracker, frames: list[tuple[float, list[BBox]]], **settings: float
) -> list[list[Continuation | None]]:
    planner = ReusePlanner(TrackingSettings(**settings), GROUPS, tracker.open_tracks())
    return [
        planner.keyframe(
            T0 + timedelta(seconds=t),
            [f"c{t}:{n}" for n in range(len(boxes))],
            boxes,
            ["car"] * len(boxes),
            [0.5] * len(boxes),
        )
        for t, boxes in frames
    ]


def test_a_steady_car_is_continued_and_the_plan_follows_it_through_the_batch() -> None:
    tracker = _tracked((0.0, 100), (0.1, 104))  # 40 px/s to the right
    plans = _plan(tracker, [(0.2, [_box(108)]), (0.3, [_box(112)]), (0.4, [_box(116)])])
    assert [p[0] and p[0].ref for p in plans] == ["k0.0"] * 3
    # Each continuation names the state it was planned from: the previous box.
    assert [p[0] and p[0].last_box for p in plans] == [_box(104), _box(108), _box(112)]


def test_an_object_first_seen_in_the_batch_is_continued_once_its_motion_is_known() -> None:
    tracker = CameraTracker(TrackingSettings(), GROUPS)
    plans = _plan(tracker, [(0, [_box(100)]), (0.1, [_box(101)]), (0.2, [_box(102)])])
    assert plans[0] == [None]  # nothing known yet: embedded
    assert plans[1] == [None]  # seen once: where it goes is not known yet
    assert plans[2][0] is not None and plans[2][0].ref == "c0.1:0"  # the crop it was last


def test_a_track_seen_once_is_not_continued() -> None:
    """Whoever walks out of a spot may uncover someone else standing in it (MOT17-05)."""
    assert _plan(_tracked((0.0, 100)), [(0.1, [_box(101)])]) == [[None]]


def test_two_objects_close_together_are_embedded() -> None:
    tracker = _tracked((0.0, 100), (0.05, 100))
    (plan,) = _plan(tracker, [(0.1, [_box(100), _box(118)])])  # IoU of the two ~0.38
    assert plan == [None, None]


def test_vectors_are_refreshed_and_better_crops_embedded() -> None:
    tracker = _tracked((0.0, 100), (0.05, 100))
    assert _plan(tracker, [(1.5, [_box(100)])], reembed_seconds=1.0) == [[None]]
    assert _plan(tracker, [(0.5, [_box(100)])], reembed_seconds=1.0)[0][0] is not None
    planner = ReusePlanner(TrackingSettings(), GROUPS, tracker.open_tracks())
    better = planner.keyframe(T0 + timedelta(seconds=0.5), ["c"], [_box(100)], ["car"], [0.9])
    assert better == [None]  # 0.9 > 0.5 x 1.25: the pooled vector wants this crop


def test_a_box_that_changed_size_or_label_group_is_embedded() -> None:
    tracker = _tracked((0.0, 100), (0.05, 100))
    grown = (100.0, 100.0, 152.0, 200.0)  # area x1.3, IoU 0.77
    assert _plan(tracker, [(0.1, [grown])]) == [[None]]
    planner = ReusePlanner(TrackingSettings(), GROUPS, tracker.open_tracks())
    as_person = planner.keyframe(T0 + timedelta(seconds=0.1), ["c"], [_box(100)], ["person"], [0.5])
    assert as_person == [None]


def test_reuse_off_embeds_everything() -> None:
    tracker = _tracked((0.0, 100), (0.05, 100))
    assert _plan(tracker, [(0.1, [_box(100)])], reuse_embeddings=False) == [[None]]


def test_a_continued_member_joins_its_track_and_leaves_the_pooled_vector_alone() -> None:
    tracker = _tracked((0.0, 100))
    (before,) = tracker.open_tracks()
    pooled = before.pooled()
    ts = T0 + timedelta(seconds=0.1)
    other = np.eye(8, dtype=np.float32)[1]
    stranger = Member(ts, _box(400), "car", 0.9, other, 0.5)
    carried = Member(ts, _box(101), "car", 0.9, before.last_embedding, 0.0)
    joined = tracker.step(ts, [carried, stranger], ["a", "b"], ["k0.0", None])
    assert joined == ["k0.0", "b"]
    track = next(t for t in tracker.open_tracks() if t.key == "k0.0")
    assert track.members == 2 and track.embedded_ts == T0
    np.testing.assert_array_equal(track.pooled(), pooled)
