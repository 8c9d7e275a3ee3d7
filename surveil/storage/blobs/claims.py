"""Cross-process exclusive holds on a name, released when the holder exits or dies.

Two kinds, picked by the container from the catalog: on one host (SQLite catalog) a
flock on a file under the storage root; across hosts (PostgreSQL catalog, which every
host shares) a PostgreSQL session advisory lock on a dedicated connection. A process
that dies drops its connection, and the server frees the lock at once; a flock on a
shared network file system would not be trustworthy, which is why S3 deployments with
several hosts must not use it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import BinaryIO, Protocol

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from surveil.domain import ConflictError
from surveil.storage.blobs.keys import validate_claim_name

#: Claim files live here, outside the crop and keyframe folders that sweeps walk.
CLAIMS = ".claims"
#: Mixed into advisory lock keys so surveil's locks do not collide with other apps'.
_LOCK_NAMESPACE = b"surveil.claim:"


class Claims(Protocol):
    """Where a blob store's `claim` is decided."""

    def claim(self, name: str) -> AbstractContextManager[None]: ...

    def close(self) -> None: ...


class FlockClaims:
    """Claims as flocked files in one folder: exact on one host, wrong across hosts."""

    def __init__(self, folder: Path) -> None:
        self._folder = Path(folder)

    @contextmanager
    def claim(self, name: str) -> Iterator[None]:
        """Hold `name` exclusively across processes (flock: a killed holder lets go at once).

        The lock file is removed on release so claims leave nothing behind. Unlinking a
        lock file races a process that opened it just before: that process then holds a
        lock on a file no longer at the path. So a holder checks, once locked, that the
        path still names the file it locked, and starts over if not.
        """
        validate_claim_name(name)
        self._folder.mkdir(parents=True, exist_ok=True)
        path = self._folder / f"{name}.lock"
        with _locked(path, name) as handle:
            try:
                yield
            finally:
                path.unlink(missing_ok=True)  # still locked: nobody can take the old file
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def close(self) -> None:
        """Nothing to release: each claim closes its own file."""


@contextmanager
def _locked(path: Path, name: str) -> Iterator[BinaryIO]:
    """Open and flock `path`, retrying while it is unlinked under us by a releasing holder."""
    while True:
        with path.open("a+b") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ConflictError(f"{name} is held by another process") from None
            if _same_file(handle, path):
                yield handle
                return
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _same_file(handle: BinaryIO, path: Path) -> bool:
    """Whether `path` still names the open file (a releasing holder may have unlinked it)."""
    try:
        on_disk = path.stat()
    except FileNotFoundError:
        return False
    mine = os.fstat(handle.fileno())
    return (on_disk.st_dev, on_disk.st_ino) == (mine.st_dev, mine.st_ino)


def advisory_key(name: str) -> int:
    """The signed 64-bit advisory lock key for a claim name (stable across processes)."""
    digest = hashlib.blake2b(_LOCK_NAMESPACE + name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PgClaims:
    """Claims as PostgreSQL session advisory locks: correct across hosts sharing a catalog.

    Each held claim owns one connection outside the catalog's pool (a pooled connection
    would go back with the lock still on it). Locks are per database, so two catalogs on
    one server never see each other's claims.
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self._engine: Engine | None = None

    def _connect_engine(self) -> Engine:
        if self._engine is None:
            self._engine = create_engine(self._url, poolclass=NullPool)
        return self._engine

    @contextmanager
    def claim(self, name: str) -> Iterator[None]:
        """Hold `name` until the block ends or this process dies; ConflictError if taken."""
        key = advisory_key(validate_claim_name(name))
        with self._connect_engine().connect() as conn:
            held = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
            conn.commit()  # no transaction left open (idle-in-transaction timeouts)
            if not held:
                raise ConflictError(f"{name} is held by another process")
            try:
                yield
            finally:
                # A lost connection already freed the lock on the server.
                with suppress(DBAPIError):
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()

    def close(self) -> None:
        """Release the engine (held claims keep their own connections until they end)."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
