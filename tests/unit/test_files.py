"""Atomic replacement: the old bytes or the new, never half, and no temp left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from surveil.files import TMP_MARKER, replacing, write_atomic


def test_write_atomic_creates_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "f.bin"
    write_atomic(target, b"one")
    write_atomic(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["f.bin"]


def test_failure_inside_the_block_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="crash"), replacing(target) as tmp:
        tmp.write_bytes(b"half")
        assert TMP_MARKER in tmp.name and tmp.parent == tmp_path
        raise RuntimeError("crash")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]
