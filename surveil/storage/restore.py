"""`surveil backup restore`: verify, refuse to overwrite, load, migrate forward, index.

Nothing is changed until every file of the backup matched its SHA-256 and the target
was found empty (or --force was given). The catalog is loaded as it was dumped and then
migrated to this release's head, so a backup taken by an older release restores into a
newer one; the FAISS shards are put back and reconciled with the catalog (or rebuilt
from the catalog's stored vectors with --rebuild-index, and always for Milvus).
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path
from typing import Any

import structlog

from surveil.config import Settings
from surveil.container import build_services, index_root, open_blobs, shared_index
from surveil.domain import ConfigError, InputError
from surveil.storage.backup import (
    BLOB_PREFIXES,
    COUNTED,
    INDEX,
    MEDIA,
    Progress,
    catalog_facts,
    not_media,
    outside_root,
    place,
    quiet,
    read_manifest,
    verify_backup,
    walk_files,
)
from surveil.storage.backup_catalog import (
    catalog_tables,
    dialect_of,
    empty_catalog,
    restore_catalog,
)
from surveil.storage.migrate import upgrade

log = structlog.get_logger(__name__)


def _occupied(settings: Settings) -> list[str]:
    """What restore would overwrite: catalog tables, media files, index files."""
    found = []
    if tables := catalog_tables(settings.database_url):
        found.append(f"the catalog has {len(tables)} tables")
    if settings.storage.blobs == "local":
        root = settings.storage.root.resolve()
        if root.is_dir() and next(walk_files(root, not_media(settings)), None) is not None:
            found.append(f"{root} holds media files")
    else:
        blobs = open_blobs(settings)
        try:
            if any(next(blobs.keys(p), None) for p in BLOB_PREFIXES):
                found.append("the S3 bucket holds media")
        finally:
            blobs.close()
    shards = index_root(settings)
    if settings.index.backend == "faiss" and shards.is_dir() and any(shards.iterdir()):
        found.append(f"{shards} holds index files")
    return found


def _clear(settings: Settings) -> None:
    """Empty the catalog, the local media and the FAISS folder (restore --force)."""
    empty_catalog(settings.database_url)
    if settings.storage.blobs == "local":
        root = settings.storage.root.resolve()
        if root.is_dir():
            for rel in list(walk_files(root, not_media(settings))):
                (root / rel).unlink()
    shutil.rmtree(index_root(settings), ignore_errors=True)


def _media(settings: Settings, folder: Path, progress: Progress) -> int:
    """Put every media file of the backup back into the configured blob store."""
    media = folder / MEDIA
    if not media.is_dir():
        return 0
    files = list(walk_files(media))
    if settings.storage.blobs == "local":
        root = settings.storage.root.resolve()
        for rel in files:
            # Copied, not linked: the backup must not share files with the live store.
            place(media / rel, root / rel, link=False)
            progress(f"{MEDIA}/{rel.as_posix()}")
        return len(files)
    blobs = open_blobs(settings)
    try:
        for rel in files:
            blobs.put(rel.as_posix(), (media / rel).read_bytes())
            progress(f"{MEDIA}/{rel.as_posix()}")
    finally:
        blobs.close()
    return len(files)


def restore_backup(
    settings: Settings,
    folder: Path,
    *,
    force: bool = False,
    rebuild_index: bool = False,
    progress: Progress = quiet,
) -> dict[str, Any]:
    """Restore the backup in `folder` into the configured catalog, blob store and index."""
    manifest = read_manifest(folder)
    url = settings.database_url
    dialect = dialect_of(url)
    if manifest["catalog"]["dialect"] != dialect:
        raise InputError(
            f"backup {folder} holds a {manifest['catalog']['dialect']} catalog; "
            f"database.url is {dialect}: restore it into a catalog of the same kind"
        )
    outside_root(settings, folder)
    verified = verify_backup(folder, manifest, progress)
    if (occupied := _occupied(settings)) and not force:
        raise InputError(
            f"restore refuses to overwrite: {'; '.join(occupied)} (pass --force to replace them)"
        )
    try:
        if occupied:
            _clear(settings)
        if dialect == "sqlite":
            settings.storage.root.mkdir(parents=True, exist_ok=True)
        restore_catalog(url, folder / manifest["catalog"]["file"])
        media = _media(settings, folder, progress)
        rebuild = rebuild_index or manifest["index"] != "copied" or shared_index(settings)
        if not rebuild and (folder / INDEX).is_dir():
            for rel in walk_files(folder / INDEX):
                place(folder / INDEX / rel, index_root(settings) / rel, link=False)
                progress(f"{INDEX}/{rel.as_posix()}")
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise ConfigError(
                "restore: no space left on device; free space and rerun with --force"
            ) from None
        raise
    upgrade(url)  # forward to this release's head: an older backup restores into a newer release
    report = _index_after(settings, rebuild)
    revision, counts, _ = catalog_facts(url)
    log.info("backup.restored", folder=str(folder), files=verified, revision=revision, **report)
    return {
        "folder": str(folder),
        "verified_files": verified,
        "media_files": media,
        "from_revision": manifest["alembic_revision"],
        "revision": revision,
        "counts": {k: counts[k] for k in COUNTED},
        "backup_counts": manifest["counts"],
        "index": report,
    }


def _index_after(settings: Settings, rebuild: bool) -> dict[str, Any]:
    """Rebuild the index from the restored catalog, or reconcile the restored shards with it."""
    services = build_services(settings, reconcile_index=False)
    try:
        if rebuild:
            counts = services.rebuild_index()
            return {"action": "rebuilt", "vectors": {str(k): v for k, v in counts.items()}}
        try:
            done = services.reconcile_index()
        except Exception as exc:  # any unreadable shard: the catalog is the truth
            # Shards linked while `run` was saving may come from two saves; rebuild instead.
            log.warning("backup.index_unusable", error=str(exc))
            counts = services.rebuild_index()
            return {"action": "rebuilt", "vectors": {str(k): v for k, v in counts.items()}}
        added = {str(k): v for k, v in done.added.items()}
        removed = {str(k): v for k, v in done.removed.items()}
        return {"action": "restored", "added": added, "removed": removed}
    finally:
        services.close()
