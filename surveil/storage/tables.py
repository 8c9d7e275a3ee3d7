"""The catalog schema as SQLAlchemy 2 typed models; Alembic migrations mirror this module.

Timestamps go through `UtcDateTime` so every back-end stores UTC and every read gives an
aware UTC datetime (SQLite has no time zones and would otherwise hand back naive ones).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: Stable constraint names, so Alembic can find (and later alter) what it created.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: 64-bit ids on PostgreSQL; SQLite only autoincrements a column typed exactly INTEGER.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    """The current time as an aware UTC datetime (column defaults use it)."""
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamptz that refuses naive input, stores UTC and always reads back aware UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to the catalog; use aware UTC")
        value = value.astimezone(UTC)
        # SQLite stores text: drop the offset so stored values compare in UTC order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base carrying the naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class CameraRow(Base):
    """A camera the service knows; ids are operator-chosen names."""

    __tablename__ = "cameras"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, default=utcnow)
    # Stream address for live ingest; may carry credentials, so it is masked when shown.
    url: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Legal hold: retention keeps everything of this camera while it is set.
    legal_hold: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=false()
    )
    # Comma-separated labels ("gpu,heavy") that pin the camera to workers asking for them.
    tags: Mapped[str] = mapped_column(Text, nullable=False, default="", server_default="")


class SourceRow(Base):
    """One recording (or stream session) of a camera; the fingerprint makes ingest resumable."""

    __tablename__ = "sources"
    __table_args__ = (UniqueConstraint("camera_id", "fingerprint"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    camera_id: Mapped[str] = mapped_column(ForeignKey("cameras.id"), nullable=False)
    uri: Mapped[str] = mapped_column(Text, nullable=False)
    fingerprint: Mapped[str] = mapped_column(Text, nullable=False)
    start_ts: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    fps: Mapped[float] = mapped_column(Float, nullable=False)
    frames_read: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    complete: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), nullable=False, default=utcnow, onupdate=utcnow
    )


#: Rows without a recorded file size (stored before migration 0011): the partial indexes'
#: predicates, the same on both databases.
_UNSIZED_FRAMES = text("image_bytes IS NULL AND image_path IS NOT NULL")
_UNSIZED_CROPS = text("crop_bytes IS NULL")


class KeyframeRow(Base):
    """A stored keyframe; `frame_index` is 0-based within its source."""

    __tablename__ = "keyframes"
    __table_args__ = (
        UniqueConstraint("source_id", "frame_index"),
        Index("ix_keyframes_camera_id_ts", "camera_id", "ts"),
        # Size-budget retention walks every camera's footage oldest first.
        Index("ix_keyframes_ts_id", "ts", "id"),
        # Only rows stored before 0011 (no recorded size): the storage check's probe.
        Index(
            "ix_keyframes_unsized",
            "id",
            sqlite_where=_UNSIZED_FRAMES,
            postgresql_where=_UNSIZED_FRAMES,
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    camera_id: Mapped[str] = mapped_column(ForeignKey("cameras.id"), nullable=False)
    source_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("sources.id"), nullable=False)
    frame_index: Mapped[int] = mapped_column(Integer, nullable=False)
    ts: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    width: Mapped[int] = mapped_column(Integer, nullable=False)
    height: Mapped[int] = mapped_column(Integer, nullable=False)
    image_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Bytes of the stored image; NULL until sized (rows from before migration 0011).
    image_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class TrackRow(Base):
    """One object followed through successive keyframes of one camera: the unit of retrieval.

    `embedding` is the quality-weighted mean of the members' embeddings, renormalised: the
    one vector the index holds for the track (id = track id). `key` is the tracker's
    deterministic name for it, so a resumed ingest finds the tracks it left open. A track
    never spans two UTC days, so its index shard is the day of `first_ts`.
    """

    __tablename__ = "tracks"
    __table_args__ = (
        CheckConstraint("space IN ('person', 'general')", name="space"),
        Index("ix_tracks_space_first_ts", "space", "first_ts"),
        Index("ix_tracks_camera_id_last_ts", "camera_id", "last_ts"),
        Index("ix_tracks_updated_at", "updated_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    camera_id: Mapped[str] = mapped_column(Text, nullable=False)
    space: Mapped[str] = mapped_column(Text, nullable=False)
    label: Mapped[str] = mapped_column(Text, nullable=False)  # the best member's label
    label_group: Mapped[str] = mapped_column(Text, nullable=False)
    first_ts: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    last_ts: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    appearances: Mapped[int] = mapped_column(Integer, nullable=False)
    # The member with the highest quality: the crop shown for the track.
    best_appearance_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    best_quality: Mapped[float] = mapped_column(Float, nullable=False)
    embedding: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    dim: Mapped[int] = mapped_column(Integer, nullable=False)
    model_id: Mapped[str] = mapped_column(Text, nullable=False)
    # Closed: the tracker let it go (unseen too long, day over, source finished).
    closed: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=false()
    )
    # When the pooled vector last changed: reconcile refreshes vectors newer than a shard.
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, default=utcnow)


class AppearanceRow(Base):
    """One detected object; camera, time and frame are copied from the keyframe to filter fast."""

    __tablename__ = "appearances"
    __table_args__ = (
        CheckConstraint("space IN ('person', 'general')", name="space"),
        Index("ix_appearances_camera_id_ts", "camera_id", "ts"),
        Index("ix_appearances_space_ts", "space", "ts"),
        Index("ix_appearances_label_ts", "label", "ts"),
        Index("ix_appearances_keyframe_id", "keyframe_id"),
        Index("ix_appearances_track_id_ts", "track_id", "ts"),
        Index(
            "ix_appearances_unsized",
            "id",
            sqlite_where=_UNSIZED_CROPS,
            postgresql_where=_UNSIZED_CROPS,
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    keyframe_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("keyframes.id", ondelete="CASCADE"), nullable=False
    )
    camera_id: Mapped[str] = mapped_column(Text, nullable=False)
    ts: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    frame_index: Mapped[int] = mapped_column(Integer, nullable=False)
    label: Mapped[str] = mapped_column(Text, nullable=False)
    confidence: Mapped[float] = mapped_column(Float, nullable=False)
    x1: Mapped[float] = mapped_column(Float, nullable=False)
    y1: Mapped[float] = mapped_column(Float, nullable=False)
    x2: Mapped[float] = mapped_column(Float, nullable=False)
    y2: Mapped[float] = mapped_column(Float, nullable=False)
    space: Mapped[str] = mapped_column(Text, nullable=False)
    model_id: Mapped[str] = mapped_column(Text, nullable=False)
    crop_path: Mapped[str] = mapped_column(Text, nullable=False)
    # Bytes of the stored crop; NULL until sized (rows from before migration 0011).
    crop_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # float32 little-endian bytes, `dim` values: the index is always rebuildable from here.
    embedding: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    dim: Mapped[int] = mapped_column(Integer, nullable=False)
    # Legal hold on this sighting: retention keeps it (and its keyframe) while set.
    legal_hold: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=false()
    )
    # The track it belongs to; no FK so retention can delete members and tracks in any order.
    track_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Pooling weight of this member in its track's vector (confidence, size, sharpness).
    quality: Mapped[float] = mapped_column(Float, nullable=False, default=1.0, server_default="1")


class ApiKeyRow(Base):
    """An API key: only its SHA-256 is stored; `prefix` lets people tell keys apart."""

    __tablename__ = "api_keys"
    __table_args__ = (CheckConstraint("role IN ('viewer', 'operator', 'admin')", name="role"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    role: Mapped[str] = mapped_column(Text, nullable=False)
    key_hash: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    prefix: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class AuditRow(Base):
    """One audited action (every search, every key and camera change); rows are never updated.

    `key_name` and `role` are copied so the trail still reads right after a key is gone.
    """

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_ts", "ts"),
        Index("ix_audit_log_key_id_ts", "key_id", "ts"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, default=utcnow)
    key_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    key_name: Mapped[str] = mapped_column(Text, nullable=False)
    role: Mapped[str] = mapped_column(Text, nullable=False)
    action: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(Text, nullable=False)
    query_kind: Mapped[str | None] = mapped_column(Text, nullable=True)
    crop_sha256: Mapped[str | None] = mapped_column(Text, nullable=True)
    crop_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    appearance_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    keyframe_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    track_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    box: Mapped[str | None] = mapped_column(Text, nullable=True)
    filters: Mapped[str] = mapped_column(Text, nullable=False)  # JSON object
    result_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    client: Mapped[str | None] = mapped_column(Text, nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)


class AuditHitRow(Base):
    """One sighting (track) a search returned, in rank order: what evidence exports rely on.

    Kept beside the audit row, never updated, so an export of a past search shows exactly
    what the operator saw then, not what a re-run would find today.
    """

    __tablename__ = "audit_hits"

    audit_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("audit_log.id"), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    track_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    score: Mapped[float] = mapped_column(Float, nullable=False)


class AlertRuleRow(Base):
    """A watchlist rule: examples (rule_examples) scored against every new appearance."""

    __tablename__ = "alert_rules"
    __table_args__ = (CheckConstraint("space IN ('person', 'general')", name="space"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    space: Mapped[str] = mapped_column(Text, nullable=False)
    threshold: Mapped[float] = mapped_column(Float, nullable=False)
    cameras: Mapped[str] = mapped_column(Text, nullable=False)  # JSON list; [] = all
    labels: Mapped[str] = mapped_column(Text, nullable=False)  # JSON list; [] = all
    interval_s: Mapped[int] = mapped_column(Integer, nullable=False)
    cooldown_s: Mapped[int] = mapped_column(Integer, nullable=False)
    gap_s: Mapped[float] = mapped_column(Float, nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    webhooks: Mapped[str] = mapped_column(Text, nullable=False)  # JSON list of URLs
    secret: Mapped[str | None] = mapped_column(Text, nullable=True)  # HMAC key for webhooks
    # Highest appearance id already evaluated; moves only with the alerts it produced.
    watermark: Mapped[int] = mapped_column(BigInteger, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, default=utcnow)
    created_by: Mapped[str] = mapped_column(Text, nullable=False)


class RuleExampleRow(Base):
    """One example crop of a rule: its stored copy and its embedding in the rule's space."""

    __tablename__ = "rule_examples"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    rule_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("alert_rules.id", ondelete="CASCADE"), nullable=False, index=True
    )
    crop_path: Mapped[str] = mapped_column(Text, nullable=False)
    sha256: Mapped[str] = mapped_column(Text, nullable=False)
    model_id: Mapped[str] = mapped_column(Text, nullable=False)
    embedding: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    dim: Mapped[int] = mapped_column(Integer, nullable=False)


