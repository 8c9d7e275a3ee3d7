"""Retention's view of an S3 blob store: sizes by HEAD, batched deletes, dated listings.

Orphans are told apart from an ingest batch about to commit by age, as on disk: the
sweep skips objects whose LastModified (the store's clock) is within the grace period.
There are no folders in S3, so nothing needs pruning.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from surveil.domain import ConflictError

if TYPE_CHECKING:
    from surveil.storage.blobs.s3 import S3BlobStore

#: DeleteObjects takes at most this many keys per request.
DELETE_BATCH = 1000
#: The claim name retention runs hold (a PostgreSQL advisory lock across hosts).
RETENTION_CLAIM = "retention"


@dataclass(frozen=True, slots=True)
class S3Object:
    """A listed object: its blob key, size and LastModified (epoch seconds)."""

    key: str
    st_size: int
    st_mtime: float

    def stat(self) -> S3Object:
        """Itself: the listing already carries the size and age."""
        return self


class S3BlobFiles:
    """Size, delete and walk the objects of an `S3BlobStore`."""

    def __init__(self, store: S3BlobStore) -> None:
        self._store = store

    def size(self, key: str) -> int | None:
        """Bytes stored under `key` (one HEAD), or None when there is no such object."""
        found = self._store.stat(key)
        return None if found is None else found[0]

    def sizes(self, keys: Sequence[str]) -> list[int | None]:
        """`size` of each key, the HEADs in parallel (each is a network round trip)."""
        return self._store.map(self.size, keys) if len(keys) > 1 else [self.size(k) for k in keys]

    def delete(self, key: str) -> int | None:
        """Remove `key`; its size if it existed, None if it was already gone (re-runs)."""
        return self.delete_many([key])[0]

    def delete_many(self, keys: Sequence[str]) -> list[int | None]:
        """Sizes first (so the report counts bytes), then DeleteObjects 1000 keys a request."""
        sizes = self.sizes(keys)
        present = [
            self._store.object_key(k) for k, s in zip(keys, sizes, strict=True) if s is not None
        ]
        for start in range(0, len(present), DELETE_BATCH):
            self._delete_batch(present[start : start + DELETE_BATCH])
        return sizes

    def _delete_batch(self, names: Sequence[str]) -> None:
        request: dict[str, Any] = {"Objects": [{"Key": n} for n in names], "Quiet": True}
        with self._store.errors("deleting"):
            answer = self._store.client.delete_objects(Bucket=self._store.bucket, Delete=request)
        failed = answer.get("Errors", [])
        if failed:
            first = failed[0]
            raise OSError(
                f"S3 {self._store.where}: {len(failed)} of {len(names)} deletes failed, "
                f"e.g. {first.get('Key')!r}: {first.get('Code')} (retention will retry them)"
            )

    def walk(self, prefix: str, *, prune_before: float | None = None) -> Iterator[S3Object]:
        """Every object under a folder key in key order (S3 lists in UTF-8 byte order,
        which is code-point order); `prune_before` is moot: S3 has no empty folders."""
        for page in self._store.pages(prefix):
            for o in page:
                key = self._store.blob_key(o["Key"])
                yield S3Object(key, int(o["Size"]), o["LastModified"].timestamp())

    def folders(self, prefix: str) -> list[str]:
        """Subfolder keys of a folder key, from a delimited listing (no object is listed)."""
        return sorted(self._store.blob_key(p) for p in self._store.common_prefixes(prefix))

    @contextmanager
    def run_lock(self) -> Iterator[None]:
        """Retention's lock across every host sharing the store (through the claims)."""
        with ExitStack() as stack:
            try:
                stack.enter_context(self._store.claim(RETENTION_CLAIM))
            except ConflictError:
                raise ConflictError(
                    "another retention run holds the retention claim; try again when it finishes"
                ) from None
            yield
