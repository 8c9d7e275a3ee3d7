"""Composition root: the only module that picks concrete classes for the ports."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import structlog
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from surveil.alerts.model import Rule, RuleSpec
from surveil.alerts.rules import RuleService
from surveil.alerts.targets import WebhookPolicy
from surveil.config import Settings
from surveil.domain import SPACES, IngestStats, Space, Vectors
from surveil.index.reconcile import ReconcileReport, rebuild, reconcile
from surveil.index.reembed import Reembedder
from surveil.index.sharded import ShardedFaissIndex
from surveil.ingest.backfill import Backfill
from surveil.ingest.pipeline import IngestOptions, IngestPipeline
from surveil.ingest.sources import open_source
from surveil.jobs.retention_notice import retention_warnings
from surveil.ports import (
    AccessStore,
    BlobStore,
    Catalog,
    Detector,
    Embedder,
    FeedbackStore,
    VectorIndex,
)
from surveil.search.calibration import Calibrator
from surveil.search.evidence.service import EvidenceExporter
from surveil.search.feedback import FeedbackService
from surveil.search.model_guard import ModelGuard
from surveil.search.service import SearchService
from surveil.storage.access import SqlAccess
from surveil.storage.alerts import SqlAlerts
from surveil.storage.blobs import CLAIMS, FileBlobStore, FlockClaims, PgClaims
from surveil.storage.blobs.claims import Claims
from surveil.storage.db import check_connection, make_engine, make_session_factory
from surveil.storage.feedback import SqlFeedback
from surveil.storage.health import SqlHealth
from surveil.storage.jobs import SqlJobs
from surveil.storage.leases import SqlLeases
from surveil.storage.migrate import require_current, upgrade
from surveil.storage.reembed import SqlReembed
from surveil.storage.repositories import SqlCatalog
from surveil.storage.retention import SqlRetention
from surveil.storage.space_models import SqlSpaceModels
from surveil.storage.usage import SqlUsage
from surveil.telemetry import watch_engine
from surveil.vision.degraded import degraded_modes
from surveil.vision.detector import build_detector
from surveil.vision.device import DevicePlan, choose_device
from surveil.vision.embedder import build_embedder, embedder_spec

log = structlog.get_logger(__name__)


def utc_now() -> datetime:
    """Now, in UTC (the retention notice compares footage times with it)."""
    return datetime.now(UTC)


@dataclass
class Services:
    """Everything a command or the API needs, built once from one Settings object.

    Models load lazily: `surveil search` with a label never loads the detector, and
    `surveil db upgrade` loads no model at all.
    """

    settings: Settings
    engine: Engine
    catalog: Catalog
    access: AccessStore
    alerts: SqlAlerts
    jobs: SqlJobs
    retention: SqlRetention
    usage: SqlUsage
    health: SqlHealth
    leases: SqlLeases
    feedback_store: FeedbackStore
    space_models: SqlSpaceModels
    blobs: BlobStore
    index: VectorIndex
    device: DevicePlan
    _detector: Detector | None = None
    _embedders: dict[Space, Embedder] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _refreshed_at: float = 0.0
    _models_ready: bool = False
    _guard: ModelGuard | None = None

    def index_bytes(self) -> int:
        """Bytes the vector index takes: its shard files, or a shared index's raw vectors."""
        if shared_index(self.settings):
            dims = {m.space: m.dim for m in self.space_models.all().values()}
            return sum(self.index.size(s) * 4 * dims.get(s, 0) for s in SPACES)
        root = index_root(self.settings)
        return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.exists() else 0

    def media_root(self) -> Path | None:
        """The folder crops and keyframes are under (None when they go to an object store)."""
        return self.settings.storage.root if self.settings.storage.blobs == "local" else None

    def load_models(self) -> None:
        """Load the detector and every embedder now, so a bad model stops start-up.

        `serve` calls this before it listens: the first search is then as fast as the
        next, and /readyz says ready only afterwards. Raises ConfigError naming the fix.
        """
        started = time.perf_counter()
        detector = self.detector()
        _load_now(detector)
        _load_now(detector, "load_crop")  # searches without a label use it
        for space in SPACES:
            _load_now(self.embedder(space))
        self._models_ready = True
        log.info("models.loaded", seconds=round(time.perf_counter() - started, 2))

    @property
    def models_ready(self) -> bool:
        """Whether load_models has finished (the models a search needs are in memory)."""
        return self._models_ready

    def warnings(self) -> tuple[str, ...]:
        """Degraded modes in effect, said in every search and ingest result."""
        detector = self._detector.name if self._detector is not None else None
        return degraded_modes(self.settings, detector_name=detector)

    def detector(self) -> Detector:
        """The configured detector (YOLO, or motion regions when the settings ask)."""
        with self._lock:
            if self._detector is None:
                self._detector = build_detector(
                    self.settings.detector,
                    model_dir=self.settings.models_path,
                    device=self.device,
                )
            return self._detector

    def embedder(self, space: Space) -> Embedder:
        """The embedder that owns one vector space."""
        with self._lock:
            if space not in self._embedders:
                section = getattr(self.settings.embedders, space)
                self._embedders[space] = build_embedder(
                    space, section, model_dir=self.settings.models_path, device=self.device
                )
            return self._embedders[space]

    def embedders(self) -> Mapping[Space, Embedder]:
        """Both embedders, built (and their files checked) up front for ingest."""
        return {space: self.embedder(space) for space in SPACES}

    def model_guard(self) -> ModelGuard:
        """Which embedder agrees with each space's stored vectors (search/model_guard.py)."""
        with self._lock:
            if self._guard is None:
                self._guard = ModelGuard(self.space_models, self.embedder, self._embedder_from)
            return self._guard

    def serving_embedder(self, space: Space) -> Embedder:
        """The embedder for queries, rules and ingest: the space's own model, or refused."""
        return self.model_guard().embedder(space)

    def embedder_spec(self, space: Space) -> str:
        """The configured embedder's settings as JSON (recorded with the space's model)."""
        return embedder_spec(getattr(self.settings.embedders, space), self.embedder(space))

    def _embedder_from(self, space: Space, spec: str) -> Embedder:
        """An embedder built from recorded settings (the old model during a re-embed)."""
        section = type(getattr(self.settings.embedders, space)).model_validate(json.loads(spec))
        return build_embedder(
            space, section, model_dir=self.settings.models_path, device=self.device
        )

    def check_rule_models(self, rule: Rule) -> None:
        """Refuse to evaluate a rule whose examples are not on its space's serving model."""
        models = self.alerts.example_models(rule.id)
        self.model_guard().require(rule.space, models, f"alert rule {rule.spec.name!r}")

    def reembedder(self) -> Reembedder:
        """The re-embedding of stored crops with the configured models (index reembed)."""
        return Reembedder(
            models=self.space_models,
            store=SqlReembed(self._sessions()),
            blobs=self.blobs,
            embedder=self.embedder,
            embedder_spec=self.embedder_spec,
            rebuild=lambda space: self.rebuild_index((space,))[space],
        )

    def _sessions(self) -> sessionmaker[Session]:
        return make_session_factory(self.engine)

    def ingest(
        self,
        path: str,
        options: IngestOptions,
        *,
        start: datetime | None = None,
        fps: float | None = None,
    ) -> IngestStats:
        """Ingest one recorded source, decoding ahead of the models on a reader thread."""
        source = open_source(
            path,
            camera_id=options.camera_id,
            start=start,
            fps=fps,
            decode_ahead=self.settings.ingest.queue_size,
        )
        try:
            stats = self.ingest_pipeline().run(source, options)
        finally:
            source.close()
        notes = retention_warnings(
            self.engine, self.settings.retention, source_id=stats.source_id, now=utc_now()
        )
        return replace(stats, warnings=(*stats.warnings, *self.warnings(), *notes))

    def ingest_pipeline(self) -> IngestPipeline:
        """An ingest pipeline wired to these services; its models load first (errors early)."""
        if not self._models_ready:
            self.load_models()
        embedders = {space: self.serving_embedder(space) for space in SPACES}
        for space, embedder in embedders.items():
            if embedder is self.embedder(space):  # not while a re-embed serves the old one
                self.space_models.record(
                    space, embedder.model_id, embedder.dim, self.embedder_spec(space)
                )
        s = self.settings
        return IngestPipeline(
            catalog=self.catalog,
            index=self.index,
            blobs=self.blobs,
            detector=self.detector(),
            embedders=embedders,
            person_labels=s.embedders.person_labels,
            keyframes=s.keyframes,
            crops=s.crops,
            ingest=s.ingest,
            tracking=s.tracking,
            label_groups=s.search.label_groups,
            jpeg_quality=s.storage.jpeg_quality,
            keep_keyframes=s.storage.keep_keyframes,
        )

    def search(self) -> SearchService:
        """The operator's search over this catalog and index."""
        return SearchService(
            index=self.index,
            catalog=self.catalog,
            blobs=self.blobs,
            embedder_for=self.serving_embedder,
            detector=self.detector,
            settings=self.settings.search,
            person_labels=self.settings.embedders.person_labels,
            warnings=self.warnings,
            floors=self._calibrated_floor,
            check_stored=self.model_guard().check_stored,
        )

    def exporter(self) -> EvidenceExporter:
        """Evidence archives of sightings, searches and alerts (signed when a key is set)."""
        key = self.settings.export.hmac_key
        return EvidenceExporter(
            catalog=self.catalog,
            blobs=self.blobs,
            access=self.access,
            alerts=self.alerts,
            hmac_key=None if key is None else key.get_secret_value().encode(),
        )

    def _calibrated_floor(self, space: Space) -> float | None:
        """A space's min_score calibrated from feedback (`surveil feedback calibrate --apply`)."""
        found = self.feedback_store.floor(space)
        return None if found is None else found.min_score

    def feedback(self) -> FeedbackService:
        """Operators' verdicts on hits, and searches re-run with them."""
        return FeedbackService(
            store=self.feedback_store,
            search=self.search(),
            access=self.access,
            catalog=self.catalog,
            blobs=self.blobs,
            rule_examples=self._rule_examples,
            alert_hit=self._alert_hit,
            settings=self.settings.feedback,
            default_limit=self.settings.search.limit,
        )

    def calibrator(self) -> Calibrator:
        """Thresholds (a rule's, a space's min_score) measured on operators' verdicts."""
        return Calibrator(
            feedback=self.feedback(),
            store=self.feedback_store,
            rules=_Rules(self.alerts, self.rules()),
            access=self.access,
            settings=self.settings.feedback,
            default_floor=self.search().default_floor,
        )

    def _rule_examples(self, rule_id: int) -> tuple[Space, Vectors]:
        return self.alerts.get_rule(rule_id).space, self.alerts.example_vectors(rule_id)

    def _alert_hit(self, alert_id: int) -> tuple[int, int]:
        alert = self.alerts.get_alert(alert_id)
        return alert.rule_id, alert.appearance_id

    def rules(self) -> RuleService:
        """Alert rules: create (embedding their examples) and delete."""
        return RuleService(
            alerts=self.alerts,
            blobs=self.blobs,
            embedder_for=self.serving_embedder,
            detector=self.detector,
            person_labels=self.settings.embedders.person_labels,
            jpeg_quality=self.settings.storage.jpeg_quality,
            webhooks=WebhookPolicy(self.settings.alerts.webhook_hosts),
        )

    def refresh_index(self, *, every: float) -> None:
        """Pick up index shards other processes saved, at most once per `every` seconds."""
        now = time.monotonic()
        if now - self._refreshed_at >= every:
            self._refreshed_at = now
            self.index.refresh()

    def backfill(self) -> Backfill:
        """The re-tracking of appearances stored before tracks existed."""
        return Backfill(
            catalog=self.catalog,
            index=self.index,
            settings=self.settings.tracking,
            label_groups=self.settings.search.label_groups,
        )

    def reconcile_index(self, *, full: bool = False) -> ReconcileReport:
        """Make the vector index agree with the catalog (the source of truth).

        By default only days whose counts differ are compared id by id; `full` compares
        every id (catches an add and a delete on one day cancelling out).
        """
        # A space between a re-embed's swap and its index rebuild is left to the rebuild.
        stale = {m.space for m in self.space_models.all().values() if m.index_stale}
        spaces = [space for space in SPACES if space not in stale]
        return reconcile(self.index, self.catalog, spaces, full=full)

    def rebuild_index(self, spaces: Sequence[Space] = SPACES) -> dict[Space, int]:
        """Rebuild the spaces' indexes from the catalog's stored vectors; vectors per space.

        FAISS: built in a staging folder and swapped in by renames (live index objects
        over it must be re-opened). Milvus: a new collection per space, filled, then the
        space's alias moved to it and the old collection dropped.
        """
        if isinstance(self.index, ShardedFaissIndex):
            settings = self.settings
            report = rebuild(
                index_root(settings),
                self.catalog,
                spaces,
                factory=settings.index.factory,
                shard_by=settings.index.shard_by,
                open_index=lambda root: open_faiss_index(settings, root),
            )
            self.index.refresh()  # this process's own index object sees the new files
            return {space: report.vectors.get(space, 0) for space in spaces}
        from surveil.index.milvus import MilvusIndex

        if not isinstance(self.index, MilvusIndex):
            raise TypeError(f"no rebuild for index {type(self.index).__name__}")
        return {
            space: self.index.rebuild_space(space, self.catalog.iter_vectors(space))
            for space in spaces
        }

    def warm_index(self) -> None:
        """Start loading every index shard in the background (a server, at start)."""
        if isinstance(self.index, ShardedFaissIndex):
            self.index.warm()

    def close(self) -> None:
        """Let background index training finish (a batch command's last step), then
        release database connections."""
        if isinstance(self.index, ShardedFaissIndex):
            self.index.wait_for_training()
        self.blobs.close()
        close = getattr(self.index, "close", None)  # a Milvus client's connection
        if callable(close):
            close()
        self.engine.dispose()


