"""Turning scored hits into sightings: pure functions over domain data."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from surveil.domain import SearchHit, Sighting


def label_group(label: str, groups: Mapping[str, Sequence[str]]) -> str:
    """The group a label belongs to; a label in no group is its own group.

    Detectors flip between 'car' and 'truck' on the same vehicle, so sightings are
    formed per group rather than per raw label.
    """
    for name, labels in groups.items():
        if label in labels:
            return name
    return label


def best_per_keyframe(
    hits: Iterable[SearchHit], groups: Mapping[str, Sequence[str]]
) -> list[SearchHit]:
    """Keep the best-scoring hit per (keyframe, label group).

    One object is in one place at a time, so two hits of one group in the same
    keyframe cannot both be the object searched for.
    """
    best: dict[tuple[int, str], SearchHit] = {}
    for hit in hits:
        app = hit.appearance
        key = (app.keyframe_id, label_group(app.label, groups))
        if key not in best or (hit.score, -app.id) > (best[key].score, -best[key].appearance.id):
            best[key] = hit
    # Ties are common (a static object reuses one embedding): break them by id, stably.
    return sorted(best.values(), key=lambda h: (-h.score, h.appearance.id))


def _sighting(hits: list[SearchHit]) -> Sighting:
    top = max(hits, key=lambda h: h.score)
    return Sighting(
        camera_id=top.appearance.camera_id,
        label=top.appearance.label,
        first_seen=hits[0].appearance.ts,
        last_seen=hits[-1].appearance.ts,
        best_score=top.score,
        hits=tuple(hits),
    )


def group_sightings(
    hits: Iterable[SearchHit], *, gap_seconds: float, groups: Mapping[str, Sequence[str]]
) -> list[Sighting]:
    """Split hits into sightings (same camera and label group, gaps under gap_seconds).

    Sightings come back ordered by first_seen, appearances within one by time.
    """

    def key(h: SearchHit) -> tuple[str, str, float, int]:
        app = h.appearance
        return (app.camera_id, label_group(app.label, groups), app.ts.timestamp(), app.id)

    sightings: list[Sighting] = []
    current: list[SearchHit] = []
    for hit in sorted(hits, key=key):
        if current:
            prev = current[-1].appearance
            app = hit.appearance
            same_track = (
                app.camera_id == prev.camera_id
                and label_group(app.label, groups) == label_group(prev.label, groups)
                and (app.ts - prev.ts).total_seconds() <= gap_seconds
            )
            if not same_track:
                sightings.append(_sighting(current))
                current = []
        current.append(hit)
    if current:
        sightings.append(_sighting(current))
    sightings.sort(key=lambda s: (s.first_seen, s.camera_id, -s.best_score))
    return sightings


def top_sighting(sightings: Sequence[Sighting]) -> Sighting | None:
    """The sighting an operator looks at first: the best match."""
    return max(sightings, key=lambda s: s.best_score, default=None)
