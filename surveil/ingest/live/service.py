"""Live ingest, assembled: readers -> pending queue -> batcher -> writer, plus health.

Start order is consumers first (writer, batcher, health), then readers, so nothing a
reader produces waits on a component that is not running. Stop order is the reverse
and bounded by `live.shutdown_seconds`: readers stop, the batcher drains what is
pending while time allows, the writer commits what is prepared and saves the index,
and a final health row says 'stopped'. Whatever the deadline cut off is counted as
dropped and logged, never silently lost.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog

from surveil import telemetry
from surveil.config import LiveSettings
from surveil.container import Services
from surveil.ingest.live.batcher import Batcher
from surveil.ingest.live.cameras import LiveCamera, live_cameras, pinned
from surveil.ingest.live.health import CameraStats, HealthReporter
from surveil.ingest.live.leases import LeaseKeeper, this_worker
from surveil.ingest.live.pending import PendingQueue
from surveil.ingest.live.reader import CameraReader, ReaderTiming
from surveil.ingest.live.writer import BatchWriter, LiveTotals
from surveil.storage.health import CameraGap

log = structlog.get_logger(__name__)

#: Share of the shutdown deadline kept for the last commits and the index save.
COMMIT_SHARE = 0.4
#: How long stopped readers get to leave a blocking read before they are abandoned.
READER_JOIN_SECONDS = 1.0


@dataclass(frozen=True)
class ShutdownReport:
    """How the stop went: whether every thread finished in time, and what was cut off."""

    clean: bool
    seconds: float
    dropped_at_shutdown: int


class LiveService:
    """Runs the cameras this worker holds through the shared batched model path until stopped.

    Which cameras: the enabled ones (settings + catalog) that this worker's pins allow,
    and of those the ones whose lease it holds (`LeaseKeeper`); a lone worker holds all.
    `check_shared_index=False` lets tests run two workers on separate local indexes.
    """

    def __init__(
        self,
        services: Services,
        cameras: Sequence[LiveCamera] | None = None,
        *,
        check_shared_index: bool = True,
    ) -> None:
        self._services = services
        self._settings: LiveSettings = services.settings.live
        if cameras is None:
            cameras = live_cameras(services.settings, services.catalog.list_cameras())
        self.cameras = pinned(cameras, self._settings)
        self._by_id = {c.id: c for c in self.cameras}
        self.stats = {c.id: CameraStats(c.id) for c in self.cameras}
        self.totals = LiveTotals()
        self._stop = threading.Event()
        self._pipeline = services.ingest_pipeline()
        s = self._settings
        self._queue = PendingQueue(s.pending_size, on_drop=self._dropped)
        self._writer = BatchWriter(
            self._pipeline,
            stats=self.stats,
            totals=self.totals,
            capacity=s.write_buffer,
            retry_seconds=s.write_retry_seconds,
            save_seconds=s.index_save_seconds,
        )
        # Read at scrape time; the latest service in the process is the one reported.
        telemetry.QUEUE_DEPTH.labels("pending").set_function(self._queue.__len__)
        telemetry.QUEUE_DEPTH.labels("write").set_function(self._writer.__len__)
        self._batcher = Batcher(
            self._pipeline,
            queue=self._queue,
            writer=self._writer,
            totals=self.totals,
            batch_size=s.batch_size,
            batch_wait=s.batch_wait_seconds,
        )
        self._health = HealthReporter(
            services.health,
            self._held_stats,
            interval=s.health_seconds,
            stall_seconds=s.stall_seconds,
        )
        self._timing = ReaderTiming(
            stall_seconds=s.stall_seconds,
            open_timeout_seconds=s.open_timeout_seconds,
            backoff_seconds=s.backoff_seconds,
            backoff_max_seconds=s.backoff_max_seconds,
        )
        self._readers: dict[str, tuple[CameraReader, threading.Event]] = {}
        self._readers_lock = threading.Lock()
        self.keeper = LeaseKeeper(
            services.leases,
            self,
            worker=this_worker(services.settings),
            cameras={c.id: c.tags for c in self.cameras},
            lease_seconds=s.lease_seconds,
            check_index=check_shared_index,
        )

    @property
    def pending(self) -> int:
        """Keyframes waiting for the models right now."""
        return len(self._queue)

    @property
    def reading(self) -> set[str]:
        """Cameras whose reader runs in this worker right now."""
        with self._readers_lock:
            return set(self._readers)

    def pipeline_timer(self) -> dict[str, float]:
        """Seconds spent per pipeline stage so far (detect, embed, catalog, ...)."""
        return dict(self._pipeline.timer.seconds)

    def start(self) -> None:
        """Register the worker and cameras, start consumers, then claim cameras to read."""
        if not self.cameras:
            log.warning("live.no_cameras", hint="add a `cameras:` list to the config file")
        self.keeper.register()  # refuses a second worker on a local index before models load
        try:
            for cam in self.cameras:
                self._services.catalog.ensure_camera(cam.id, name=cam.name)
                log.info("live.camera", camera_id=cam.id, url=cam.safe_url, kind=cam.kind)
            self._pipeline.warm_up()
            self._writer.start()
            self._batcher.start()
            self.keeper.start()
        except BaseException:
            self.keeper.close()
            raise
        self._health.flush()
        self._health.start()

    def stop(self, deadline_seconds: float | None = None) -> ShutdownReport:
        """Stop readers, drain and commit within the deadline, save the index, hand over."""
        budget = self._settings.shutdown_seconds if deadline_seconds is None else deadline_seconds
        began = time.monotonic()
        end = began + budget
        commit_from = end - budget * COMMIT_SHARE
        self._stop.set()
        self.keeper.halt()
        with self._readers_lock:
            readers = list(self._readers.values())
            self._readers.clear()
        for _, stop in readers:
            stop.set()
        for reader, _ in readers:
            reader.join(min(READER_JOIN_SECONDS, max(0.0, commit_from - time.monotonic())))
        self._queue.close()
        self._batcher.drain(commit_from)
        # A batch already in the models finishes (it was started only if it fit).
        batcher_until = min(end - 1.0, commit_from + self._batcher.batch_seconds + 0.5)
        batcher_done = self._batcher.join(max(0.0, batcher_until - time.monotonic()))
        cut = self._queue.clear()
        for item in cut:
            self._dropped(item.camera_id)
        if cut:
            log.warning("live.shutdown_dropped", keyframes=len(cut))
        self._writer.close(end - 0.5)
        writer_done = self._writer.join(max(0.0, end - time.monotonic()))
        for st in self.stats.values():
            st.set_state("stopped")
        self._health.stop()
        self._health.flush()
        self.keeper.close()  # committed and saved: the others may take the cameras now
        if writer_done:
            self._pipeline.close()
        seconds = time.monotonic() - began
        clean = batcher_done and writer_done
        log.info(
            "live.stopped",
            clean=clean,
            seconds=round(seconds, 2),
            keyframes=self.totals.keyframes,
            appearances=self.totals.appearances,
            pending_drops=self.totals.pending_drops,
            buffer_drops=self.totals.buffer_drops,
        )
        return ShutdownReport(clean, seconds, len(cut))

    def run_until(self, stop: threading.Event) -> ShutdownReport:
        """Start, wait for `stop` (set by a signal handler), then stop cleanly."""
        self.start()
        while not stop.wait(1.0):
            pass
        return self.stop()

    # -- CameraControl: the lease keeper starts and stops readers ------------------------

    def start_camera(self, camera_id: str) -> None:
        """Start reading a camera whose lease this worker just won."""
        camera = self._by_id.get(camera_id)
        if camera is None or self._stop.is_set():
            return
        with self._readers_lock:
            if camera_id in self._readers:
                return
            stop = threading.Event()
            reader = CameraReader(
                camera,
                queue=self._queue,
                stats=self.stats[camera_id],
                open_session=self._open_session,
                timing=self._timing,
                stop=stop,
            )
            self._readers[camera_id] = (reader, stop)
        self.stats[camera_id].set_state("connecting")
        reader.start()

    def stop_camera(self, camera_id: str, *, drop_pending: bool) -> None:
        """Stop a camera's reader now; with `drop_pending`, its queued keyframes go too."""
        with self._readers_lock:
            entry = self._readers.pop(camera_id, None)
        if entry is not None:
            entry[1].set()
        if drop_pending:
            dropped = self._queue.remove(camera_id)
            for _ in dropped:
                self._dropped(camera_id)
            if dropped:
                log.warning("live.lease_lost_dropped", camera_id=camera_id, keyframes=len(dropped))
        self.stats[camera_id].set_state("stopped")

    def hand_back(self, camera_id: str, *, timeout: float) -> None:
        """Stop a camera and wait (up to `timeout`) until what it read is committed."""
        with self._readers_lock:
            entry = self._readers.pop(camera_id, None)
        deadline = time.monotonic() + timeout
        if entry is not None:
            entry[1].set()
            entry[0].join(min(READER_JOIN_SECONDS, timeout))
        while self._outstanding(camera_id) and time.monotonic() < deadline:
            time.sleep(0.05)
        if self._outstanding(camera_id):
            log.warning("live.handback_uncommitted", camera_id=camera_id, seconds=timeout)
        stats = self.stats[camera_id]
        stats.set_state("stopped")
        self._health.write([stats])

    def _outstanding(self, camera_id: str) -> int:
        """Keyframes of a camera queued, in the models, or waiting for the catalog."""
        in_models = camera_id in self._batcher.in_flight
        return self._queue.count(camera_id) + int(in_models) + self._writer.count(camera_id)

    def _held_stats(self) -> list[CameraStats]:
        return [self.stats[c] for c in sorted(self.keeper.held) if c in self.stats]

    def _dropped(self, camera_id: str) -> None:
        self.totals.pending_drops += 1
        telemetry.DROPS.labels("pending").inc()
        self.stats[camera_id].add(drops=1)

    def _open_session(
        self,
        camera: LiveCamera,
        start: datetime,
        fps: float,
        gap_since: datetime | None,
        reason: str | None,
    ) -> int:
        """A source row per connection (fingerprint live:<camera>:<start>), and the gap."""
        catalog = self._services.catalog
        record = catalog.open_source(
            camera_id=camera.id,
            uri=camera.safe_url,
            fingerprint=f"live:{camera.id}:{start.isoformat()}",
            start=start,
            fps=fps,
        )
        if gap_since is not None:
            self._services.health.add_gap(CameraGap(camera.id, gap_since, start, reason))
            log.warning(
                "live.gap_recorded",
                camera_id=camera.id,
                since=gap_since.isoformat(),
                until=start.isoformat(),
                seconds=round((start - gap_since).total_seconds(), 2),
            )
        return record.id
