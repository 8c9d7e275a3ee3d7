"""Typed settings: defaults, then a YAML file, then ``SURVEIL_*`` environment variables.

The YAML file is `--config PATH`, else ``$SURVEIL_CONFIG``, else ``./surveil.yaml`` when
the working directory has one (what `surveil demo` writes), else none.

Nested keys use ``__`` in the environment (``SURVEIL_DETECTOR__WEIGHTS``). Unknown keys
and bad values are refused at start-up with a message naming the key. Validators do no
I/O: whether a model file exists is checked by the component that loads it.

One `Settings` object; its sections live in modules by subject (storage, models,
pipeline, live, service) and are re-exported here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from surveil.config.export import ExportSettings
from surveil.config.feedback import FeedbackSettings
from surveil.config.index import IndexSettings, MilvusSettings
from surveil.config.live import CameraSettings, LiveSettings
from surveil.config.models import (
    DEFAULT_LABELS,
    DetectorSettings,
    EmbedderSettings,
    EmbeddersSettings,
    GeneralEmbedderSettings,
    PersonEmbedderSettings,
)
from surveil.config.pipeline import (
    VEHICLE_LABELS,
    CropSettings,
    IngestSettings,
    KeyframeSettings,
    RerankSettings,
    SearchSettings,
)
from surveil.config.service import (
    AlertSettings,
    ApiSettings,
    LoggingSettings,
    RetentionSettings,
    SchedulerSettings,
)
from surveil.config.storage import DatabaseSettings, S3Settings, StorageSettings
from surveil.config.tracking import TrackingSettings
from surveil.domain import ConfigError

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_LABELS",
    "ENV_PREFIX",
    "LOCAL_CONFIG",
    "VEHICLE_LABELS",
    "AlertSettings",
    "ApiSettings",
    "CameraSettings",
    "CropSettings",
    "DatabaseSettings",
    "DetectorSettings",
    "EmbedderSettings",
    "EmbeddersSettings",
    "ExportSettings",
    "FeedbackSettings",
    "GeneralEmbedderSettings",
    "IndexSettings",
    "IngestSettings",
    "KeyframeSettings",
    "LiveSettings",
    "LoggingSettings",
    "MilvusSettings",
    "PersonEmbedderSettings",
    "RerankSettings",
    "RetentionSettings",
    "S3Settings",
    "SchedulerSettings",
    "SearchSettings",
    "Settings",
    "StorageSettings",
    "TrackingSettings",
    "config_path",
    "load_settings",
    "setting_sources",
]

ENV_PREFIX = "SURVEIL_"
CONFIG_ENV = "SURVEIL_CONFIG"
#: Picked up from the working directory when neither --config nor $SURVEIL_CONFIG is set.
LOCAL_CONFIG = Path("surveil.yaml")


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
    storage: StorageSettings = Field(
        default_factory=StorageSettings,
        title="Storage",
        description="Data directory, JPEG quality and whether keyframes are kept.",
    )
    database: DatabaseSettings = Field(
        default_factory=DatabaseSettings,
        title="Database",
        description="The catalog: SQLite by default, PostgreSQL in production.",
    )
    detector: DetectorSettings = Field(
        default_factory=DetectorSettings,
        title="Detector",
        description="YOLO weights, labels, thresholds, or the motion detector.",
    )
    embedders: EmbeddersSettings = Field(
        default_factory=EmbeddersSettings,
        title="Embedders",
        description="The CNN of each vector space (person re-ID, general objects).",
    )
    keyframes: KeyframeSettings = Field(
        default_factory=KeyframeSettings,
        title="Keyframes",
        description="When a frame is kept: motion, colour change or heartbeat.",
    )
    crops: CropSettings = Field(
        default_factory=CropSettings,
        title="Crops",
        description="Padding, minimum size and thumbnail size of object crops.",
    )
    index: IndexSettings = Field(
        default_factory=IndexSettings,
        title="Vector index",
        description="Backend (FAISS shards or Milvus), index type and time sharding.",
    )
    search: SearchSettings = Field(
        default_factory=SearchSettings,
        title="Search",
        description="Over-fetch, depth, sighting gap and defaults of a search.",
    )
    tracking: TrackingSettings = Field(
        default_factory=TrackingSettings,
        title="Tracking",
        description="How detections in successive keyframes of a camera become one track.",
    )
    ingest: IngestSettings = Field(
        default_factory=IngestSettings,
        title="Ingest",
        description="Batching, decode-ahead and embedding reuse while ingesting.",
    )
    api: ApiSettings = Field(
        default_factory=ApiSettings,
        title="HTTP API",
        description="`surveil serve`: address, input limits, console.",
    )
    alerts: AlertSettings = Field(
        default_factory=AlertSettings,
        title="Alert rules",
        description="Rule defaults, evaluation batches and webhook delivery.",
    )
    retention: RetentionSettings = Field(
        default_factory=RetentionSettings,
        title="Retention",
        description="How long appearances are kept, per camera and per label.",
    )
    scheduler: SchedulerSettings = Field(
        default_factory=SchedulerSettings,
        title="Scheduler",
        description="Where jobs run and how their leases behave.",
    )
    logging: LoggingSettings = Field(
        default_factory=LoggingSettings,
        title="Logging",
        description="Level and format of the logs on stderr.",
    )
    feedback: FeedbackSettings = Field(
        default_factory=FeedbackSettings,
        title="Operator feedback",
        description="Re-running a search with its confirmed and rejected hits; calibration.",
    )
    live: LiveSettings = Field(
        default_factory=LiveSettings,
        title="Live ingest",
        description="Batching, buffers, reconnects and health of `surveil run`.",
    )
    export: ExportSettings = Field(
        default_factory=ExportSettings,
        title="Evidence export",
        description="How `surveil export` archives are signed.",
    )
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
    """Build Settings from YAML (see `config_path`) plus the environment.

    `overrides` are applied on top of the YAML (below the environment) and are how CLI
    flags such as `demo --data` feed in.
    """
    env = os.environ
    unknown = _unknown_env_keys(env)
    if unknown:
        raise ConfigError(f"unknown environment setting(s): {', '.join(unknown)}")
    path = config_path(config_file)
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


def config_path(config_file: Path | None = None) -> Path | None:
    """The YAML file in effect: explicit, else $SURVEIL_CONFIG, else ./surveil.yaml if any."""
    if config_file is not None:
        return config_file
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    return LOCAL_CONFIG if LOCAL_CONFIG.is_file() else None


def _dotted(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as {'a.b': value} (lists and other values are leaves)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(_dotted(value, name + "."))
        else:
            out[name] = value
    return out


def _origin(name: str, given: Mapping[str, str]) -> str | None:
    """Where `name` (or a section above it) was given, if it was."""
    parts = name.split(".")
    for depth in range(len(parts), 0, -1):
        found = given.get(".".join(parts[:depth]))
        if found:
            return found
    return None


def setting_sources(
    settings: Settings,
    config_file: Path | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
) -> list[tuple[str, Any, str]]:
    """(dotted name, value, where it came from) for every setting, as loaded.

    Where is 'default', 'file PATH', 'environment VAR' or 'command line'; later sources
    win in that order, as in load_settings.
    """
    given: dict[str, str] = {}
    path = config_path(config_file)
    if path is not None:
        given.update(dict.fromkeys(_dotted(_read_yaml(path)), f"file {path}"))
    given.update(dict.fromkeys(overrides or {}, "command line"))
    for var in os.environ:
        if var.startswith(ENV_PREFIX) and var != CONFIG_ENV:
            dotted = var[len(ENV_PREFIX) :].lower().replace("__", ".")
            given[dotted] = f"environment {var}"
    values = _dotted(settings.model_dump(mode="json", by_alias=True))  # search.rerank.lambda
    return [(name, value, _origin(name, given) or "default") for name, value in values.items()]
