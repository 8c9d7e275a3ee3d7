"""Live ingest's pure parts: camera list and secrets, drop-oldest queue, backoff, clock."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from conftest import SettingsFactory

from surveil.domain import CameraInfo, ConfigError, Frame, Keyframe
from surveil.ingest.live.cameras import expand, live_cameras, load_secrets, pinned, source_kind
from surveil.ingest.live.health import CameraStats, safe_error
from surveil.ingest.live.pending import PendingKeyframe, PendingQueue
from surveil.ingest.live.reader import MonotonicClock, backoff_delay

T0 = datetime(2026, 11, 25, tzinfo=UTC)


def _item(camera: str, index: int) -> PendingKeyframe:
    image = np.zeros((4, 4, 3), dtype=np.uint8)
    frame = Frame(camera_id=camera, index=index, ts=T0 + timedelta(seconds=index), image=image)
    return PendingKeyframe(Keyframe(frame=frame, reason="first"), 1, time.monotonic())


def test_a_full_queue_drops_the_oldest_and_says_whose() -> None:
    dropped: list[str] = []
    q = PendingQueue(3, on_drop=dropped.append)
    stop = threading.Event()
    for i, cam in enumerate(["a", "b", "a", "b", "c"]):
        assert q.put(_item(cam, i), block=False, stop=stop)
    assert dropped == ["a", "b"]
    taken = q.take(10, wait=0.0, gather=0.0)
    assert [(t.camera_id, t.keyframe.frame.index) for t in taken] == [("a", 2), ("b", 3), ("c", 4)]


def test_a_blocking_producer_waits_for_room_and_loses_nothing() -> None:
    dropped: list[str] = []
    q = PendingQueue(1, on_drop=dropped.append)
    stop = threading.Event()
    q.put(_item("rec", 0), block=True, stop=stop)
    done = threading.Event()

    def second() -> None:
        q.put(_item("rec", 1), block=True, stop=stop)
        done.set()

    threading.Thread(target=second, daemon=True).start()
    assert not done.wait(0.3)  # blocked: the queue is full
    assert [t.keyframe.frame.index for t in q.take(1, wait=0.0, gather=0.0)] == [0]
    assert done.wait(2.0)
    assert [t.keyframe.frame.index for t in q.take(1, wait=1.0, gather=0.0)] == [1]
    assert dropped == []


def test_a_batch_gathers_until_full_or_its_deadline() -> None:
    q = PendingQueue(100, on_drop=lambda _: None)
    stop = threading.Event()
    q.put(_item("a", 0), block=False, stop=stop)
    started = time.monotonic()
    assert len(q.take(8, wait=1.0, gather=0.3)) == 1  # a lone keyframe waits 0.3 s, no more
    assert 0.25 <= time.monotonic() - started < 1.0
    for i in range(10):
        q.put(_item("b", i), block=False, stop=stop)
    started = time.monotonic()
    assert len(q.take(8, wait=1.0, gather=5.0)) == 8  # full: no waiting for the deadline
    assert time.monotonic() - started < 0.5
    assert q.take(8, wait=0.0, gather=0.0) and q.take(8, wait=0.05, gather=0.0) == []


def test_backoff_grows_to_its_cap_with_jitter() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(a, 1.0, 30.0, rng) for a in range(10)]
    assert all(0.5 <= d <= 30.0 for d in delays)
    assert max(delays[:2]) <= 2.0 and max(delays[6:]) > 10.0
    assert len({round(d, 6) for d in delays}) == len(delays)  # jittered, not lock-step


def test_capture_times_never_go_backwards_even_if_the_clock_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    times = iter([T0, T0 + timedelta(seconds=1), T0 - timedelta(hours=1), T0])

    class FakeDatetime(datetime):
        @classmethod
        def now(cls, tz: object = None) -> FakeDatetime:
            return next(times)  # type: ignore[return-value]

    monkeypatch.setattr("surveil.ingest.live.reader.datetime", FakeDatetime)
    clock = MonotonicClock()
    stamps = [clock.now() for _ in range(4)]
    assert stamps == sorted(stamps) and len(set(stamps)) == 4
    assert stamps[2] == stamps[1] + timedelta(microseconds=1)


def test_placeholders_fill_from_env_then_secrets_and_a_missing_one_is_named(
    tmp_path: Path,
) -> None:
    secrets = tmp_path / "s.env"
    secrets.write_text("# comment\nPASS = from-file\nOTHER=x\n\n")
    loaded = load_secrets(secrets)
    assert loaded == {"PASS": "from-file", "OTHER": "x"}
    url = "rtsp://u:${PASS}@h/${OTHER}"
    assert expand(url, camera_id="c", env={}, secrets=loaded) == "rtsp://u:from-file@h/x"
    assert expand(url, camera_id="c", env={"PASS": "env"}, secrets=loaded) == "rtsp://u:env@h/x"
    with pytest.raises(ConfigError, match=r"camera 'c'.*\$\{NOPE\}.*export NOPE"):
        expand("rtsp://${NOPE}@h", camera_id="c", env={}, secrets={})
    (tmp_path / "bad.env").write_text("PASS hunter2\n")
    with pytest.raises(ConfigError, match="KEY=VALUE") as info:
        load_secrets(tmp_path / "bad.env")
    assert "hunter2" not in str(info.value)


def test_cameras_come_from_settings_then_the_catalog(make_settings: SettingsFactory) -> None:
    settings = make_settings(
        cameras=[
            {
                "id": "gate",
                "url": "rtsp://admin:${GATE}@10.0.0.7/s",
                "keyframes": {"heartbeat_seconds": 1.5},
            },
            {"id": "off", "url": "/x.mp4", "enabled": False},
        ],
        **{"keyframes.motion_threshold": 0.05},
    )
    catalog = [
        CameraInfo("gate", "Gate", True, "rtsp://other", T0),  # settings win
        CameraInfo("dock", "Dock", True, "http://cam/stream.ts", T0),
        CameraInfo("idle", "Idle", False, "http://cam/idle", T0),
        CameraInfo("nourl", "No URL", True, None, T0),
    ]
    cams = {c.id: c for c in live_cameras(settings, catalog, env={"GATE": "pw"})}
    assert set(cams) == {"gate", "dock"}
    gate = cams["gate"]
    assert gate.url == "rtsp://admin:pw@10.0.0.7/s"
    assert gate.safe_url == "rtsp://admin:***@10.0.0.7/s" and "pw" not in repr(gate)
    assert gate.keyframes.heartbeat_seconds == 1.5
    assert gate.keyframes.motion_threshold == 0.05  # the rest of the policy is the global one
    assert cams["dock"].kind == "stream" and cams["dock"].name == "Dock"


def test_source_kinds() -> None:
    assert source_kind("0") == source_kind("/dev/video2") == "device"
    assert source_kind("rtsp://h/s") == source_kind("https://h/s.ts") == "stream"
    assert source_kind("/videos/demo.mp4") == "file"


def test_errors_lose_their_credentials() -> None:
    msg = safe_error(RuntimeError("cannot open rtsp://admin:pw@10.0.0.7/s now"), secrets=["pw"])
    assert msg == "cannot open rtsp://admin:***@10.0.0.7/s now"


def test_a_camera_with_old_frames_reads_as_stalled() -> None:
    stats = CameraStats("c")
    stats.frame(T0)
    assert stats.snapshot(stall_seconds=60).state == "online"
    time.sleep(0.05)
    assert stats.snapshot(stall_seconds=0.01).state == "stalled"


def test_pins_pick_cameras_by_id_and_by_tag_from_settings_and_catalog(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(
        cameras=[
            {"id": "gate", "url": "/gate.mp4", "tags": ["heavy", "outdoor"]},
            {"id": "hall", "url": "/hall.mp4"},
        ]
    )
    catalog = [CameraInfo("dock", "Dock", True, "http://cam/dock.ts", T0, ("heavy",))]
    cams = live_cameras(settings, catalog)
    assert {c.id: c.tags for c in cams} == {
        "gate": ("heavy", "outdoor"),
        "hall": (),
        "dock": ("heavy",),
    }
    by_tag = settings.live.model_copy(update={"camera_tags": ["heavy"]})
    assert [c.id for c in pinned(cams, by_tag)] == ["gate", "dock"]
    by_id = settings.live.model_copy(update={"cameras": ["hall", "gone"]})
    assert [c.id for c in pinned(cams, by_id)] == ["hall"]
    both = settings.live.model_copy(update={"cameras": ["gate", "hall"], "camera_tags": ["heavy"]})
    assert [c.id for c in pinned(cams, both)] == ["gate"]
    assert pinned(cams, settings.live) == cams


def test_a_bad_camera_tag_is_a_config_error_naming_the_camera(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(cameras=[{"id": "gate", "url": "/g.mp4", "tags": ["has space"]}])
    with pytest.raises(ConfigError, match=r"camera 'gate': camera tag 'has space' is not allowed"):
        live_cameras(settings)
