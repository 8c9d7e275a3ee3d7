"""One batch's files and rows: deterministic blob keys, and a batch ready to commit.

Keys are fixed before anything is written, so a failure can remove exactly what the
batch wrote, and a resumed ingest overwrites rather than orphans files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from surveil.domain import Crop, Keyframe, NewKeyframe, TrackUpdate


def keyframe_key(camera_id: str, source_id: int, frame_index: int) -> str:
    """Deterministic blob key, so a resumed ingest overwrites rather than orphans files."""
    return f"keyframes/{camera_id}/{source_id}/{frame_index:08d}.jpg"


def crop_key(camera_id: str, source_id: int, frame_index: int, n: int) -> str:
    """Deterministic blob key for the n-th crop of a keyframe."""
    return f"crops/{camera_id}/{source_id}/{frame_index:08d}_{n:03d}.jpg"


@dataclass(frozen=True)
class BatchKeys:
    """Blob keys of one batch, fixed before anything is written so a failure can undo it."""

    keyframes: list[str | None]
    crops: list[list[str]]

    @classmethod
    def of(
        cls,
        batch: Sequence[Keyframe],
        crops: Sequence[Sequence[Crop]],
        source_ids: Sequence[int],
        keep_keyframes: bool,
    ) -> BatchKeys:
        return cls(
            keyframes=[
                keyframe_key(k.frame.camera_id, s, k.frame.index) if keep_keyframes else None
                for k, s in zip(batch, source_ids, strict=True)
            ],
            crops=[
                [crop_key(k.frame.camera_id, s, k.frame.index, n) for n in range(len(c))]
                for k, c, s in zip(batch, crops, source_ids, strict=True)
            ],
        )

    def all(self) -> list[str]:
        """Every key of the batch."""
        return [k for k in self.keyframes if k] + [k for ks in self.crops for k in ks]


@dataclass(frozen=True)
class PreparedBatch:
    """A batch detected, embedded and its files written: only the commit is left to do.

    Live ingest holds these while the catalog is unreachable and commits them later;
    `discard` removes their files when they must be given up.
    """

    rows: list[NewKeyframe]
    keys: list[str]
    #: The state of every track the batch touched or closed, stored with the rows.
    tracks: list[TrackUpdate] = field(default_factory=list)

    @property
    def appearances(self) -> int:
        """Appearances the batch will add."""
        return sum(len(r.appearances) for r in self.rows)


__all__ = ["BatchKeys", "PreparedBatch", "crop_key", "keyframe_key"]
