"""The BlobStore contract, run against every adapter the container can build.

Stores are built by `open_blobs` from settings, as the product builds them: local files
with flock claims (SQLite catalog), local files with PostgreSQL advisory-lock claims,
and an S3 bucket on a real moto server process with advisory-lock claims. Claims are
checked across real processes, including one killed while it holds its claim.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from s3_server import S3Endpoint

from surveil.config import load_settings
from surveil.container import open_blobs
from surveil.domain import ConflictError
from surveil.ports import BlobStore

KINDS = ["local-flock", "local-pg", "s3-pg"]


def _overrides(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    merged: dict[str, Any] = {"storage.root": str(tmp_path / "data")}
    if kind.endswith("-pg"):
        merged["database.url"] = request.getfixturevalue("pg_url")
    if kind.startswith("s3"):
        bucket: S3Endpoint = request.getfixturevalue("s3_bucket")
        merged.update(bucket.overrides())
    return merged


@pytest.fixture(params=KINDS)
def overrides(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """Settings overrides selecting one adapter (and its claims)."""
    return _overrides(request.param, request, tmp_path)


@pytest.fixture
def store(overrides: dict[str, Any]) -> Iterator[BlobStore]:
    blobs = open_blobs(load_settings(overrides=overrides))
    yield blobs
    blobs.close()


def test_put_get_overwrite(store: BlobStore) -> None:
    store.put("crops/cam1/1/crop_1.jpg", b"first")
    assert store.get("crops/cam1/1/crop_1.jpg") == b"first"
    store.put("crops/cam1/1/crop_1.jpg", b"second")
    assert store.get("crops/cam1/1/crop_1.jpg") == b"second"
    assert list(store.keys("crops/cam1/")) == ["crops/cam1/1/crop_1.jpg"]


def test_delete_exists_and_missing_keys(store: BlobStore) -> None:
    store.put("k/a.jpg", b"x")
    assert store.exists("k/a.jpg")
    assert store.delete("k/a.jpg") is True
    assert not store.exists("k/a.jpg")
    assert store.delete("k/a.jpg") is False
    with pytest.raises(FileNotFoundError):
        store.get("k/a.jpg")


def test_put_many_and_listing(store: BlobStore) -> None:
    items = [(f"crops/cam/{i:03d}.jpg", bytes([i]) * (i + 1)) for i in range(40)]
    items.append(("crops/cam/deep/y.jpg", b"deep"))
    store.put_many(items)
    for key, data in items:
        assert store.get(key) == data
    assert sorted(store.keys("crops/cam/")) == sorted(k for k, _ in items)
    assert list(store.keys("crops/none/")) == []
    store.put_many([])


@pytest.mark.parametrize("key", ["", "/etc/passwd", "../x.jpg", "a/../../x.jpg", "a//b", "a/"])
def test_unsafe_keys_are_refused(store: BlobStore, key: str) -> None:
    for call in (store.get, store.exists, store.delete):
        with pytest.raises(ValueError, match="invalid blob key"):
            call(key)
    with pytest.raises(ValueError, match="invalid blob key"):
        store.put(key, b"x")
    with pytest.raises(ValueError, match="invalid blob key"):
        store.put_many([("ok.jpg", b"x"), (key, b"y")])
    with pytest.raises(ValueError, match="invalid blob key"):
        list(store.keys("../"))


def test_inventory_sizes_walks_and_deletes_in_bulk(store: BlobStore) -> None:
    store.put_many([("crops/b/2.jpg", b"22"), ("crops/a/1.jpg", b"1"), ("crops/a-z.jpg", b"333")])
    files = store.inventory()
    stats = [(f.key, f.stat()) for f in files.walk("crops/")]
    walked = [(key, s.st_size) for key, s in stats if s is not None]
    # Code-point order of whole keys, as the orphan sweep's merge needs.
    assert walked == [("crops/a-z.jpg", 3), ("crops/a/1.jpg", 1), ("crops/b/2.jpg", 2)]
    ages = [time.time() - s.st_mtime for _, s in stats if s is not None]
    assert all(-60 < age < 600 for age in ages)  # dated now, by the store's clock
    assert files.sizes(["crops/a/1.jpg", "crops/none.jpg"]) == [1, None]
    assert files.delete_many(["crops/a/1.jpg", "crops/none.jpg", "crops/b/2.jpg"]) == [1, None, 2]
    assert list(store.keys("crops/")) == ["crops/a-z.jpg"]
    assert files.delete("crops/a-z.jpg") == 3
    assert files.delete("crops/a-z.jpg") is None


def test_a_claim_is_exclusive_until_released(store: BlobStore) -> None:
    with store.claim("source-7"):
        held = pytest.raises(ConflictError, match="source-7 is held by another process")
        with held, store.claim("source-7"):
            pass
        with store.claim("source-8"):
            pass  # other names are independent
    with store.claim("source-7"):
        pass  # released on exit
    with pytest.raises(ValueError, match="invalid claim name"), store.claim("../x"):
        pass


def test_one_retention_run_at_a_time(store: BlobStore, overrides: dict[str, Any]) -> None:
    other = open_blobs(load_settings(overrides=overrides))  # as another process would
    try:
        with store.inventory().run_lock():
            refused = pytest.raises(ConflictError, match="another retention run")
            with refused, other.inventory().run_lock():
                pass
        with other.inventory().run_lock():
            pass  # released
    finally:
        other.close()


_HOLD = (
    "import json, os, sys\n"
    "from surveil.config import load_settings\n"
    "from surveil.container import open_blobs\n"
    "with open_blobs(load_settings(overrides=json.loads(sys.argv[1]))).claim('source-1'):\n"
    "    print('held', flush=True); sys.stdin.readline(); os._exit(9)\n"
)


def test_a_claim_holds_across_processes_until_the_holder_is_killed(
    store: BlobStore, overrides: dict[str, Any]
) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLD, json.dumps(overrides)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        with pytest.raises(ConflictError), store.claim("source-1"):
            pass
    finally:
        child.kill()
        child.wait(timeout=30)
    # The server notices the dead connection at once; allow it a moment to drop the lock.
    deadline = time.monotonic() + 10
    while True:
        try:
            with store.claim("source-1"):
                return
        except ConflictError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_inventory_lists_subfolders_one_level_in_key_order(store: BlobStore) -> None:
    store.put_many(
        [
            ("crops/b/2/x.jpg", b"1"),
            ("crops/a/1/y.jpg", b"2"),
            ("crops/a/7/z.jpg", b"3"),
            ("crops/top.jpg", b"4"),  # a file is not a folder
            ("keyframes/c/1/k.jpg", b"5"),
        ]
    )
    files = store.inventory()
    # The units the incremental orphan sweep slices: camera, then source folders.
    assert files.folders("crops/") == ["crops/a/", "crops/b/"]
    assert files.folders("crops/a/") == ["crops/a/1/", "crops/a/7/"]
    assert files.folders("crops/a/1/") == []
    assert files.folders("none/") == []
