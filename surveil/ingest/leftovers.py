"""Files an interrupted ingest of a source left behind, removed before it is resumed.

A kill after a batch's JPEGs are written but before its commit leaves files no row
references. Their keys name the source (`crops/<camera>/<source>/...`), so once an
ingest holds the source's claim, nobody else can be writing there: every file in the
source's folders that no committed row references is a leftover, whatever its age.
Other sources (another camera, another file, a live session) have other folders and
are never looked at; their leftovers are the orphan sweep's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import structlog

from surveil.domain import ConflictError
from surveil.ports import BlobStore, Catalog, SourceRecord

log = structlog.get_logger(__name__)


def source_folders(camera_id: str, source_id: int) -> tuple[str, str]:
    """The folder keys one source's keyframe and crop files live under (see batches.py)."""
    return f"keyframes/{camera_id}/{source_id}/", f"crops/{camera_id}/{source_id}/"


@contextmanager
def claimed(blobs: BlobStore, record: SourceRecord, uri: str) -> Iterator[None]:
    """Hold the source for this process; a second ingest of it meanwhile is refused."""
    with ExitStack() as stack:
        try:
            stack.enter_context(blobs.claim(f"source-{record.id}"))
        except ConflictError:
            raise ConflictError(
                f"{uri} (source #{record.id}, camera '{record.camera_id}') is being ingested "
                "by another process right now; wait for it to finish, or stop it"
            ) from None
        yield


def remove_leftovers(blobs: BlobStore, catalog: Catalog, record: SourceRecord) -> int:
    """Delete the source's files no committed row references; call only while claimed."""
    committed = catalog.source_blob_keys(source_id=record.id)
    removed = 0
    for folder in source_folders(record.camera_id, record.id):
        for key in list(blobs.keys(folder)):
            if key not in committed and blobs.delete(key):
                removed += 1
    if removed:
        log.warning(
            "ingest.leftovers_removed",
            source_id=record.id,
            camera=record.camera_id,
            files=removed,
            why="written by an interrupted run before its commit",
        )
    return removed


__all__ = ["claimed", "remove_leftovers", "source_folders"]