@dataclass(frozen=True)
class _Rules:
    """Rules as calibration sees them: read from the catalog, saved through RuleService."""

    alerts: SqlAlerts
    service: RuleService

    def get_rule(self, rule_id: int) -> Rule:
        return self.alerts.get_rule(rule_id)

    def update(self, rule_id: int, spec: RuleSpec) -> Rule:
        return self.service.update(rule_id, spec)


def _load_now(model: object, method: str = "load") -> None:
    """Call a lazily loading model's load() (motion regions have nothing to load)."""
    load = getattr(model, method, None)
    if callable(load):
        load()


def index_root(settings: Settings) -> Path:
    """Where the FAISS shards live."""
    return settings.storage.root / "index"


def open_index(settings: Settings, root: Path | None = None) -> VectorIndex:
    """The configured vector index: FAISS shards, or the Milvus server (index.backend)."""
    if settings.index.backend == "milvus":
        from surveil.index.milvus import MilvusIndex  # pymilvus loads only when chosen

        return MilvusIndex(settings.index.milvus)
    return open_faiss_index(settings, root)


def open_faiss_index(settings: Settings, root: Path | None = None) -> ShardedFaissIndex:
    """FAISS shards over `root` (default: the storage root's index folder).

    Trained shards calibrate their probe count against each space's default min_score:
    the true matches a default search must not miss.
    """
    s = settings.index
    return ShardedFaissIndex(
        index_root(settings) if root is None else root,
        factory=s.factory,
        shard_by=s.shard_by,
        recall_target=s.recall_target,
        exact_below=s.exact_below,
        train_open_above=s.train_open_above,
        search_threads=s.search_threads or None,
        floors={space: settings.search.floor(space) for space in SPACES},
    )


