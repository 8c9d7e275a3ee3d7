"""Turning matched tracks into sightings: pure functions over domain data.

A sighting is one track: the tracker already decided which appearances are one object,
so grouping never joins two tracks (it used to join hits less than a gap apart, which
merged strangers walking through one after the other).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from surveil.domain import SearchHit, Sighting, StoredAppearance


def track_sighting(
    track_id: int,
    members: Sequence[StoredAppearance],
    score: float,
    member_scores: Mapping[int, float] | None = None,
) -> Sighting:
    """One matched track as a sighting: its members in time order, each with its own score.

    A member's score is the query's similarity to that appearance's own vector when
    `member_scores` has it (else the track's). The sighting's score is the better of the
    pooled vector's match and its best member's: a stored crop used as the example finds
    its own track at ~1.0, where the pooled vector alone would say ~0.86.
    The label shown is the one the detector gave most often (car/truck flips are common).
    """
    ordered = sorted(members, key=lambda a: (a.ts, a.id))
    own = member_scores or {}
    hits = tuple(SearchHit(appearance=a, score=own.get(a.id, score)) for a in ordered)
    counts = Counter(a.label for a in ordered)
    label = max(counts, key=lambda lb: (counts[lb], -min(a.id for a in ordered if a.label == lb)))
    return Sighting(
        camera_id=ordered[0].camera_id,
        label=label,
        first_seen=ordered[0].ts,
        last_seen=ordered[-1].ts,
        best_score=max([score, *(h.score for h in hits)]),
        hits=hits,
        track_id=track_id,
    )


def best_first(sightings: Sequence[Sighting]) -> list[Sighting]:
    """Best match first; equal scores by track id, so a cut at the limit is stable."""
    return sorted(sightings, key=lambda s: (-s.best_score, s.track_id or 0))


def by_time(sightings: Sequence[Sighting]) -> list[Sighting]:
    """What an operator reads: sightings by first_seen (then camera, then best score)."""
    return sorted(sightings, key=lambda s: (s.first_seen, s.camera_id, -s.best_score))


def top_sighting(sightings: Sequence[Sighting]) -> Sighting | None:
    """The sighting an operator looks at first: the best match."""
    return max(sightings, key=lambda s: s.best_score, default=None)
