"""Where data lives: the data directory and the catalog database."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from surveil.config.base import Section


class S3Settings(Section):
    """An S3-compatible bucket for crops and keyframes (credentials: the AWS chain only)."""

    endpoint_url: str | None = Field(
        None,
        title="S3 endpoint URL",
        description=(
            "e.g. http://minio:9000 for MinIO or another S3-compatible store; empty means "
            "AWS S3. Credentials come only from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or "
            "the AWS config chain, never from these settings."
        ),
    )
    bucket: str = Field(
        "",
        max_length=63,
        title="S3 bucket",
        description="The bucket crops and keyframes go to; required when storage.blobs is s3.",
    )
    prefix: str = Field(
        "",
        max_length=200,
        title="S3 key prefix",
        description="A folder inside the bucket for this deployment (e.g. 'site-a/'); empty: none.",
    )
    region: str | None = Field(
        None,
        title="S3 region",
        description="Region to sign for (e.g. eu-west-1); empty uses the AWS config chain's.",
    )
    addressing_style: Literal["auto", "path", "virtual"] = Field(
        "auto",
        title="Addressing style",
        description="'path' (bucket in the URL path) suits MinIO and most S3-compatible stores.",
    )
    create_bucket: bool = Field(
        False,
        title="Create a missing bucket",
        description="Create the bucket at start-up when it does not exist (tests, one-box setups).",
    )
    upload_threads: int = Field(
        8,
        ge=1,
        le=64,
        title="Upload threads",
        description="Parallel requests for a batch of crops (network-bound, so more than cores).",
    )
    timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=300,
        title="Request timeout",
        description="Seconds to connect or wait for a response before the store counts as down.",
    )

    @field_validator("prefix")
    @classmethod
    def _folder(cls, value: str) -> str:
        """'' or 'a/b/': one trailing slash, no empty, '.' or '..' segments."""
        bare = value.strip("/")
        if bare and any(p in ("", ".", "..") for p in bare.split("/")):
            raise ValueError(f"storage.s3.prefix {value!r} has an empty, '.' or '..' segment")
        return f"{bare}/" if bare else ""


class StorageSettings(Section):
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
    blobs: Literal["local", "s3"] = Field(
        "local",
        title="Blob store",
        description="'local' keeps crops/keyframes under root; 's3' in the storage.s3 bucket.",
    )
    s3: S3Settings = Field(
        default_factory=S3Settings,
        title="S3 bucket",
        description="Where blobs go when storage.blobs is s3.",
    )


class DatabaseSettings(Section):
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
