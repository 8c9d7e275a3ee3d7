"""A track's state: what association needs, and its pooled vector; rebuilt from members."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt

from surveil.domain import BBox, Vectors


@dataclass(frozen=True, slots=True)
class Member:
    """One appearance of a track, as ingest computes it or the catalog gives it back."""

    ts: datetime
    bbox: BBox
    label: str
    confidence: float
    embedding: Vectors
    quality: float


@dataclass(slots=True)
class TrackState:
    """An open track: last box and motion, last embedding, quality-weighted vector sum."""

    key: str
    group: str
    members: int
    first_ts: datetime
    last_ts: datetime
    last_bbox: BBox
    last_embedding: Vectors
    #: Box velocity (pixels/s of x1, y1, x2, y2) from the last two members; zero at first.
    velocity: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    total: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0, np.float64))
    weight: float = 0.0

    @classmethod
    def start(cls, key: str, group: str, first: Member) -> TrackState:
        """A track of one member."""
        state = cls(key, group, 0, first.ts, first.ts, first.bbox, first.embedding)
        state.total = np.zeros(first.embedding.shape[0], np.float64)
        state.add(first)
        return state

    @classmethod
    def from_members(cls, key: str, group: str, members: Sequence[Member]) -> TrackState:
        """The state stepping these members one by one gives (bit for bit): a resume."""
        if not members:
            raise ValueError(f"track {key!r} has no members")
        state = cls.start(key, group, members[0])
        for member in members[1:]:
            state.add(member)
        return state

    def add(self, m: Member) -> None:
        """Join one member (in time order)."""
        if self.members:
            dt = (m.ts - self.last_ts).total_seconds()
            if dt > 0:
                self.velocity = tuple(  # type: ignore[assignment]
                    (new - old) / dt for new, old in zip(m.bbox, self.last_bbox, strict=True)
                )
        self.members += 1
        self.last_ts, self.last_bbox, self.last_embedding = m.ts, m.bbox, m.embedding
        self.total += float(m.quality) * m.embedding.astype(np.float64)
        self.weight += float(m.quality)

    def predicted(self, ts: datetime) -> BBox:
        """Where the box should be at `ts` if it kept its velocity (for at most 2 s)."""
        dt = min(max((ts - self.last_ts).total_seconds(), 0.0), 2.0)
        x1, y1, x2, y2 = (b + v * dt for b, v in zip(self.last_bbox, self.velocity, strict=True))
        return (x1, y1, x2, y2)

    def pooled(self) -> Vectors:
        """Quality-weighted mean of the members' embeddings, renormalised."""
        norm = float(np.linalg.norm(self.total))
        vec = self.total / norm if norm > 0 else self.total
        return np.asarray(vec, dtype=np.float32)
