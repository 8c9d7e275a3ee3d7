"""The path across cameras: a search's matching tracks as a time-ordered chain of legs.

An operator following someone reads "lobby 08:01:14-08:01:26 -> entrance 08:01:40-08:01:52"
faster than a table of sightings. Consecutive tracks on one camera (a tracker split, or
someone lingering out of view and back) make one leg; every change of camera is a hop
with the time between. One object cannot be in two places at once, so a track that
overlaps in time with a matched track on another camera is flagged: at least one of the
two is somebody else (or the cameras see the same spot, which the operator knows).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any

from surveil.domain import Sighting


@dataclass(frozen=True, slots=True)
class Leg:
    """One camera's stretch of the path: one or more consecutive tracks there."""

    camera_id: str
    first_seen: datetime
    last_seen: datetime
    track_ids: tuple[int, ...]
    best_score: float
    #: Matched tracks on other cameras seen at the same time as this leg's tracks.
    overlaps: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Hop:
    """From one leg to the next: the cameras and the seconds between (< 0: overlap)."""

    from_camera: str
    to_camera: str
    seconds: float


@dataclass(frozen=True, slots=True)
class CameraPath:
    """Legs in time order and the hops between them (hops[i] joins legs[i] and legs[i+1])."""

    legs: tuple[Leg, ...]
    hops: tuple[Hop, ...]

    @property
    def overlapping(self) -> int:
        """How many legs overlap a leg on another camera (0 for a plausible path)."""
        return sum(1 for leg in self.legs if leg.overlaps)


def _track(s: Sighting) -> int:
    return s.track_id if s.track_id is not None else -1


def overlaps(sightings: Sequence[Sighting]) -> dict[int, tuple[int, ...]]:
    """For each track, the tracks on other cameras whose time spans intersect its own."""
    ordered = sorted(sightings, key=lambda s: (s.first_seen, _track(s)))
    found: dict[int, set[int]] = {}
    active: list[Sighting] = []
    for s in ordered:
        active = [a for a in active if a.last_seen >= s.first_seen]
        for a in active:
            if a.camera_id != s.camera_id:
                found.setdefault(_track(a), set()).add(_track(s))
                found.setdefault(_track(s), set()).add(_track(a))
        active.append(s)
    return {t: tuple(sorted(others)) for t, others in found.items()}


def camera_path(sightings: Sequence[Sighting]) -> CameraPath:
    """The chain of legs through the cameras, by each track's first_seen."""
    ordered = sorted(sightings, key=lambda s: (s.first_seen, s.camera_id, _track(s)))
    clash = overlaps(ordered)
    groups: list[list[Sighting]] = []
    for s in ordered:
        if groups and groups[-1][-1].camera_id == s.camera_id:
            groups[-1].append(s)
        else:
            groups.append([s])
    legs = tuple(_leg(group, clash) for group in groups)
    hops = tuple(
        Hop(a.camera_id, b.camera_id, (b.first_seen - a.last_seen).total_seconds())
        for a, b in pairwise(legs)
    )
    return CameraPath(legs=legs, hops=hops)


def _leg(group: Sequence[Sighting], clash: dict[int, tuple[int, ...]]) -> Leg:
    tracks = tuple(_track(s) for s in group)
    return Leg(
        camera_id=group[0].camera_id,
        first_seen=min(s.first_seen for s in group),
        last_seen=max(s.last_seen for s in group),
        track_ids=tracks,
        best_score=max(s.best_score for s in group),
        overlaps=tuple(sorted({o for t in tracks for o in clash.get(t, ())})),
    )


def path_to_dict(path: CameraPath, iso: Any) -> dict[str, Any]:
    """The path as the documented JSON object (`iso` formats times like the sightings)."""
    return {
        "legs": [
            {
                "camera_id": leg.camera_id,
                "first_seen": iso(leg.first_seen),
                "last_seen": iso(leg.last_seen),
                "track_ids": list(leg.track_ids),
                "best_score": round(leg.best_score, 4),
                "overlaps": list(leg.overlaps),
            }
            for leg in path.legs
        ],
        "hops": [
            {"from_camera": h.from_camera, "to_camera": h.to_camera, "seconds": round(h.seconds, 3)}
            for h in path.hops
        ],
        "overlapping": path.overlapping,
    }


def _clock(ts: datetime, with_date: bool) -> str:
    return ts.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")


def _between(seconds: float) -> str:
    if seconds < 0:
        return f"overlaps {-seconds:.0f} s"
    if seconds < 120:
        return f"+{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 120:
        return f"+{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"+{hours} h {minutes:02d} min"


def path_text(path: CameraPath) -> str:
    """One line per leg, the hop before it, and a flag on legs that overlap another camera.

    Times are UTC, like the sightings table; the date is shown on the first leg and
    wherever the day changes.
    """
    if not path.legs:
        return "path: no sightings"
    cameras = len({leg.camera_id for leg in path.legs})
    lines = [f"path across {cameras} camera(s), {len(path.legs)} leg(s), times UTC:"]
    day = None
    for n, leg in enumerate(path.legs):
        if n:
            lines.append(f"      -> {_between(path.hops[n - 1].seconds)}")
        new_day = leg.first_seen.date() != day
        day = leg.last_seen.date()
        span = f"{_clock(leg.first_seen, new_day)}-{_clock(leg.last_seen, False)}"
        tracks = ", ".join(str(t) for t in leg.track_ids)
        line = f"  {leg.camera_id:<14} {span}  score {leg.best_score:.3f}  track {tracks}"
        if leg.overlaps:
            shown = ", ".join(str(t) for t in leg.overlaps)
            line += f"  ! at the same time as track {shown} on another camera"
        lines.append(line)
    if path.overlapping:
        lines.append(
            f"warning: {path.overlapping} leg(s) overlap in time with another camera's: "
            "one object cannot be in two views at once, so one of each pair is someone else "
            "(raise --min-score, or check whether those cameras see the same spot)"
        )
    return "\n".join(lines)
