"""`surveil backup create|restore`: catalog dump, media, vector index, and a manifest.

A backup folder holds the catalog (backup_catalog.py), `media/` (every crop, keyframe,
audit copy and rule example, by blob key), `index/` (the FAISS shards, when the index is
local files) and `manifest.json`, written last: versions, the Alembic revision, each
space's model, row counts and the size and SHA-256 of every file. Restore verifies every
hash before it changes anything, then loads the catalog, the media and the index (or
rebuilds the index from the catalog's vectors) and runs the migrations forward, so a
backup of an older release restores into a newer one.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import func, inspect, select

from surveil import __version__
from surveil.config import Settings
from surveil.domain import ConfigError, InputError
from surveil.files import write_atomic
from surveil.storage.backup_catalog import (
    CATALOG_FILES,
    dialect_of,
    dump_catalog,
    sqlite_path,
)
from surveil.storage.blobs.claims import CLAIMS
from surveil.storage.db import make_engine
from surveil.storage.migrate import current_revision
from surveil.storage.tables import metadata

log = structlog.get_logger(__name__)

MANIFEST = "manifest.json"
MEDIA = "media"
INDEX = "index"
#: Raised when a manifest is of a layout this code cannot read.
FORMAT = 1
#: Blob folders copied through the BlobStore port when the blobs live in S3.
BLOB_PREFIXES = ("crops/", "keyframes/", "audit/", "rules/")
#: Rows counted into the manifest (and compared by whoever checks a restore).
COUNTED = ("cameras", "sources", "keyframes", "tracks", "appearances", "alert_rules", "alerts")
#: Bytes hashed per read.
CHUNK = 1 << 20

#: Called with a file's relative path as each one is copied or verified.
Progress = Callable[[str], object]


def quiet(_: str) -> None:
    return None


def not_media(settings: Settings) -> set[Path]:
    """What lives under storage.root but is not a blob: catalog, index, claims, models."""
    root = settings.storage.root.resolve()
    skip = {root / INDEX, root / CLAIMS, settings.models_path.resolve()}
    if dialect_of(settings.database_url) == "sqlite":
        db = sqlite_path(settings.database_url).resolve()
        skip |= {db, Path(f"{db}-wal"), Path(f"{db}-shm"), Path(f"{db}-journal")}
    return skip


def walk_files(root: Path, skip: set[Path] | None = None) -> Iterator[Path]:
    """Every file under `root` outside `skip`, sorted, as paths relative to root."""
    skip = skip or set()
    for folder, dirs, names in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if here / d not in skip)
        for name in sorted(names):
            if here / name not in skip:
                yield (here / name).relative_to(root)


def place(source: Path, target: Path, *, link: bool) -> None:
    """Hard-link `source` at `target` where the file system allows it, else copy it.

    Blobs and shards are only ever replaced by rename, never rewritten in place, so a
    link keeps the bytes the file had when it was taken.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    if link:
        try:
            os.link(source, target)
            return
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise
    shutil.copy2(source, target)


def outside_root(settings: Settings, folder: Path) -> None:
    """Refuse a backup folder inside storage.root: it would back up (or wipe) itself."""
    root = settings.storage.root.resolve()
    if folder.resolve().is_relative_to(root):
        raise InputError(
            f"backup folder {folder} is inside storage.root ({root}): choose one outside it"
        )


