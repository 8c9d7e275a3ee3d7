"""What the catalog knows about who is who, for tuning the embedder on a site's own crops.

- a track's appearances are one person (the tracker followed them frame to frame);
- two tracks with appearances in one keyframe are two people (seen side by side);
- an operator's confirmed match joins two tracks into one identity.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from surveil.domain import Space
from surveil.storage.tables import AppearanceRow

__all__ = ["TrackCrops", "confirmed_matches", "track_crops"]


@dataclass(frozen=True)
class TrackCrops:
    """Crops of the site's tracks, and the pairs of tracks seen together in one keyframe."""

    #: track id -> [(appearance id, crop blob key)], time order, thinned to `per_track`.
    members: dict[int, list[tuple[int, str]]]
    #: (lower track id, higher track id) of tracks that share a keyframe.
    together: set[tuple[int, int]]


def _thin(items: list[tuple[int, str]], keep: int) -> list[tuple[int, str]]:
    """At most `keep` items spread evenly over the list (first and last kept)."""
    if len(items) <= keep:
        return items
    step = (len(items) - 1) / (keep - 1)
    return [items[round(i * step)] for i in range(keep)]


def track_crops(
    engine: Engine,
    *,
    space: Space,
    since: datetime | None = None,
    per_track: int = 16,
    max_tracks: int = 2000,
) -> TrackCrops:
    """Tracked appearances of `space` (since `since`), grouped by track, newest tracks first.

    `max_tracks` and `per_track` bound what a run holds in memory on a large archive.
    """
    a = AppearanceRow
    query = (
        select(a.id, a.track_id, a.keyframe_id, a.crop_path)
        .where(a.space == space, a.track_id.is_not(None))
        .order_by(a.track_id, a.ts, a.id)
    )
    if since is not None:
        query = query.where(a.ts >= since)
    members: dict[int, list[tuple[int, str]]] = defaultdict(list)
    in_keyframe: dict[int, set[int]] = defaultdict(set)
    with engine.connect() as conn:
        for appearance_id, track_id, keyframe_id, crop_path in conn.execute(query):
            if track_id is None:  # excluded by the query; said again for the type checker
                continue
            members[int(track_id)].append((int(appearance_id), str(crop_path)))
            in_keyframe[int(keyframe_id)].add(int(track_id))
    kept = set(sorted(members)[-max_tracks:])  # ids grow with time: the newest tracks
    together = {
        (x, y)
        for tracks in in_keyframe.values()
        for x in tracks & kept
        for y in tracks & kept
        if x < y
    }
    return TrackCrops({t: _thin(members[t], per_track) for t in sorted(kept)}, together)


def confirmed_matches(engine: Engine) -> list[tuple[int, int]]:
    """Appearance-id pairs an operator confirmed as one person (operator feedback).

    HOOK for the operator-feedback table (issue 13, item 2): until it exists there are
    none, and tuning learns from tracks alone. At merge, select (query appearance,
    confirmed hit appearance) pairs of the person space from the feedback table here.
    """
    del engine
    return []
