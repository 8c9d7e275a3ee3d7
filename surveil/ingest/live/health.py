"""Per-camera health counters, and the thread that writes them to the catalog.

Readers, the batcher and the writer bump counters on a `CameraStats`; every few seconds
`HealthReporter` turns them into rates and upserts one row per camera, so any process
(`surveil cameras status`, the API, Prometheus) can see what this one sees. A catalog
outage only delays the next write: health is a snapshot, nothing accumulates.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import structlog
from sqlalchemy.exc import SQLAlchemyError

from surveil.domain import mask_credentials
from surveil.storage.health import CameraHealth, SqlHealth

log = structlog.get_logger(__name__)

#: Rates (fps, keyframes/s) are measured over about this many seconds: commits come in
#: batches, so a shorter window would swing between zero and bursts.
RATE_WINDOW_SECONDS = 10.0
#: Longest error text kept: enough to say what happened, bounded for the table.
MAX_ERROR_CHARS = 500


def safe_error(exc: BaseException | str, *, secrets: Sequence[str] = ()) -> str:
    """An error message fit to log and store: URLs masked, known secrets blanked."""
    text = str(exc)
    words = [mask_credentials(w) if "://" in w else w for w in text.split(" ")]
    text = " ".join(words)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text[:MAX_ERROR_CHARS]


class CameraStats:
    """One camera's live counters; every method is safe to call from any thread."""

    def __init__(self, camera_id: str) -> None:
        self.camera_id = camera_id
        self._lock = threading.Lock()
        self.state = "connecting"
        self.last_frame_at: datetime | None = None
        self.last_frame_mono: float | None = None
        self.frames = 0
        self.keyframes = 0  # committed to the catalog
        self.selected = 0  # chosen by the keyframe selector
        self.drops = 0
        self.reconnects = 0
        self.last_error: str | None = None
        self._marks: deque[tuple[float, int, int]] = deque([(time.monotonic(), 0, 0)])
        self.fps = 0.0
        self.keyframes_per_s = 0.0

    def frame(self, ts: datetime) -> None:
        with self._lock:
            self.frames += 1
            self.last_frame_at = ts
            self.last_frame_mono = time.monotonic()
            if self.state != "online":
                self.state = "online"

    def set_state(self, state: str, error: str | None = None) -> None:
        with self._lock:
            self.state = state
            if error is not None:
                self.last_error = error

    def add(self, *, selected: int = 0, keyframes: int = 0, drops: int = 0) -> None:
        with self._lock:
            self.selected += selected
            self.keyframes += keyframes
            self.drops += drops

    def reconnected(self) -> None:
        with self._lock:
            self.reconnects += 1

    def snapshot(self, *, stall_seconds: float) -> CameraHealth:
        """The row to write; rates are measured since the previous snapshot."""
        now = time.monotonic()
        with self._lock:
            self._marks.append((now, self.frames, self.keyframes))
            # Keep the newest mark at least a window old, so rates span about one window.
            while len(self._marks) > 2 and now - self._marks[1][0] >= RATE_WINDOW_SECONDS:
                self._marks.popleft()
            then, frames, keyframes = self._marks[0]
            elapsed = now - then
            if elapsed >= 0.5:
                self.fps = (self.frames - frames) / elapsed
                self.keyframes_per_s = (self.keyframes - keyframes) / elapsed
            state = self.state
            if (
                state == "online"
                and self.last_frame_mono is not None
                and now - self.last_frame_mono > stall_seconds
            ):
                state = "stalled"
            return CameraHealth(
                camera_id=self.camera_id,
                state=state,
                last_frame_at=self.last_frame_at,
                fps=round(self.fps, 3),
                keyframes_per_s=round(self.keyframes_per_s, 3),
                keyframes=self.keyframes,
                drops=self.drops,
                reconnects=self.reconnects,
                last_error=self.last_error,
                updated_at=datetime.now(UTC),
            )


class HealthReporter:
    """Writes every camera's snapshot to the catalog every `interval` seconds."""

    def __init__(
        self,
        store: SqlHealth,
        cameras: Callable[[], Sequence[CameraStats]],
        *,
        interval: float,
        stall_seconds: float,
    ) -> None:
        self._store = store
        #: The cameras this worker reads now: a camera another worker holds is its to write.
        self._cameras = cameras
        self._interval = interval
        self._stall = stall_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-health", daemon=True)
        self.writes = 0
        self.failures = 0

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()

    def flush(self) -> bool:
        """Write one snapshot now; False (and a log line) when the catalog is unreachable."""
        return self.write(self._cameras())

    def write(self, cameras: Sequence[CameraStats]) -> bool:
        """Write these cameras' snapshots now (a camera handed back writes its last one)."""
        rows = [c.snapshot(stall_seconds=self._stall) for c in cameras]
        try:
            self._store.write(rows)
        except SQLAlchemyError as exc:
            self.failures += 1
            log.warning("live.health_write_failed", error=safe_error(exc).splitlines()[0])
            return False
        self.writes += 1
        return True

    def stop(self) -> None:
        """Stop the loop; the caller writes the final ('stopped') snapshot itself."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
