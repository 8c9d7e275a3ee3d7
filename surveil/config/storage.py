"""Where data lives: the data directory and the catalog database."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from surveil.config.base import Section


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
