"""FileBlobStore: atomic writes, key validation, delete, listing and claims."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from surveil.domain import ConflictError
from surveil.storage.blobs import FileBlobStore


def test_put_get_round_trip_and_overwrite(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    store.put("cam1/2024/crop_1.jpg", b"first")
    assert store.get("cam1/2024/crop_1.jpg") == b"first"
    store.put("cam1/2024/crop_1.jpg", b"second")
    assert store.get("cam1/2024/crop_1.jpg") == b"second"
    assert store.path("cam1/2024/crop_1.jpg") == tmp_path.resolve() / "cam1/2024/crop_1.jpg"
    # No temp files are left behind next to the blob.
    assert [p.name for p in (tmp_path / "cam1/2024").iterdir()] == ["crop_1.jpg"]


def test_failed_put_keeps_old_bytes_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileBlobStore(tmp_path)
    store.put("a/b.jpg", b"old")

    def boom(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("surveil.files.os.fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        store.put("a/b.jpg", b"new-but-never-complete")
    monkeypatch.undo()
    assert store.get("a/b.jpg") == b"old"
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["b.jpg"]


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/etc/passwd",
        "../outside.jpg",
        "a/../../outside.jpg",
        "a/./b.jpg",
        "a//b.jpg",
        "a\\b.jpg",
        "a\x00b.jpg",
        "C:/windows.jpg",
        "a/",
    ],
)
def test_unsafe_keys_are_refused(tmp_path: Path, key: str) -> None:
    store = FileBlobStore(tmp_path / "root")
    for call in (store.path, store.get, store.exists, store.delete):
        with pytest.raises(ValueError, match="invalid blob key"):
            call(key)
    with pytest.raises(ValueError, match="invalid blob key"):
        store.put(key, b"x")
    assert not (tmp_path / "outside.jpg").exists()


def test_put_many_writes_every_file_and_refuses_bad_keys(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    items = [(f"crops/cam/{i:03d}.jpg", bytes([i]) * (i + 1)) for i in range(40)]
    store.put_many(items)
    for key, data in items:
        assert store.get(key) == data
    assert not list(tmp_path.rglob("*.tmp"))
    with pytest.raises(ValueError, match="invalid blob key"):
        store.put_many([("ok.jpg", b"x"), ("../escape.jpg", b"y")])
    assert not (tmp_path.parent / "escape.jpg").exists()


def test_keys_lists_every_file_under_a_folder(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    store.put_many([("crops/a/1/x.jpg", b"1"), ("crops/a/1/deep/y.jpg", b"2"), ("crops/b/z", b"")])
    (tmp_path / "crops/a/1/.x.jpg.tmp-1-ab").write_bytes(b"half")  # a killed writer's temp
    listed = set(store.keys("crops/a/1/"))
    assert listed == {"crops/a/1/x.jpg", "crops/a/1/deep/y.jpg", "crops/a/1/.x.jpg.tmp-1-ab"}
    assert list(store.keys("crops/none/")) == []
    with pytest.raises(ValueError, match="invalid blob key"):
        list(store.keys("../"))


def test_a_claim_is_exclusive_until_released(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    with store.claim("source-7"):
        held = pytest.raises(ConflictError, match="source-7 is held by another process")
        with held, store.claim("source-7"):
            pass
        with store.claim("source-8"):
            pass  # other names are independent
    with store.claim("source-7"):
        pass  # released on exit
    assert list((tmp_path / ".claims").iterdir()) == []  # and nothing left behind
    with pytest.raises(ValueError, match="invalid claim name"), store.claim("../x"):
        pass


def test_a_killed_holder_lets_go_of_its_claim(tmp_path: Path) -> None:
    hold = (
        "import os, sys; from pathlib import Path\n"
        "from surveil.storage.blobs import FileBlobStore\n"
        "with FileBlobStore(Path(sys.argv[1])).claim('source-1'):\n"
        "    print('held', flush=True); sys.stdin.readline(); os._exit(9)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", hold, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    store = FileBlobStore(tmp_path)
    with pytest.raises(ConflictError), store.claim("source-1"):
        pass
    child.kill()
    child.wait(timeout=30)
    with store.claim("source-1"):
        pass
