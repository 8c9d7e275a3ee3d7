"""Process-wide Prometheus series for work done in this process (ingest, models, jobs).

Counters that only the working process can see (frames decoded, model batch latency, a
job's duration) live in one registry per process, `PROCESS`. `surveil serve` exports it
beside its own series on `/metrics`; `surveil run` and `surveil scheduler` serve it on
their own port (`metrics.port`, see `serve_process_metrics`), since they have no API.
State that lives in the catalog (job runs, webhook outbox, rule lag) is exported by the
API's catalog collectors instead, so any replica reports it whichever process did it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from wsgiref.simple_server import WSGIServer

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import QueuePool

from surveil.files import disk_of

log = structlog.get_logger(__name__)

PROCESS = CollectorRegistry()

#: Model calls take milliseconds (a small crop batch) to seconds (a big detector batch).
MODEL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Batch sizes: powers of two up to the largest live.batch_size.
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
#: Jobs run from milliseconds (an idle rule) to many minutes (a big retention run).
JOB_BUCKETS = (0.01, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)

FRAMES = Counter(
    "surveil_ingest_frames", "Frames decoded by ingest (recorded and live)", registry=PROCESS
)
KEYFRAMES = Counter(
    "surveil_ingest_keyframes", "Keyframes committed to the catalog", registry=PROCESS
)
APPEARANCES = Counter(
    "surveil_ingest_appearances", "Appearances committed to the catalog", registry=PROCESS
)
STAGE_SECONDS = Counter(
    "surveil_ingest_stage_seconds",
    "Wall seconds spent per ingest stage (decode, detect, crop, track, embed_*, catalog, ...)",
    ["stage"],
    registry=PROCESS,
)
QUEUE_DEPTH = Gauge(
    "surveil_ingest_queue_depth",
    "Live keyframes waiting: for the models (pending) or for the catalog (write, batches)",
    ["queue"],
    registry=PROCESS,
)
DROPS = Counter(
    "surveil_ingest_drops",
    "Live keyframes given up: pending queue full (models behind) or write buffer full",
    ["queue"],
    registry=PROCESS,
)
MODEL_SECONDS = Histogram(
    "surveil_model_batch_seconds",
    "Seconds per model call (one batch)",
    ["model"],
    buckets=MODEL_BUCKETS,
    registry=PROCESS,
)
MODEL_BATCH = Histogram(
    "surveil_model_batch_size",
    "Images per model call",
    ["model"],
    buckets=SIZE_BUCKETS,
    registry=PROCESS,
)
ALERT_EVALUATIONS = Counter(
    "surveil_alert_evaluations", "Rule evaluation runs (one per rule per run)", registry=PROCESS
)
ALERT_SCANNED = Counter(
    "surveil_alert_scanned_appearances", "Appearances scored against rules", registry=PROCESS
)
ALERT_HITS = Counter("surveil_alert_hits", "Appearances over a rule's threshold", registry=PROCESS)
ALERTS_RAISED = Counter("surveil_alerts_raised", "New alerts stored", registry=PROCESS)
WEBHOOK_ATTEMPTS = Counter(
    "surveil_webhook_attempts",
    "Webhook POSTs by what the delivery became (delivered, retrying, failed)",
    ["state"],
    registry=PROCESS,
)
JOB_RUNS = Counter(
    "surveil_job_runs", "Scheduled job runs in this process", ["job", "status"], registry=PROCESS
)
JOB_SECONDS = Histogram(
    "surveil_job_seconds", "Seconds per job run", ["job"], buckets=JOB_BUCKETS, registry=PROCESS
)
RETENTION_ROWS = Counter(
    "surveil_retention_rows_removed",
    "Catalog rows retention removed",
    ["kind"],
    registry=PROCESS,
)
RETENTION_FILES = Counter(
    "surveil_retention_files_removed", "Files retention removed", registry=PROCESS
)
RETENTION_BYTES = Counter(
    "surveil_retention_bytes_removed", "Bytes of files retention removed", registry=PROCESS
)
STORED_BYTES = Gauge(
    "surveil_storage_bytes",
    "Bytes a camera's footage takes (files plus its share of rows and vectors), "
    "as of the last storage check, retention run or estimate",
    ["camera"],
    registry=PROCESS,
)
BUDGET_UNMET = Gauge(
    "surveil_storage_budget_unmet_bytes",
    "Bytes over the size budgets that the last budget pass could not free: only legal "
    "holds and alert evidence were left (0: met)",
    registry=PROCESS,
)
QUERY_ERRORS = Counter(
    "surveil_catalog_query_errors",
    "Catalog statements that raised (connection lost, deadlock, constraint, ...)",
    ["error"],
    registry=PROCESS,
)


def count_stage(stage: str, seconds: float) -> None:
    """A `StageTimer` sink: add an ingest stage's seconds to its counter."""
    STAGE_SECONDS.labels(stage).inc(seconds)


@contextmanager
def model_call(model: str, size: int) -> Iterator[None]:
    """Time one model call of `size` images (model: detector, person or general)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        MODEL_SECONDS.labels(model).observe(time.perf_counter() - start)
        MODEL_BATCH.labels(model).observe(size)


def _failed(context: object) -> None:
    original = getattr(context, "original_exception", None)
    QUERY_ERRORS.labels(type(original).__name__).inc()


def watch_engine(engine: Engine) -> None:
    """Count the engine's failed statements by exception class (a bounded set); idempotent."""
    if not event.contains(engine, "handle_error", _failed):
        event.listen(engine, "handle_error", _failed)


class PoolCollector(Collector):
    """Catalog connections checked out of the engine's pool (0 and size for SQLite)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pool = self._engine.pool
        in_use = GaugeMetricFamily(
            "surveil_catalog_pool_in_use", "Catalog connections checked out of the pool"
        )
        in_use.add_metric([], float(pool.checkedout()) if isinstance(pool, QueuePool) else 0.0)
        yield in_use
        if isinstance(pool, QueuePool):
            size = GaugeMetricFamily(
                "surveil_catalog_pool_size", "Catalog connections the pool keeps open at most"
            )
            size.add_metric([], float(pool.size()))
            yield size


class DiskCollector(Collector):
    """Free and total bytes on the file system that holds the media (storage.root)."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def collect(self) -> Iterator[GaugeMetricFamily]:
        disk = disk_of(self._root)
        if disk is None:
            return
        free = GaugeMetricFamily("surveil_disk_free_bytes", "Free bytes where media is stored")
        free.add_metric([], float(disk.free))
        total = GaugeMetricFamily("surveil_disk_total_bytes", "Size of that file system")
        total.add_metric([], float(disk.total))
        yield free
        yield total


class ProcessSeries(Collector):
    """Re-exports `PROCESS` inside another registry (the API's), read at scrape time."""

    def collect(self) -> Iterator[object]:  # type: ignore[override]
        yield from PROCESS.collect()


def serve_process_metrics(
    port: int, *, engine: Engine | None = None, root: Path | None = None, addr: str = ""
) -> WSGIServer:
    """Serve this process's series (and its pool and disk) over HTTP; returns the server.

    For `surveil run` and `surveil scheduler`, which have no API to carry `/metrics`.
    """
    registry = CollectorRegistry()
    registry.register(ProcessSeries())
    if engine is not None:
        watch_engine(engine)
        registry.register(PoolCollector(engine))
    if root is not None:
        registry.register(DiskCollector(root))
    server, _ = start_http_server(port, addr=addr, registry=registry)
    log.info("metrics.listening", port=server.server_port, addr=addr or "0.0.0.0")
    return server
