"""One thread per camera: open, decode, timestamp, select keyframes, reconnect.

A reader never waits on the models (it hands keyframes to a drop-oldest queue) and never
waits on another camera. Any failure - the stream does not open, stops delivering
frames (read timeout = the stall watchdog), or errors mid-way - closes the capture and
reconnects after an exponential, jittered backoff; the time without frames is recorded
as a gap when the camera is back.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

import cv2
import structlog

from surveil import telemetry
from surveil.domain import Frame, Image
from surveil.ingest.keyframes import KeyframeSelector
from surveil.ingest.live.cameras import LiveCamera
from surveil.ingest.live.health import CameraStats, safe_error
from surveil.ingest.live.pending import PendingKeyframe, PendingQueue

log = structlog.get_logger(__name__)

# FFmpeg's own log lines can quote a stream URL with its password and bypass our masking:
# keep them quiet unless an operator asks (OpenCV reads this when FFmpeg is first used).
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

ONE_MICROSECOND = timedelta(microseconds=1)


class StreamError(Exception):
    """A stream failed to open or stopped delivering; the reader reconnects."""


@dataclass(frozen=True)
class ReaderTiming:
    """The reader's clocks: watchdog, open timeout and backoff (from live settings)."""

    stall_seconds: float
    open_timeout_seconds: float
    backoff_seconds: float
    backoff_max_seconds: float


#: (camera, session start, fps, gap start or None, reason) -> the session's source id.
OpenSession = Callable[[LiveCamera, datetime, float, datetime | None, str | None], int]


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff: uniform in [base/2, min(cap, base * 2**attempt)]."""
    top = min(cap, base * (2 ** min(attempt, 30)))
    return rng.uniform(min(base / 2, top), top)


class MonotonicClock:
    """UTC wall-clock capture times that never go backwards for one camera.

    ts = max(now, previous + 1 µs): a host or camera clock jump cannot reorder history.
    """

    def __init__(self) -> None:
        self._last: datetime | None = None

    def now(self) -> datetime:
        ts = datetime.now(UTC)
        if self._last is not None and ts <= self._last:
            ts = self._last + ONE_MICROSECOND
        self._last = ts
        return ts


def open_capture(camera: LiveCamera, timing: ReaderTiming) -> tuple[cv2.VideoCapture, float]:
    """Open the camera's decoder; returns it and its frame rate (25 when it states none)."""
    if camera.kind == "device":
        target: int | str = int(camera.url) if camera.url.isdigit() else camera.url
        cap = cv2.VideoCapture(target)
    else:
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            int(timing.open_timeout_seconds * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            int(timing.stall_seconds * 1000),
        ]
        cap = cv2.VideoCapture(camera.url, cv2.CAP_FFMPEG, params)
    if not cap.isOpened():
        cap.release()
        raise StreamError(f"cannot open {camera.safe_url}")
    fps = float(cap.get(cv2.CAP_PROP_FPS))
    if not (0 < fps <= 240):
        fps = 25.0
    return cap, fps


class CameraReader:
    """Reads one camera until stopped, reconnecting as often as it takes."""

    def __init__(
        self,
        camera: LiveCamera,
        *,
        queue: PendingQueue,
        stats: CameraStats,
        open_session: OpenSession,
        timing: ReaderTiming,
        stop: threading.Event,
        seed: int | None = None,
    ) -> None:
        self.camera = camera
        self._queue = queue
        self._stats = stats
        self._open_session = open_session
        self._timing = timing
        self._stop = stop
        self._rng = random.Random(seed)
        self._clock = MonotonicClock()
        self._thread = threading.Thread(target=self._run, name=f"reader-{camera.id}", daemon=True)
        #: Set while the camera is down: (since, why), recorded as a gap once it is back.
        self._down: tuple[datetime, str] | None = None
        self._delivered = False

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> bool:
        """Wait for the thread; True when it has ended."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            self._stats.set_state("connecting")
            self._delivered = False
            try:
                self._session()
            except Exception as exc:  # any decoder or catalog failure: reconnect, never die
                error = safe_error(exc, secrets=[self.camera.url])
                self._stats.set_state("offline", error)
                log.warning("live.camera_down", camera_id=self.camera.id, error=error)
                if self._down is None:
                    self._down = (self._stats.last_frame_at or datetime.now(UTC), error)
            if self._stop.is_set():
                return
            attempt = 0 if self._delivered else attempt + 1
            self._stats.reconnected()
            delay = backoff_delay(
                attempt, self._timing.backoff_seconds, self._timing.backoff_max_seconds, self._rng
            )
            log.info("live.reconnect_wait", camera_id=self.camera.id, seconds=round(delay, 2))
            self._stop.wait(delay)

    def _session(self) -> None:
        """One connection: open, then read until stopped or the stream fails."""
        cap, fps = open_capture(self.camera, self._timing)
        try:
            ok, image = cap.read()
            if not ok or image is None:
                raise StreamError(f"{self.camera.safe_url} opened but delivered no frame")
            start = self._clock.now()
            since, why = self._down if self._down else (None, None)
            source_id = self._open_session(self.camera, start, fps, since, why)
            self._down = None
            self._delivered = True
            log.info("live.camera_online", camera_id=self.camera.id, fps=round(fps, 2))
            self._read(cap, cast(Image, image), start, fps, source_id)
        finally:
            cap.release()

    def _read(
        self, cap: cv2.VideoCapture, first: Image, start: datetime, fps: float, source_id: int
    ) -> None:
        selector = KeyframeSelector(self.camera.keyframes)
        paced = self.camera.kind == "file"  # files play at their native rate, in a loop
        began = time.monotonic()
        index, image, ts = 0, first, start
        while not self._stop.is_set():
            frame = Frame(camera_id=self.camera.id, index=index, ts=ts, image=image)
            self._offer(selector, frame, source_id)
            index += 1
            if paced:
                due = began + index / fps
                self._stop.wait(max(0.0, due - time.monotonic()))
            ok, decoded = cap.read()
            if (not ok or decoded is None) and paced and not self._stop.is_set():
                cap.set(cv2.CAP_PROP_POS_FRAMES, 0)  # end of the file: loop
                ok, decoded = cap.read()
            if not ok or decoded is None:
                if self._stop.is_set():
                    return
                raise StreamError(f"{self.camera.safe_url} stopped delivering frames")
            image, ts = cast(Image, decoded), self._clock.now()

    def _offer(self, selector: KeyframeSelector, frame: Frame, source_id: int) -> None:
        self._stats.frame(frame.ts)
        telemetry.FRAMES.inc()
        kept = selector.consider(frame)
        if kept is None:
            return
        self._stats.add(selected=1)
        item = PendingKeyframe(kept, source_id, time.monotonic())
        self._queue.put(item, block=False, stop=self._stop)
