"""Live cameras: the cameras `surveil run` reads and how it reads them."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from surveil.config.base import Section
from surveil.config.pipeline import KeyframeSettings


class CameraSettings(Section):
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
    tags: list[str] = Field(
        default_factory=list,
        title="Tags",
        description="Labels (e.g. heavy) that workers pinned with live.camera_tags look for.",
    )


class LiveSettings(Section):
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
    metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        title="Metrics port",
        description=(
            "`surveil run` serves its ingest and model metrics on this port at /metrics "
            "(Prometheus; no key, bind it to a private network). Empty: not served."
        ),
    )
    lease_seconds: float = Field(
        15.0,
        ge=1.0,
        le=600.0,
        title="Camera lease",
        description=(
            "A worker holds each camera it reads for this long and renews it every third of "
            "it; a dead worker's cameras move to another worker within this time."
        ),
    )
    worker_id: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        title="Worker id",
        description="This worker's name in the catalog (default: host:pid:random tag).",
    )
    cameras: list[str] = Field(
        default_factory=list,
        title="Pinned cameras",
        description="Read only these camera ids (empty: any camera).",
    )
    camera_tags: list[str] = Field(
        default_factory=list,
        title="Pinned camera tags",
        description="Read only cameras carrying one of these tags (empty: any camera).",
    )