def open_claims(settings: Settings) -> Claims:
    """Claims every host sees: PostgreSQL advisory locks when the catalog is PostgreSQL
    (several hosts share it), else flocks under the storage root (one host)."""
    url = settings.database_url
    if url.startswith("postgresql"):
        return PgClaims(url)
    return FlockClaims(settings.storage.root / CLAIMS)


def open_blobs(settings: Settings) -> BlobStore:
    """The configured blob store, checked: a bucket that cannot be used stops start-up."""
    claims = open_claims(settings)
    if settings.storage.blobs == "local":
        return FileBlobStore(settings.storage.root, claims)
    from surveil.storage.blobs.s3 import S3BlobStore  # boto3 loads only when configured

    store = S3BlobStore(settings.storage.s3, claims)
    store.check()
    return store


def build_services(settings: Settings, *, reconcile_index: bool = True) -> Services:
    """Wire the configured adapters; migrate the embedded SQLite, require PostgreSQL migrated.

    Reconciliation on start is what makes a crash between a catalog commit and an
    index save lose nothing (for a shared index, the scheduler's reconcile job does).
    """
    url = settings.database_url
    if url.startswith("sqlite"):
        settings.storage.root.mkdir(parents=True, exist_ok=True)
        upgrade(url)
    engine = make_engine(url, echo=settings.database.echo, pool_size=settings.database.pool_size)
    watch_engine(engine)  # surveil_catalog_query_errors, in every process
    check_connection(engine)
    require_current(engine)
    sessions = make_session_factory(engine)
    services = Services(
        settings=settings,
        engine=engine,
        catalog=SqlCatalog(sessions),
        access=SqlAccess(sessions),
        alerts=SqlAlerts(sessions),
        jobs=SqlJobs(sessions),
        retention=SqlRetention(sessions),
        usage=SqlUsage(sessions),
        health=SqlHealth(sessions),
        leases=SqlLeases(sessions),
        feedback_store=SqlFeedback(sessions),
        space_models=SqlSpaceModels(sessions),
        blobs=open_blobs(settings),
        index=open_index(settings),
        device=choose_device(settings.device, settings.half),
    )
    if reconcile_index and not shared_index(settings):
        report = services.reconcile_index()
        if report.changed:
            log.warning("index.reconciled", added=report.added, removed=report.removed)
    return services


def shared_index(settings: Settings) -> bool:
    """Whether the vector index is shared by every process (Milvus), not this host's files.

    A shared index is not reconciled at start: every API replica and CLI call would read
    all of it, and the scheduler's `index.reconcile` job repairs it once for all.
    """
    return settings.index.backend == "milvus"
