"""Domain invariants: shape-checked detections, UTC times, safe camera ids, filter checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from surveil.domain import Detections, Frame, InputError, SearchFilters, validate_camera_id


@pytest.mark.parametrize("good", ["lobby", "cam-04", "c1.s1", "A_b-9", "x" * 64])
def test_camera_ids_that_can_name_a_folder(good: str) -> None:
    assert validate_camera_id(good) == good


@pytest.mark.parametrize("bad", ["", "../evil", "a/b", ".hidden", "x" * 65, "caméra", "a b"])
def test_camera_ids_that_could_escape_or_confuse_are_refused(bad: str) -> None:
    with pytest.raises(InputError, match="camera id"):
        validate_camera_id(bad)


def test_detections_are_shape_checked() -> None:
    with pytest.raises(ValueError, match="xyxy"):
        Detections(np.zeros((2, 4), np.float32), np.zeros(1, np.float32), ("a",))
    with pytest.raises(ValueError, match="confidence"):
        Detections(np.zeros((1, 4), np.float32), np.zeros(2, np.float32), ("a",))
    keep = Detections(
        np.arange(8, dtype=np.float32).reshape(2, 4), np.array([0.9, 0.1], np.float32), ("a", "b")
    ).select(np.array([False, True]))
    assert keep.labels == ("b",) and keep.xyxy.tolist() == [[4, 5, 6, 7]]


def test_frames_need_utc_times() -> None:
    image = np.zeros((2, 2, 3), np.uint8)
    with pytest.raises(ValueError, match="UTC"):
        Frame("c", 0, datetime(2026, 1, 1), image)
    with pytest.raises(ValueError, match="UTC"):
        Frame("c", 0, datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=2))), image)


def test_filters_refuse_inverted_windows_and_impossible_scores() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(InputError, match="after"):
        SearchFilters(since=t, until=t - timedelta(seconds=1))
    with pytest.raises(InputError, match="min-score"):
        SearchFilters(min_score=1.5)


def test_roles_are_ordered() -> None:
    from surveil.domain import role_allows

    assert role_allows("admin", "operator") and role_allows("operator", "viewer")
    assert not role_allows("viewer", "operator") and not role_allows("operator", "admin")
    assert not role_allows("root", "viewer")


def test_stream_urls_are_masked() -> None:
    from surveil.domain import mask_credentials

    assert (
        mask_credentials("rtsp://admin:hunter2@10.0.0.5:554/s1?token=abc&ch=1")
        == "rtsp://admin:***@10.0.0.5:554/s1?token=***&ch=1"
    )
    assert mask_credentials("rtsp://viewer@cam/x") == "rtsp://viewer@cam/x"
    assert mask_credentials("/dev/video0") == "/dev/video0"
    assert "hunter2" not in mask_credentials("http://u:hunter2@h/p?api_key=hunter2")


def test_api_keys_are_random_and_hashed() -> None:
    from surveil.domain import hash_api_key, new_api_key

    a, b = new_api_key(), new_api_key()
    assert a != b and a.startswith("svk_") and len(a) >= 40
    assert hash_api_key(a) == hash_api_key(a) != hash_api_key(b)
    assert len(hash_api_key(a)) == 64