class AlertRow(Base):
    """One sighting that matched a rule: consecutive hits extend it instead of adding rows."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_rule_id_camera_id_last_ts", "rule_id", "camera_id", "last_ts"),
        Index("ix_alerts_created_at", "created_at"),
        Index("ix_alerts_rule_id_track_id", "rule_id", "track_id"),
        UniqueConstraint("rule_id", "appearance_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    rule_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("alert_rules.id", ondelete="CASCADE"), nullable=False
    )
    # The best-scoring hit; retention keeps it (and its keyframe) for evidence_days.
    appearance_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("appearances.id", ondelete="CASCADE"), nullable=False, index=True
    )
    # The track the alert is about: further hits of it extend this alert (one per track).
    track_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    camera_id: Mapped[str] = mapped_column(Text, nullable=False)
    label: Mapped[str] = mapped_column(Text, nullable=False)
    score: Mapped[float] = mapped_column(Float, nullable=False)
    ts: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)  # first hit
    last_ts: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)  # latest hit
    hits: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(Text, nullable=True)


class DeliveryRow(Base):
    """A notification owed to one webhook for one alert (an outbox row, retried until done)."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (
        CheckConstraint("state IN ('pending', 'delivered', 'failed')", name="state"),
        Index("ix_alert_deliveries_state_next_at", "state", "next_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False, index=True
    )
    url: Mapped[str] = mapped_column(Text, nullable=False)
    state: Mapped[str] = mapped_column(Text, nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, default=utcnow)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class DeliveryAttemptRow(Base):
    """One POST of a delivery: when, what came back, how long it took."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(
        BigInteger,
        ForeignKey("alert_deliveries.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    )
    ts: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    seconds: Mapped[float] = mapped_column(Float, nullable=False)


class JobStateRow(Base):
    """A scheduled job's schedule and lease: survives restarts, one runner at a time."""

    __tablename__ = "job_state"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    next_run_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    lease_owner: Mapped[str | None] = mapped_column(Text, nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_started_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_status: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    runs: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class RetentionJournalRow(Base):
    """What a retention batch deleted from the catalog but not yet from index and disk.

    Written in the same transaction as the row deletes; emptied once vectors and files are
    gone, so a run interrupted anywhere finishes the job on the next run.
    """

    __tablename__ = "retention_journal"
    __table_args__ = (CheckConstraint("kind IN ('vector', 'file')", name="kind"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    item_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # vector id
    space: Mapped[str | None] = mapped_column(Text, nullable=True)
    ts: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)  # picks the shard
    path: Mapped[str | None] = mapped_column(Text, nullable=True)  # blob key


class CameraHealthRow(Base):
    """A live camera's latest health, overwritten every few seconds by `surveil run`."""

    __tablename__ = "camera_health"
    __table_args__ = (
        CheckConstraint(
            "state IN ('connecting', 'online', 'stalled', 'offline', 'stopped')", name="state"
        ),
    )

    camera_id: Mapped[str] = mapped_column(Text, primary_key=True)
    state: Mapped[str] = mapped_column(Text, nullable=False)
    last_frame_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    fps: Mapped[float] = mapped_column(Float, nullable=False)
    keyframes_per_s: Mapped[float] = mapped_column(Float, nullable=False)
    keyframes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    drops: Mapped[int] = mapped_column(BigInteger, nullable=False)
    reconnects: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)


class CameraGapRow(Base):
    """A time a live camera delivered nothing (offline from..to), and why."""

    __tablename__ = "camera_gaps"
    __table_args__ = (Index("ix_camera_gaps_camera_id_start_ts", "camera_id", "start_ts"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    camera_id: Mapped[str] = mapped_column(Text, nullable=False)
    start_ts: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    end_ts: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class CameraLeaseRow(Base):
    """Which `surveil run` worker reads a camera, until when: one reader per camera."""

    __tablename__ = "camera_leases"

    camera_id: Mapped[str] = mapped_column(Text, primary_key=True)
    owner: Mapped[str] = mapped_column(Text, nullable=False, index=True)
    acquired_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    renewed_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    lease_until: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)


class LiveWorkerRow(Base):
    """A running `surveil run` worker and its pins, so workers can share cameras fairly."""

    __tablename__ = "live_workers"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    host: Mapped[str] = mapped_column(Text, nullable=False)
    pid: Mapped[int] = mapped_column(Integer, nullable=False)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    heartbeat_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    lease_until: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    # Pins, comma-separated; empty = any camera. The index backend decides who may share.
    cameras: Mapped[str] = mapped_column(Text, nullable=False, default="")
    camera_tags: Mapped[str] = mapped_column(Text, nullable=False, default="")
    index_backend: Mapped[str] = mapped_column(Text, nullable=False)


metadata = Base.metadata


class FeedbackRow(Base):
    """An operator's current verdict on one hit of one query (a search or an alert rule).

    `query_key` ("search:<audit id>" or "rule:<rule id>") and `hit_key` ("track:<id>" or
    "appearance:<id>") make one row per (query, hit): a changed mind replaces the row,
    and the audit trail keeps each action.
    """

    __tablename__ = "feedback"
    __table_args__ = (
        CheckConstraint("verdict IN ('confirmed', 'rejected')", name="verdict"),
        CheckConstraint("space IN ('person', 'general')", name="space"),
        UniqueConstraint("query_key", "hit_key"),
        Index("ix_feedback_audit_id", "audit_id"),
        Index("ix_feedback_rule_id", "rule_id"),
        Index("ix_feedback_space_ts", "space", "ts"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, default=utcnow)
    key_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    key_name: Mapped[str] = mapped_column(Text, nullable=False)
    query_key: Mapped[str] = mapped_column(Text, nullable=False)
    hit_key: Mapped[str] = mapped_column(Text, nullable=False)
    audit_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    rule_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    alert_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    track_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    appearance_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    space: Mapped[str] = mapped_column(Text, nullable=False)
    verdict: Mapped[str] = mapped_column(Text, nullable=False)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)


class SpaceFloorRow(Base):
    """A space's min_score calibrated from feedback: searches giving none use it."""

    __tablename__ = "space_floors"
    __table_args__ = (CheckConstraint("space IN ('person', 'general')", name="space"),)

    space: Mapped[str] = mapped_column(Text, primary_key=True)
    min_score: Mapped[float] = mapped_column(Float, nullable=False)
    precision: Mapped[float] = mapped_column(Float, nullable=False)
    labels: Mapped[int] = mapped_column(Integer, nullable=False)
    set_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, default=utcnow)
    set_by: Mapped[str] = mapped_column(Text, nullable=False)


class SpaceModelRow(Base):
    """The embedding model whose vectors a space holds: what searches and rules check against.

    One row per space, so the guard reads one primary key instead of scanning vectors.
    `embedder` (JSON) is how that model was configured, so searches can keep using it
    while `surveil index reembed` moves the space to `pending_model_id`; `index_stale`
    marks the moment between the catalog's swap and the index rebuild.
    """

    __tablename__ = "space_models"
    __table_args__ = (CheckConstraint("space IN ('person', 'general')", name="space"),)

    space: Mapped[str] = mapped_column(Text, primary_key=True)
    model_id: Mapped[str] = mapped_column(Text, nullable=False)
    dim: Mapped[int] = mapped_column(Integer, nullable=False)
    embedder: Mapped[str | None] = mapped_column(Text, nullable=True)
    pending_model_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    index_stale: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=false()
    )
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, default=utcnow)


class ReembedVectorRow(Base):
    """An appearance's vector under the model a re-embed moves to, kept aside until the swap.

    A NULL embedding records that the appearance's crop blob was missing.
    """

    __tablename__ = "reembed_vectors"
    __table_args__ = (Index("ix_reembed_vectors_space_model_id", "space", "model_id"),)

    appearance_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("appearances.id", ondelete="CASCADE"), primary_key=True
    )
    space: Mapped[str] = mapped_column(Text, nullable=False)
    model_id: Mapped[str] = mapped_column(Text, nullable=False)
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    dim: Mapped[int] = mapped_column(Integer, nullable=False)
