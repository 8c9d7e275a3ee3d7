"""The catalog + index writer: commits prepared batches in order, riding out outages.

A catalog outage (PostgreSQL restarting) must not lose committed work or crash the
service: the writer keeps the batch it could not commit at the head of a bounded buffer
and retries it; while it waits, newly prepared batches queue behind it, and if the
buffer fills the OLDEST waiting batch is given up - its files removed, its keyframes
counted as dropped per camera and logged. Commits and index adds happen on this one
thread, so the index only ever holds committed ids, and saving it is safe here.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import structlog
from sqlalchemy.exc import SQLAlchemyError

from surveil import telemetry
from surveil.ingest.batches import PreparedBatch
from surveil.ingest.live.health import CameraStats, safe_error
from surveil.ingest.pipeline import IngestPipeline

log = structlog.get_logger(__name__)

#: Capture-to-searchable latencies kept for percentiles (a ring: bounded memory).
LATENCY_SAMPLES = 100_000


@dataclass
class LiveTotals:
    """Process-wide live ingest counters, for benchmarks, metrics and the shutdown log."""

    batches: int = 0
    keyframes: int = 0
    appearances: int = 0
    pending_drops: int = 0
    buffer_drops: int = 0
    model_errors: int = 0
    catalog_retries: int = 0
    batch_sizes: Counter[int] = field(default_factory=Counter)
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLES))


@dataclass(frozen=True)
class ReadyBatch:
    """A prepared batch with, per keyframe, its camera and monotonic capture time."""

    prepared: PreparedBatch
    cameras: list[str]
    captured: list[float]


class BatchWriter:
    """One thread: commit the oldest ready batch, add it to the index, save periodically."""

    def __init__(
        self,
        pipeline: IngestPipeline,
        *,
        stats: Mapping[str, CameraStats],
        totals: LiveTotals,
        capacity: int,
        retry_seconds: float,
        save_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pipeline = pipeline
        self._stats = stats
        self._totals = totals
        self._capacity = capacity
        self._retry = retry_seconds
        self._save_every = save_seconds
        self._clock = clock
        self._buffer: deque[ReadyBatch] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._finished = False
        self._deadline: float | None = None
        self._unsaved = 0
        self._saved_at = clock()
        self._outage_since: float | None = None
        self._thread = threading.Thread(target=self._run, name="live-writer", daemon=True)

    def __len__(self) -> int:
        with self._cond:
            return len(self._buffer)

    def start(self) -> None:
        self._thread.start()

    def count(self, camera_id: str) -> int:
        """Keyframes of one camera prepared but not yet committed."""
        with self._cond:
            return sum(r.cameras.count(camera_id) for r in self._buffer)

    def submit(self, ready: ReadyBatch) -> None:
        """Queue a batch; when the buffer is full the oldest waiting one is given up."""
        with self._cond:
            if self._finished:  # a batch that outlived the shutdown deadline
                dropped: ReadyBatch | None = ready
                why = "prepared after the writer stopped (shutdown deadline)"
            else:
                dropped, why = None, "write buffer full while the catalog is unreachable"
                # The head may be mid-commit: give up the oldest batch waiting behind it.
                if len(self._buffer) >= self._capacity and len(self._buffer) > 1:
                    dropped = self._buffer[1]
                    del self._buffer[1]
                self._buffer.append(ready)
                self._cond.notify_all()
        if dropped is not None:
            self._give_up(dropped, why)

    def close(self, deadline: float) -> None:
        """Commit what is buffered until `deadline` (monotonic), then stop."""
        with self._cond:
            self._closing = True
            self._deadline = deadline
            self._cond.notify_all()

    def join(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _next(self) -> ReadyBatch | None:
        with self._cond:
            while not self._buffer:
                if self._closing:
                    return None
                self._cond.wait(timeout=min(1.0, self._save_every))
                if not self._buffer and self._due_save():
                    return None  # wake up to save the index on an idle system
            return self._buffer[0]

    def _run(self) -> None:
        while True:
            ready = self._next()
            if ready is None:
                if self._closing:
                    break
                self._save()
                continue
            if self._commit(ready):
                with self._cond:
                    self._buffer.popleft()
            elif self._past_deadline():
                break
            else:
                time.sleep(self._retry)
            if self._due_save():
                self._save()
        with self._cond:
            self._finished = True
        for left in self._drain():
            self._give_up(left, "shutdown deadline passed before the catalog came back")
        self._save()

    def _commit(self, ready: ReadyBatch) -> bool:
        try:
            self._pipeline.commit(ready.prepared)
        except SQLAlchemyError as exc:
            self._totals.catalog_retries += 1
            if self._outage_since is None:
                self._outage_since = self._clock()
                log.warning(
                    "live.catalog_unreachable",
                    error=safe_error(exc).splitlines()[0],
                    buffered=len(self),
                    retry_seconds=self._retry,
                )
            return False
        except Exception as exc:  # not the catalog: the batch cannot succeed
            log.error("live.commit_failed", error=safe_error(exc), keyframes=len(ready.cameras))
            self._totals.model_errors += 1
            return True  # drop it (files may belong to committed rows: keep them)
        if self._outage_since is not None:
            log.warning(
                "live.catalog_back",
                outage_seconds=round(self._clock() - self._outage_since, 1),
                buffered=len(self),
            )
            self._outage_since = None
        self._done(ready)
        return True

    def _done(self, ready: ReadyBatch) -> None:
        now = self._clock()
        totals = self._totals
        totals.batches += 1
        totals.keyframes += len(ready.cameras)
        totals.appearances += ready.prepared.appearances
        totals.batch_sizes[len(ready.cameras)] += 1
        totals.latencies.extend(now - c for c in ready.captured)
        for camera, n in Counter(ready.cameras).items():
            self._stats[camera].add(keyframes=n)
        self._unsaved += ready.prepared.appearances

    def _give_up(self, ready: ReadyBatch, why: str) -> None:
        self._pipeline.discard(ready.prepared)
        self._totals.buffer_drops += len(ready.cameras)
        telemetry.DROPS.labels("write").inc(len(ready.cameras))
        per_camera = Counter(ready.cameras)
        for camera, n in per_camera.items():
            self._stats[camera].add(drops=n)
        log.error("live.batch_dropped", reason=why, keyframes=dict(per_camera))

    def _drain(self) -> Sequence[ReadyBatch]:
        with self._cond:
            left = list(self._buffer)
            self._buffer.clear()
            return left

    def _past_deadline(self) -> bool:
        return self._deadline is not None and self._clock() >= self._deadline

    def _due_save(self) -> bool:
        return self._unsaved > 0 and self._clock() - self._saved_at >= self._save_every

    def _save(self) -> None:
        if self._unsaved == 0:
            return
        try:
            self._pipeline.save_index()
        except Exception as exc:  # disk trouble: retry later; reconcile heals
            log.error("live.index_save_failed", error=safe_error(exc))
            return
        self._unsaved = 0
        self._saved_at = self._clock()
