"""Atomic file replacement (the one way surveil writes a file that others may read), and
the disk files live on.

Write beside the target, fsync, rename over it, fsync the folder: a reader (or a
restart after a crash) sees the old bytes or the new, never half a file. Used for
crop/keyframe JPEGs, FAISS shards and index manifests alike.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

#: Marks temp files, so loaders can skip (and sweeps remove) what a crash left behind.
TMP_MARKER = ".tmp-"


def file_digest(path: Path) -> str:
    """First 12 hex digits of a file's SHA-256: a model version that changes with the bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def temp_path(path: Path) -> Path:
    """A hidden, unique name beside `path` on the same file system (so rename is atomic)."""
    return path.with_name(f".{path.name}{TMP_MARKER}{os.getpid()}-{uuid.uuid4().hex[:8]}")


def fsync_dir(folder: Path) -> None:
    """Make renames inside `folder` durable; not every platform can open a directory."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def fsync_file(path: Path) -> None:
    """Make one file's bytes durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@cache
def _syncfs() -> Any:
    """libc's syncfs, looked up once (find_library runs a subprocess); None if missing."""
    name = ctypes.util.find_library("c")
    return None if name is None else getattr(ctypes.CDLL(name, use_errno=True), "syncfs", None)


def sync_filesystem(path: Path) -> bool:
    """Flush every pending write of the file system holding `path` (Linux syncfs(2)).

    One call makes a whole batch of files durable, where an fsync per file costs ~0.3 ms of
    CPU each (a third of ingest's file writer on a busy junction, docs/performance.md).
    False where the platform has no syncfs: the caller then syncs file by file.
    """
    syncfs = _syncfs()
    if syncfs is None:
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        return int(syncfs(fd)) == 0
    finally:
        os.close(fd)


@contextmanager
def replacing(path: Path, *, sync_dir: bool = True, sync: bool = True) -> Iterator[Path]:
    """Yield a temp path to write; on success it atomically becomes `path`, else vanishes.

    `sync_dir=False` lets a caller writing many files fsync each folder once itself;
    `sync=False` also skips the file's own fsync, for a caller that syncs the file system.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        yield tmp
        if sync:
            with tmp.open("rb+") as handle:
                os.fsync(handle.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync_dir:
        fsync_dir(path.parent)


def write_atomic(path: Path, data: bytes, *, sync_dir: bool = True, sync: bool = True) -> None:
    """Replace `path` with `data` atomically and (unless `sync=False`) durably."""
    with replacing(path, sync_dir=sync_dir, sync=sync) as tmp:
        tmp.write_bytes(data)


@dataclass
class Disk:
    """The file system under the media (None for an object store)."""

    total: int
    free: int

    @property
    def used_fraction(self) -> float:
        """Share of the disk in use."""
        return 1.0 - self.free / self.total if self.total else 0.0


def disk_of(root: Path | None) -> Disk | None:
    """The disk `root` is on, or None when there is none (an object store) or it fails.

    Before the first file is written `root` may not exist yet: its disk is the nearest
    existing folder's.
    """
    if root is None:
        return None
    where = next((p for p in (root, *root.parents) if p.exists()), root)
    try:
        usage = shutil.disk_usage(where)
    except OSError:
        return None
    return Disk(total=usage.total, free=usage.free)
