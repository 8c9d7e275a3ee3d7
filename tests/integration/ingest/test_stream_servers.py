"""The live-ingest test servers are real: OpenCV reads them, they die and come back.

The ingest resilience tests lean on tests/streams.py; if a server were secretly a file, or
did not really go away on `stop()`, or sent frames faster than real time, those tests
would pass for the wrong reasons. So this proves, with OpenCV's FFmpeg reader (what the
ingest uses): frames arrive from HTTP and RTSP at the file's native rate, keep coming
across the end of a looping file, stop within seconds of a kill, and come back at the
same URL; and restarting PostgreSQL really drops and then restores connections.
"""

from __future__ import annotations

import itertools
import subprocess
import time
from pathlib import Path
from typing import Any

import cv2
import psycopg
import pytest
import streams
from streams import (
    HttpStreamFactory,
    PostgresCluster,
    RtspStreamFactory,
    StreamServer,
    pg_accepts,
    restart_postgres,
)

# The fixtures, for this module even before tests/conftest.py imports them for everyone.
http_stream_factory = streams.http_stream_factory
rtsp_stream_factory = streams.rtsp_stream_factory
postgres_cluster = streams.postgres_cluster

LOBBY = Path("videos/intel_sample_videos/one-by-one-person-detection.mp4")  # 10 fps, IDR/s
LOBBY_FPS = 10.0
SHAPE = (432, 768, 3)
# FFmpeg probes about 2-3 s of a live stream before OpenCV's open returns (20 frames
# to guess the frame rate); tests that are not about opening probe less to stay quick.
QUICK_PROBE = "fpsprobesize;2|analyzeduration;500000"


def open_capture(url: str, read_timeout_ms: int = 4000) -> Any:
    """A VideoCapture the way live ingest opens one, with bounded open/read waits."""
    params = [
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
        8000,
        cv2.CAP_PROP_READ_TIMEOUT_MSEC,
        read_timeout_ms,
    ]
    cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)
    assert cap.isOpened(), f"OpenCV could not open {url}"
    return cap


def read_ok(cap: Any, count: int) -> list[float]:
    """Read `count` frames (all must decode at full size); return CAP_PROP_POS_MSEC of each."""
    positions = []
    for index in range(count):
        ok, frame = cap.read()
        assert ok, f"read failed at frame {index}"
        assert frame.shape == SHAPE
        positions.append(float(cap.get(cv2.CAP_PROP_POS_MSEC)))
    return positions


def live_fps(cap: Any, frames: int = 20) -> float:
    """Frames per second once the frames FFmpeg buffered while probing are drained.

    Buffered frames come back at decode speed; a live frame waits for the server, so the
    first read that blocks marks the live edge.
    """
    for _ in range(80):
        started = time.monotonic()
        assert cap.read()[0]
        if time.monotonic() - started > 0.04:
            break
    started = time.monotonic()
    read_ok(cap, frames)
    return frames / (time.monotonic() - started)


def seconds_until_read_fails(cap: Any, limit: float = 10.0) -> float:
    started = time.monotonic()
    while cap.read()[0]:
        assert time.monotonic() - started < limit, "frames kept coming after the kill"
    return time.monotonic() - started


def check_kill_and_restart(server: StreamServer, cap: Any) -> None:
    url = server.url
    server.stop()
    assert not server.running
    assert seconds_until_read_fails(cap) < 5.0
    cap.release()
    server.restart()
    assert server.url == url and server.running
    again = open_capture(url)
    read_ok(again, 5)
    again.release()


def short_clip(source: Path, tmp_path: Path, seconds: float = 1.0) -> Path:
    """The first seconds of a shared video (stream copy) so a test sees several loops."""
    clip = tmp_path / "clip.mp4"
    argv = ["ffmpeg", "-v", "error", "-i", str(source), "-t", str(seconds), "-an", "-c", "copy"]
    subprocess.run([*argv, str(clip)], check=True)
    return clip


def test_http_stream_is_live_paced_and_comes_back(
    http_stream_factory: HttpStreamFactory,
    shared_data: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = http_stream_factory(shared_data / LOBBY)
    assert server.url.startswith("http://127.0.0.1:")
    cap = open_capture(server.url)
    fps = live_fps(cap)
    assert 0.7 * LOBBY_FPS < fps < 1.3 * LOBBY_FPS, f"not paced at native rate: {fps:.1f} fps"
    # `-listen 1` serves one client; the supervisor relaunches ffmpeg for the next one.
    cap.release()
    server.wait_ready(5)
    monkeypatch.setenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", QUICK_PROBE)
    cap = open_capture(server.url, read_timeout_ms=1500)
    read_ok(cap, 5)
    # A hung camera: the connection stays open and nothing comes.
    server.stall()
    assert seconds_until_read_fails(cap) < 5.0
    server.resume()
    cap.release()
    server.wait_ready(5)
    cap = open_capture(server.url)
    read_ok(cap, 5)
    check_kill_and_restart(server, cap)


def test_rtsp_stream_is_live_paced_shared_and_comes_back(
    rtsp_stream_factory: RtspStreamFactory,
    shared_data: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = rtsp_stream_factory(shared_data / LOBBY)
    assert server.url.startswith("rtsp://127.0.0.1:")
    cap = open_capture(server.url)  # FFmpeg's default: RTP over UDP
    fps = live_fps(cap)
    assert 0.7 * LOBBY_FPS < fps < 1.3 * LOBBY_FPS, f"not paced at native rate: {fps:.1f} fps"
    # A second reader of the same camera, over TCP-interleaved RTP, joins mid-stream.
    monkeypatch.setenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", f"rtsp_transport;tcp|{QUICK_PROBE}")
    second = open_capture(server.url)
    read_ok(second, 5)
    read_ok(cap, 5)
    second.release()
    check_kill_and_restart(server, cap)


@pytest.mark.parametrize("protocol", ["http", "rtsp"])
def test_looping_file_keeps_streaming_past_its_end(
    protocol: str,
    http_stream_factory: HttpStreamFactory,
    rtsp_stream_factory: RtspStreamFactory,
    shared_data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", QUICK_PROBE)
    clip = short_clip(shared_data / LOBBY, tmp_path)  # 11 frames
    factory = http_stream_factory if protocol == "http" else rtsp_stream_factory
    server = factory(clip)
    cap = open_capture(server.url)
    positions = read_ok(cap, 30)  # nearly three loops
    cap.release()
    # OpenCV's first few RTSP positions are off (B-frame reordering at the start); after
    # that every step must be one frame (100 ms), across both loop boundaries.
    steps = [later - earlier for earlier, later in itertools.pairwise(positions[5:])]
    assert all(50 < step < 150 for step in steps), f"timestamps jump at a loop: {positions}"


def test_restart_postgres_drops_and_restores_connections(
    postgres_cluster: PostgresCluster,
) -> None:
    dsn = postgres_cluster.url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn) as conn:
        conn.execute("select 1")
        with postgres_cluster.outage() as outage:
            assert not pg_accepts(postgres_cluster.url)
            with pytest.raises(psycopg.OperationalError):
                conn.execute("select 1")
    assert pg_accepts(postgres_cluster.url)
    assert outage.seconds > 0
    down = restart_postgres(down_seconds=0.5)
    assert 0.5 <= down < 30
    with psycopg.connect(dsn) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
