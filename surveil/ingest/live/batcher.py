"""The ONE model path of live ingest: batches keyframes across cameras, detects, embeds.

Batches form from whatever cameras have keyframes pending, up to `batch_size` or until
`batch_wait_seconds` passed since the first one arrived, so a busy site fills batches
(better model throughput) and a quiet one does not hold a lone keyframe back. The work
itself is `IngestPipeline.prepare`, the same code recorded ingest runs.
"""

from __future__ import annotations

import threading
import time

import structlog

from surveil.ingest.live.health import safe_error
from surveil.ingest.live.pending import PendingKeyframe, PendingQueue
from surveil.ingest.live.writer import BatchWriter, LiveTotals, ReadyBatch
from surveil.ingest.pipeline import IngestPipeline

log = structlog.get_logger(__name__)


class Batcher:
    """One thread: take a batch from the pending queue, prepare it, hand it to the writer."""

    def __init__(
        self,
        pipeline: IngestPipeline,
        *,
        queue: PendingQueue,
        writer: BatchWriter,
        totals: LiveTotals,
        batch_size: int,
        batch_wait: float,
    ) -> None:
        self._pipeline = pipeline
        self._queue = queue
        self._writer = writer
        self._totals = totals
        self._batch_size = batch_size
        self._batch_wait = batch_wait
        self._stop = threading.Event()
        self._deadline: float | None = None
        #: Cameras of the batch in the models right now (a camera handed back waits on it).
        self.in_flight: frozenset[str] = frozenset()
        #: Smoothed seconds per batch: at shutdown no batch starts that cannot finish.
        self.batch_seconds = 0.0
        self._thread = threading.Thread(target=self._run, name="live-batcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def drain(self, deadline: float) -> None:
        """Finish what is queued (new batches only until `deadline`), then stop."""
        self._deadline = deadline
        self._stop.set()

    def join(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            if self._stop.is_set():
                if self._deadline is not None and (
                    time.monotonic() + self.batch_seconds >= self._deadline
                ):
                    break
                items = self._queue.take(self._batch_size, wait=0.0, gather=0.0)
                if not items:
                    break
            else:
                items = self._queue.take(self._batch_size, wait=0.2, gather=self._batch_wait)
                if not items:
                    continue
            self._process(items)

    def _process(self, items: list[PendingKeyframe]) -> None:
        self.in_flight = frozenset(i.camera_id for i in items)
        try:
            self._prepare(items)
        finally:
            self.in_flight = frozenset()

    def _prepare(self, items: list[PendingKeyframe]) -> None:
        started = time.monotonic()
        try:
            prepared = self._pipeline.prepare(
                [i.keyframe for i in items], [i.source_id for i in items]
            )
        except Exception as exc:  # a bad batch must not stop every camera
            self._totals.model_errors += 1
            log.error("live.batch_failed", error=safe_error(exc), keyframes=len(items))
            return
        took = time.monotonic() - started
        smooth = 0.7 * self.batch_seconds + 0.3 * took
        self.batch_seconds = took if self.batch_seconds == 0 else smooth
        self._writer.submit(
            ReadyBatch(prepared, [i.camera_id for i in items], [i.captured for i in items])
        )
