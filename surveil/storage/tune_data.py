"""What the catalog knows about who is who, for tuning the embedder on a site's own crops.

- a track's appearances are one person (the tracker followed them frame to frame);
- two tracks with appearances in one keyframe are two people (seen side by side);
- an operator's confirmed hits of one query join their tracks into one identity.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, func, select

from surveil.domain import Space
from surveil.storage.tables import AppearanceRow, AuditRow, FeedbackRow

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


def _one_member(conn: Connection, track_ids: set[int]) -> dict[int, int]:
    """One appearance id per track (its first), standing for the track in a match."""
    if not track_ids:
        return {}
    a = AppearanceRow
    query = (
        select(a.track_id, func.min(a.id))
        .where(a.track_id.in_(sorted(track_ids)))
        .group_by(a.track_id)
    )
    return {int(t): int(aid) for t, aid in conn.execute(query) if t is not None}


def confirmed_matches(engine: Engine, *, space: Space = "person") -> list[tuple[int, int]]:
    """Appearance-id pairs an operator confirmed as one object (operator feedback).

    Every hit confirmed for one query (a search or an alert rule) is the query's object,
    so the confirmed hits of a query are one identity, and so is the stored appearance or
    track a search was made from. Each group is returned as pairs chained to its first.
    """
    f, audit = FeedbackRow, AuditRow
    query = (
        select(f.query_key, f.track_id, f.appearance_id, audit.track_id, audit.appearance_id)
        .outerjoin(audit, audit.id == f.audit_id)
        .where(f.space == space, f.verdict == "confirmed")
        .order_by(f.query_key, f.id)
    )
    groups: dict[str, list[tuple[str, int]]] = defaultdict(list)
    with engine.connect() as conn:
        for key, hit_track, hit_app, asked_track, asked_app in conn.execute(query):
            group = groups[str(key)]
            if not group and asked_app is not None:
                group.append(("appearance", int(asked_app)))
            elif not group and asked_track is not None:
                group.append(("track", int(asked_track)))
            if hit_app is not None:
                group.append(("appearance", int(hit_app)))
            elif hit_track is not None:
                group.append(("track", int(hit_track)))
        tracks = {i for g in groups.values() for kind, i in g if kind == "track"}
        member = _one_member(conn, tracks)
    pairs: list[tuple[int, int]] = []
    for group in groups.values():
        ids = [i if kind == "appearance" else member.get(i) for kind, i in group]
        known = [i for i in ids if i is not None]
        pairs.extend((known[0], other) for other in known[1:])
    return pairs
