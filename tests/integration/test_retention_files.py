"""EarlyUnlinks on real files: a committed batch's files go in the background, and the
drain counts each deleted file once, whatever deleted it and however many rows shared it."""

from __future__ import annotations

from pathlib import Path

import pytest

from surveil.jobs.retention_files import EarlyUnlinks
from surveil.storage.blobs import FileBlobStore


def test_files_deleted_early_are_counted_once_and_the_rest_left_to_the_drain(
    tmp_path: Path,
) -> None:
    store = FileBlobStore(tmp_path)
    store.put_many([("crops/a/1/x.jpg", b"12"), ("crops/a/1/y.jpg", b"345"), ("k/z.jpg", b"6")])
    with EarlyUnlinks(store.inventory()) as early:
        early.submit(["crops/a/1/x.jpg", "crops/a/1/y.jpg"])
        early.submit(["crops/a/1/x.jpg"])  # a file two rows shared, in the next batch
        early.settle()
        assert not (tmp_path / "crops/a/1/x.jpg").exists()
        # The drain's journal: x twice (two rows), y once, and a file never submitted.
        sizes, rest = early.take(
            ["crops/a/1/x.jpg", "crops/a/1/y.jpg", "crops/a/1/x.jpg", "k/z.jpg"]
        )
        assert sizes == [2, 3]
        assert rest == ["crops/a/1/x.jpg", "k/z.jpg"]
        assert store.inventory().delete_many(rest) == [None, 1]  # x: already gone


def test_a_failed_background_delete_surfaces_at_the_drain(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    with EarlyUnlinks(store.inventory()) as early:
        early.submit(["../outside.jpg"])  # refused like any unsafe key
        with pytest.raises(ValueError, match="invalid blob key"):
            early.settle()
