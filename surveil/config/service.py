"""The running service: HTTP API, alert rules, retention, scheduler and logging."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from surveil.config.base import Section
from surveil.config.sizes import ByteSize


class ApiSettings(Section):
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
    access_log: bool = Field(
        True,
        title="Access log",
        description="One info line per request: method, route, status, ms, key id, client.",
    )


class AlertSettings(Section):
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
            "Webhook allowlist: host, *.domain or CIDR network, each with an optional :port "
            "or :* (no port: 80 and 443 only). Empty allows public addresses only; loopback, "
            "private, link-local and multicast need an entry. Checked after DNS on every "
            "address, when a rule is saved and before every POST."
        ),
    )


class RetentionSettings(Section):
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
    sweep_slices: int = Field(
        30,
        ge=1,
        le=366,
        title="Orphan sweep slices",
        description=(
            "Each run sweeps one slice of the source folders and index days, plus whatever "
            "was written since the last sweep: the whole store once every this many runs "
            "(30: a month of daily runs). "
            "1 sweeps everything every run (as `surveil retention run --full-sweep`)."
        ),
    )
    max_bytes: ByteSize | None = Field(
        None,
        gt=0,
        title="Storage budget",
        description=(
            "Bytes all footage may take (crops, keyframes, catalog rows, vectors; '2 TB' or "
            "'500 GiB' accepted). Above it the oldest footage goes first, whatever its age; "
            "legal holds and alert evidence never. Empty: no budget, age rules only."
        ),
    )
    camera_max_bytes: dict[str, ByteSize] = Field(
        default_factory=dict,
        title="Per-camera budgets",
        description="camera id -> bytes that camera's footage may take, within `max_bytes`.",
    )
    high_water: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        title="Disk high-water mark",
        description=(
            "Fraction of the media disk in use (e.g. 0.95) above which the storage check "
            "frees the oldest footage at once, down to the mark. Only for a disk surveil "
            "owns: other files on it count too. Empty: off. Local media only."
        ),
    )
    check_minutes: float = Field(
        5.0,
        ge=0.0,
        title="Storage check every",
        description=(
            "Minutes between storage checks (stored bytes against the budgets, disk use "
            "against the high-water mark); a check over either runs retention. 0: no check."
        ),
    )


class SchedulerSettings(Section):
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
    metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        title="Metrics port",
        description=(
            "`surveil scheduler` serves its job, alert and retention metrics on this port at "
            "/metrics (Prometheus; no key, bind it to a private network). Empty: not served."
        ),
    )


class LoggingSettings(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", title="Log level", description="Least severe level logged."
    )
    format: Literal["console", "json"] = Field(
        "console", title="Log format", description="'json' for one object per line."
    )
