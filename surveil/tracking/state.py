"""A track's state: what association needs, and its pooled vector; rebuilt from members."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt

from surveil.domain import BBox, Vectors

#: Box velocity: pixels per second of x1, y1, x2, y2.
Velocity = tuple[float, float, float, float]
NO_VELOCITY: Velocity = (0.0, 0.0, 0.0, 0.0)


def velocity_between(old: BBox, new: BBox, dt: float) -> Velocity | None:
    """The box velocity from `old` to `new` over `dt` seconds (None when dt <= 0)."""
    if dt <= 0:
        return None
    x1, y1, x2, y2 = ((n - o) / dt for n, o in zip(new, old, strict=True))
    return (x1, y1, x2, y2)


def predict_box(box: BBox, velocity: Velocity, since: datetime, ts: datetime) -> BBox:
    """Where `box`, seen at `since`, should be at `ts` if it kept its velocity (<= 2 s)."""
    dt = min(max((ts - since).total_seconds(), 0.0), 2.0)
    x1, y1, x2, y2 = (b + v * dt for b, v in zip(box, velocity, strict=True))
    return (x1, y1, x2, y2)


def still_open(last_ts: datetime, ts: datetime, max_age_seconds: float) -> bool:
    """Whether a track last seen at `last_ts` is open at `ts`: seen within max_age, and on
    the same UTC day (a track never spans two days: its index shard is its day)."""
    age = (ts - last_ts).total_seconds()
    return age <= max_age_seconds and last_ts.date() == ts.date()


def pool_vectors(vectors: Vectors, weights: Sequence[float]) -> Vectors:
    """Quality-weighted mean of a track's member vectors (in member order), renormalised.

    What `TrackState.pooled` keeps incrementally, for a track recomputed from what is
    left of it; with no weighted member left, the last member's vector.
    """
    total = np.zeros(vectors.shape[1], np.float64)
    for vec, w in zip(vectors, weights, strict=True):
        if w > 0:
            total += float(w) * vec.astype(np.float64)
    norm = float(np.linalg.norm(total))
    if norm == 0:
        return np.asarray(vectors[-1], dtype=np.float32)
    return np.asarray(total / norm, dtype=np.float32)


@dataclass(frozen=True, slots=True)
class Member:
    """One appearance of a track, as ingest computes it or the catalog gives it back.

    `quality` is the member's weight in the pooled vector. 0 marks a member that was not
    embedded: the tracker was sure of it without looking, so it carries its track's
    latest vector and adds nothing to the pooled one.
    """

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
    #: Box velocity from the last two members; zero at first.
    velocity: Velocity = NO_VELOCITY
    total: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0, np.float64))
    weight: float = 0.0
    #: When a member was last embedded (quality > 0), and the best quality embedded so far:
    #: what decides whether the next crop needs the embedder (`CameraTracker.continuations`).
    embedded_ts: datetime | None = None
    best_quality: float = 0.0

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
            moved = velocity_between(self.last_bbox, m.bbox, (m.ts - self.last_ts).total_seconds())
            self.velocity = moved or self.velocity
        self.members += 1
        self.last_ts, self.last_bbox, self.last_embedding = m.ts, m.bbox, m.embedding
        if m.quality > 0:
            self.total += float(m.quality) * m.embedding.astype(np.float64)
            self.weight += float(m.quality)
            self.embedded_ts = m.ts
            self.best_quality = max(self.best_quality, float(m.quality))

    def predicted(self, ts: datetime) -> BBox:
        """Where the box should be at `ts` if it kept its velocity (for at most 2 s)."""
        return predict_box(self.last_bbox, self.velocity, self.last_ts, ts)

    def pooled(self) -> Vectors:
        """Quality-weighted mean of the embedded members' vectors, renormalised.

        A track with no embedded member left (its only embedded ones deleted by a
        legal-hold release or the orphan sweep) falls back to the vector its members carry.
        """
        norm = float(np.linalg.norm(self.total))
        if norm == 0:
            return np.asarray(self.last_embedding, dtype=np.float32)
        return np.asarray(self.total / norm, dtype=np.float32)
