"""The site's own training set: tracks from the catalog, crops from the blob store."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from surveil.domain import Image, Space
from surveil.ports import BlobStore
from surveil.storage.tune_data import confirmed_matches, track_crops
from surveil.vision.crops import decode_image
from surveil.vision.tune.data import TrainingSet, from_groups

__all__ = ["from_catalog"]


class _Joined:
    """Union-find over track ids: confirmed matches make two tracks one identity."""

    def __init__(self) -> None:
        self._parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        root = self._parent.setdefault(x, x)
        while root != self._parent[root]:
            root = self._parent[root]
        self._parent[x] = root
        return root

    def join(self, x: int, y: int) -> None:
        self._parent[self.find(x)] = self.find(y)


def from_catalog(
    engine: Engine,
    blobs: BlobStore,
    *,
    space: Space = "person",
    since: datetime | None = None,
    per_track: int = 16,
    max_tracks: int = 2000,
) -> TrainingSet:
    """Tracks as identities (joined by confirmed matches); tracks seen together differ."""
    found = track_crops(
        engine, space=space, since=since, per_track=per_track, max_tracks=max_tracks
    )
    joined = _Joined()
    track_of = {aid: t for t, members in found.members.items() for aid, _ in members}
    for a, b in confirmed_matches(engine, space=space):
        if a in track_of and b in track_of:
            joined.join(track_of[a], track_of[b])
    identity: dict[int, int] = {}
    groups: list[list[Image]] = []
    for track, members in sorted(found.members.items()):
        root = joined.find(track)
        if root not in identity:
            identity[root] = len(groups)
            groups.append([])
        groups[identity[root]].extend(
            decode_image(blobs.get(key), what=f"stored crop {key}") for _, key in members
        )
    distinct = {
        (identity[joined.find(x)], identity[joined.find(y)])
        for x, y in found.together
        if joined.find(x) != joined.find(y)
    }
    return from_groups(groups, distinct=distinct, source=f"the catalog's {space} tracks")
