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


class KeyframeRow(Base):
    """A stored keyframe; `frame_index` is 0-based within its source."""

    __tablename__ = "keyframes"
    __table_args__ = (
        UniqueConstraint("source_id", "frame_index"),
        Index("ix_keyframes_camera_id_ts", "camera_id", "ts"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    camera_id: Mapped[str] = mapped_column(ForeignKey("cameras.id"), nullable=False)
    source_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("sources.id"), nullable=False)
    frame_index: Mapped[int] = mapped_column(Integer, nullable=False)
    ts: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    width: Mapped[int] = mapped_column(Integer, nullable=False)
    height: Mapped[int] = mapped_column(Integer, nullable=False)
    image_path: Mapped[str | None] = mapped_column(Text, nullable=True)


class AppearanceRow(Base):
    """One detected object; camera, time and frame are copied from the keyframe to filter fast."""

    __tablename__ = "appearances"
    __table_args__ = (
        CheckConstraint("space IN ('person', 'general')", name="space"),
        Index("ix_appearances_camera_id_ts", "camera_id", "ts"),
        Index("ix_appearances_space_ts", "space", "ts"),
        Index("ix_appearances_label_ts", "label", "ts"),
        Index("ix_appearances_keyframe_id", "keyframe_id"),
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
    # float32 little-endian bytes, `dim` values: the index is always rebuildable from here.
    embedding: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    dim: Mapped[int] = mapped_column(Integer, nullable=False)


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
    box: Mapped[str | None] = mapped_column(Text, nullable=True)
    filters: Mapped[str] = mapped_column(Text, nullable=False)  # JSON object
    result_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    client: Mapped[str | None] = mapped_column(Text, nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)


metadata = Base.metadata