def sha256_of(path: Path) -> str:
    """The file's SHA-256, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def catalog_facts(url: str) -> tuple[str | None, dict[str, int], dict[str, Any]]:
    """The catalog's Alembic revision, row counts and each space's model (the tables an
    older release's catalog has; it may predate some)."""
    engine = make_engine(url)
    try:
        revision = current_revision(engine)
        with engine.connect() as conn:
            present = set(inspect(conn).get_table_names())
            counts = {
                name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
                for name, table in metadata.tables.items()
                if name in COUNTED and name in present
            }
            models = {}
            if "space_models" in present:
                rows = conn.execute(select(metadata.tables["space_models"]))
                models = {str(r.space): {"model_id": r.model_id, "dim": r.dim} for r in rows}
    finally:
        engine.dispose()
    return revision, counts, models


def _blob_files(settings: Settings, out: Path, progress: Progress) -> None:
    """Copy the media into out/media: linked from storage.root, or read through S3."""
    media = out / MEDIA
    if settings.storage.blobs == "local":
        root = settings.storage.root.resolve()
        for rel in walk_files(root, not_media(settings)):
            place(root / rel, media / rel, link=True)
            progress(f"{MEDIA}/{rel.as_posix()}")
        return
    from surveil.container import open_blobs

    blobs = open_blobs(settings)
    try:
        for prefix in BLOB_PREFIXES:
            for key in blobs.keys(prefix):
                write_atomic(media / key, blobs.get(key), sync_dir=False, sync=False)
                progress(f"{MEDIA}/{key}")
    finally:
        blobs.close()


def create_backup(settings: Settings, out: Path, progress: Progress = quiet) -> dict[str, Any]:
    """Write a complete backup of the configured catalog, media and index into `out`."""
    url = settings.database_url
    dialect = dialect_of(url)
    if out.exists() and any(out.iterdir()):
        raise InputError(f"backup folder {out} is not empty: give a new or empty folder")
    outside_root(settings, out)
    revision, counts, models = catalog_facts(url)
    if revision is None:
        raise ConfigError("backup: the catalog was never migrated; nothing to back up")
    out.mkdir(parents=True, exist_ok=True)
    try:
        catalog_file = CATALOG_FILES[dialect]
        dump_catalog(url, out / catalog_file)
        progress(catalog_file)
        _blob_files(settings, out, progress)
        index_kind = _backup_index(settings, out, progress)
        files: dict[str, dict[str, Any]] = {
            rel.as_posix(): {"bytes": (out / rel).stat().st_size, "sha256": sha256_of(out / rel)}
            for rel in walk_files(out)
        }
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "created_at": datetime.now(UTC).isoformat(),
            "surveil_version": __version__,
            "alembic_revision": revision,
            "catalog": {"dialect": dialect, "file": catalog_file},
            "blobs": settings.storage.blobs,
            "index": index_kind,
            "models": models,
            "counts": counts,
            "files": files,
        }
        write_atomic(out / MANIFEST, json.dumps(manifest, indent=2).encode())
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise ConfigError(f"backup: no space left on the device of {out}") from None
        raise
    total = sum(int(f["bytes"]) for f in files.values())
    log.info("backup.created", folder=str(out), files=len(files), bytes=total, index=index_kind)
    return {"folder": str(out), "files": len(files), "bytes": total, **_summary(manifest)}


def _backup_index(settings: Settings, out: Path, progress: Progress) -> str:
    """Link the FAISS shards into out/index ('copied'); a Milvus index is 'rebuild'."""
    if settings.index.backend != "faiss":
        return "rebuild"
    from surveil.container import index_root

    shards = index_root(settings)
    if shards.is_dir():
        for rel in walk_files(shards):
            place(shards / rel, out / INDEX / rel, link=True)
            progress(f"{INDEX}/{rel.as_posix()}")
    return "copied"


def _summary(manifest: dict[str, Any]) -> dict[str, Any]:
    keys = ("surveil_version", "alembic_revision", "catalog", "blobs", "index", "models", "counts")
    return {k: manifest[k] for k in keys}


def read_manifest(folder: Path) -> dict[str, Any]:
    """The backup's manifest, checked for a layout this release reads."""
    path = folder / MANIFEST
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{folder} is not a complete backup: {MANIFEST} is missing") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise InputError(
            f"{path}: backup format {manifest.get('format')!r}, this release reads {FORMAT}"
        )
    return manifest


def verify_backup(folder: Path, manifest: dict[str, Any], progress: Progress = quiet) -> int:
    """Check every listed file's size and SHA-256, and that no file is unlisted; files checked."""
    files: dict[str, dict[str, Any]] = manifest["files"]
    present = {rel.as_posix() for rel in walk_files(folder)} - {MANIFEST}
    if extra := sorted(present - set(files)):
        raise InputError(f"backup {folder} has a file its manifest does not list: {extra[0]}")
    for rel, want in files.items():
        path = folder / rel
        if not path.is_file():
            raise InputError(f"backup {folder} is damaged: {rel} is missing")
        if path.stat().st_size != want["bytes"] or sha256_of(path) != want["sha256"]:
            raise InputError(f"backup {folder} is damaged: {rel} does not match its SHA-256")
        progress(rel)
    return len(files)
