"""A per-space manifest of shard vector counts, so counting never has to load FAISS files.

`reconcile` runs on every command start; with the counts here it can compare index and
catalog day by day and open only the shards that disagree. The manifest is written
after the shards it describes, and an entry is trusted only while its shard file still
has the inode, size and mtime recorded: a crash between a shard save and the manifest
save (or a file replaced behind our back) makes just that shard fall back to a load.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from surveil.files import write_atomic

log = structlog.get_logger(__name__)

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1


@dataclass(frozen=True, slots=True)
class ShardEntry:
    """A shard's vector count and the identity of the file that count was taken from."""

    ntotal: int
    inode: int
    size: int
    mtime_ns: int
    #: Wall time (Unix seconds) just before the save began: every change added to the
    #: shard before it is in the file. None in manifests written before tracks.
    saved_at: float | None = None
    #: How a trained (compressed) shard was built and the recall it measured on itself;
    #: None for exact shards (see index/training.py, TrainingRecord).
    training: dict[str, Any] | None = None

    def same_file(self, other: ShardEntry) -> bool:
        """Whether two entries describe the same file contents (count and identity)."""
        mine = (self.ntotal, self.inode, self.size, self.mtime_ns)
        return mine == (other.ntotal, other.inode, other.size, other.mtime_ns)


def entry_for(
    path: Path,
    ntotal: int,
    saved_at: float | None = None,
    training: dict[str, Any] | None = None,
) -> ShardEntry:
    """The entry vouching that the file at `path`, as it is now, holds `ntotal` vectors."""
    st = path.stat()
    return ShardEntry(
        ntotal=ntotal,
        inode=st.st_ino,
        size=st.st_size,
        mtime_ns=st.st_mtime_ns,
        saved_at=saved_at,
        training=training,
    )


def trusted_count(entries: Mapping[str, ShardEntry], stem: str, path: Path) -> int | None:
    """The recorded count for a shard if its file is unchanged since; None means load it."""
    entry = entries.get(stem)
    if entry is None:
        return None
    try:
        current = entry_for(path, entry.ntotal)
    except OSError:
        return None
    return entry.ntotal if current.same_file(entry) else None


def read_manifest(folder: Path) -> dict[str, ShardEntry]:
    """Entries by shard stem; empty when the manifest is missing or unreadable."""
    path = folder / MANIFEST_NAME
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("version") != MANIFEST_VERSION:
            raise ValueError(f"unknown manifest version {raw.get('version')!r}")
        return {
            str(stem): ShardEntry(
                ntotal=int(e["ntotal"]),
                inode=int(e["inode"]),
                size=int(e["size"]),
                mtime_ns=int(e["mtime_ns"]),
                saved_at=None if e.get("saved_at") is None else float(e["saved_at"]),
                training=e.get("training") if isinstance(e.get("training"), dict) else None,
            )
            for stem, e in raw["shards"].items()
        }
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        log.warning("index.manifest_unreadable", path=str(path), error=str(exc))
        return {}


def write_manifest(folder: Path, entries: Mapping[str, ShardEntry], dim: int | None) -> None:
    """Replace the folder's manifest atomically: temp, fsync, rename, fsync the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    body = {
        "version": MANIFEST_VERSION,
        "dim": dim,
        "shards": {
            stem: {
                "ntotal": e.ntotal,
                "inode": e.inode,
                "size": e.size,
                "mtime_ns": e.mtime_ns,
                "saved_at": e.saved_at,
                **({"training": e.training} if e.training else {}),
            }
            for stem, e in sorted(entries.items())
        },
    }
    write_atomic(folder / MANIFEST_NAME, json.dumps(body, indent=1).encode("utf-8"))
