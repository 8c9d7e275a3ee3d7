"""Prometheus metrics for one app: its own registry, so two apps in a process never clash."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from surveil.domain import SPACES
from surveil.ports import VectorIndex
from surveil.storage.health import HEALTH_STATES, SqlHealth
from surveil.storage.leases import SqlLeases
from surveil.telemetry import ProcessSeries

log = structlog.get_logger(__name__)

#: Buckets from 5 ms to 10 s: a search on CPU is tens to hundreds of milliseconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _IndexSizes(Collector):
    """Vectors per space, read from the index's manifest at scrape time (no FAISS load)."""

    def __init__(self, index: VectorIndex) -> None:
        self._index = index

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "surveil_index_vectors", "Vectors in the search index", labels=["space"]
        )
        for space in SPACES:
            family.add_metric([space], float(self._index.size(space)))
        yield family


class _CameraHealth(Collector):
    """Live cameras' health, read from the catalog's camera_health table at scrape time.

    `surveil run` may be another process: the table is what both share. A catalog that
    cannot be read yields no camera series rather than a failed scrape.
    """

    def __init__(self, health: SqlHealth) -> None:
        self._health = health

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            rows = self._health.read()
        except SQLAlchemyError:
            return
        gauges = {
            "fps": GaugeMetricFamily(
                "surveil_camera_fps", "Frames decoded per second", labels=["camera"]
            ),
            "kfps": GaugeMetricFamily(
                "surveil_camera_keyframes_per_second",
                "Keyframes committed per second",
                labels=["camera"],
            ),
            "keyframes": GaugeMetricFamily(
                "surveil_camera_keyframes",
                "Keyframes committed since `surveil run` started",
                labels=["camera"],
            ),
            "drops": GaugeMetricFamily(
                "surveil_camera_drops", "Keyframes dropped (models behind)", labels=["camera"]
            ),
            "reconnects": GaugeMetricFamily(
                "surveil_camera_reconnects", "Reconnection attempts", labels=["camera"]
            ),
            "age": GaugeMetricFamily(
                "surveil_camera_last_frame_age_seconds",
                "Seconds since the camera's last frame",
                labels=["camera"],
            ),
        }
        state = GaugeMetricFamily(
            "surveil_camera_state", "1 for the camera's current state", labels=["camera", "state"]
        )
        now = datetime.now(UTC)
        for h in rows:
            gauges["fps"].add_metric([h.camera_id], h.fps)
            gauges["kfps"].add_metric([h.camera_id], h.keyframes_per_s)
            gauges["keyframes"].add_metric([h.camera_id], float(h.keyframes))
            gauges["drops"].add_metric([h.camera_id], float(h.drops))
            gauges["reconnects"].add_metric([h.camera_id], float(h.reconnects))
            if h.last_frame_at is not None:
                age = (now - h.last_frame_at).total_seconds()
                gauges["age"].add_metric([h.camera_id], age)
            for name in HEALTH_STATES:
                state.add_metric([h.camera_id, name], 1.0 if h.state == name else 0.0)
        yield from gauges.values()
        yield state


class _WorkerCameras(Collector):
    """Cameras each live ingest worker reads, from the catalog's leases at scrape time."""

    def __init__(self, leases: SqlLeases) -> None:
        self._leases = leases

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = datetime.now(UTC)
        try:
            workers = self._leases.workers(now=now)
            counts = self._leases.held_counts(now=now)
        except SQLAlchemyError:
            return
        family = GaugeMetricFamily(
            "surveil_worker_cameras",
            "Cameras a live ingest worker reads",
            labels=["worker", "host"],
        )
        for w in workers:
            family.add_metric([w.id, w.host], float(counts.get(w.id, 0)))
        yield family


class Metrics:
    """Request counts and latencies by route template, search latency, index sizes.

    `extra` collectors (catalog jobs, webhooks, rule lag, pool, disk) join the registry.
    """

    def __init__(
        self,
        index: VectorIndex,
        *,
        health: SqlHealth | None = None,
        leases: SqlLeases | None = None,
        extra: Sequence[Collector] = (),
    ) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "surveil_http_requests",
            "HTTP requests served",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "surveil_http_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.unauthenticated = Counter(
            "surveil_http_unauthenticated",
            "Requests refused for a missing, unknown or revoked key (not audited)",
            ["route"],
            registry=self.registry,
        )
        self.search = Histogram(
            "surveil_search_seconds",
            "Search latency inside the service (embed, index, hydrate, rerank, group)",
            ["kind", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_IndexSizes(index))
        if health is not None:
            self.registry.register(_CameraHealth(health))
        if leases is not None:
            self.registry.register(_WorkerCameras(leases))
        # This process's ingest, model, job and alert counters (see surveil.telemetry).
        self.registry.register(ProcessSeries())
        for collector in extra:
            self.registry.register(collector)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts and times every request under its route template (bounded label values)."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = str(scope.get("method", ""))
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - start)
            if status == 401:
                self._unauthenticated(scope, template)

    def _unauthenticated(self, scope: Scope, template: str) -> None:
        """Count and log a 401: who tried where (client and path, never the key sent)."""
        self.metrics.unauthenticated.labels(template).inc()
        client = scope.get("client")
        log.warning(
            "api.unauthenticated",
            client=client[0] if client else None,
            method=scope.get("method"),
            path=scope.get("path"),
        )
