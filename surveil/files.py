"""Atomic file replacement: the one way surveil writes a file that others may read.

Write beside the target, fsync, rename over it, fsync the folder: a reader (or a
restart after a crash) sees the old bytes or the new, never half a file. Used for
crop/keyframe JPEGs, FAISS shards and index manifests alike.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: Marks temp files, so loaders can skip (and sweeps remove) what a crash left behind.
TMP_MARKER = ".tmp-"


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


@contextmanager
def replacing(path: Path, *, sync_dir: bool = True) -> Iterator[Path]:
    """Yield a temp path to write; on success it atomically becomes `path`, else vanishes.

    `sync_dir=False` lets a caller writing many files fsync each folder once itself.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        yield tmp
        with tmp.open("rb+") as handle:
            os.fsync(handle.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync_dir:
        fsync_dir(path.parent)


def write_atomic(path: Path, data: bytes, *, sync_dir: bool = True) -> None:
    """Replace `path` with `data` atomically and durably."""
    with replacing(path, sync_dir=sync_dir) as tmp:
        tmp.write_bytes(data)
