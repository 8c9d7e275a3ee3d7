"""One camera's tracker: associate each keyframe's detections with its open tracks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from surveil.config.tracking import TrackingSettings
from surveil.domain import label_group
from surveil.tracking.boxes import box_iou
from surveil.tracking.state import Member, TrackState, still_open

#: Cost of a pair the gates refuse; anything at or above it is never assigned.
REFUSED = 1e6


def _centres_heights(boxes: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.float64], ...]:
    boxes64 = boxes.astype(np.float64)
    cx = (boxes64[:, 0] + boxes64[:, 2]) / 2
    cy = (boxes64[:, 1] + boxes64[:, 3]) / 2
    h = np.maximum(boxes64[:, 3] - boxes64[:, 1], 1.0)
    return cx, cy, h


class CameraTracker:
    """Open tracks of one camera; `step` once per keyframe, in capture order."""

    def __init__(
        self, settings: TrackingSettings, label_groups: Mapping[str, Sequence[str]]
    ) -> None:
        self._s = settings
        self._groups = label_groups
        self._open: dict[str, TrackState] = {}

    def step(
        self,
        ts: datetime,
        members: Sequence[Member],
        keys: Sequence[str],
        continues: Sequence[str | None] | None = None,
    ) -> list[str]:
        """Associate one keyframe's detections; returns the track key each one joined.

        A detection starting a track gets its own entry of `keys`. A detection whose
        `continues` entry names an open track (`ReusePlanner`) joins that track as is;
        the others are assigned among the remaining tracks. Tracks unseen for longer than
        max_age, or last seen on an earlier UTC day, are closed first (a track never spans
        two days: its index shard is its day).
        """
        if len(members) != len(keys):
            raise ValueError(f"{len(members)} members but {len(keys)} keys")
        fixed = {i: k for i, k in enumerate(continues or ()) if k is not None}
        self._close_stale(ts)
        if missing := sorted(set(fixed.values()) - set(self._open)):
            raise ValueError(f"continued track(s) {missing} are not open at {ts.isoformat()}")
        groups = [label_group(m.label, self._groups) for m in members]
        joined = [fixed.get(i, key) for i, key in enumerate(keys)]
        # One assignment per label group: a person never joins a car's track, and the
        # groups' embeddings may come from different spaces (different dimensions).
        for group in dict.fromkeys(groups):
            rows = [i for i, g in enumerate(groups) if g == group and i not in fixed]
            tracks = [
                t for t in self._open.values() if t.group == group and t.key not in fixed.values()
            ]
            if rows and tracks:
                self._associate(ts, [members[i] for i in rows], tracks, rows, joined)
        for member, group, key, own in zip(members, groups, joined, keys, strict=True):
            if key == own:
                self._open[key] = TrackState.start(key, group, member)
            else:
                self._open[key].add(member)
        return joined

    def _associate(
        self,
        ts: datetime,
        members: Sequence[Member],
        tracks: Sequence[TrackState],
        rows: Sequence[int],
        joined: list[str],
    ) -> None:
        """Solve one group's assignment; write each matched detection's track key."""
        cost = self._cost(ts, members, tracks)
        for i, j in zip(*linear_sum_assignment(cost), strict=True):
            if cost[i, j] < REFUSED:
                joined[rows[i]] = tracks[j].key

    def _cost(
        self, ts: datetime, members: Sequence[Member], tracks: Sequence[TrackState]
    ) -> npt.NDArray[np.float64]:
        """Blend of appearance distance and motion overlap; refused pairs cost REFUSED.

        Every member and track here is of one label group (see `step`).
        """
        s = self._s
        det = np.array([m.bbox for m in members], np.float32)
        pred = np.array([t.predicted(ts) for t in tracks], np.float32)
        iou = box_iou(det, pred).astype(np.float64)
        emb = np.stack([m.embedding for m in members]).astype(np.float64)
        pooled = np.stack([t.pooled() for t in tracks]).astype(np.float64)
        last = np.stack([t.last_embedding for t in tracks]).astype(np.float64)
        cos = np.maximum(emb @ pooled.T, emb @ last.T)
        dt = np.array([(ts - t.last_ts).total_seconds() for t in tracks], np.float64)
        # Motion: centre distance in box heights against a gate that widens with dt.
        dcx, dcy, dh = _centres_heights(det)
        pcx, pcy, ph = _centres_heights(pred)
        height = np.maximum(dh[:, None], ph[None, :])
        dist = np.hypot(dcx[:, None] - pcx[None, :], dcy[:, None] - pcy[None, :]) / height
        gate = s.gate_heights + s.gate_heights_per_second * dt[None, :]
        ratio = dh[:, None] / ph[None, :]
        alpha = s.motion_weight * np.exp(-dt / s.motion_decay_seconds)[None, :]
        cost = (1 - alpha) * (1 - cos) + alpha * (1 - iou)
        floor = s.min_cosine_person if tracks[0].group == "person" else s.min_cosine_other
        looks_alike = (cos >= floor) | ((iou >= 0.5) & (cos >= s.overlap_min_cosine))
        ok = looks_alike & (dist <= gate) & (ratio > 0.5) & (ratio < 2.0)
        return np.where(ok, cost, REFUSED)

    def _close_stale(self, now: datetime) -> None:
        """Close tracks unseen for more than max_age or last seen on an earlier UTC day."""
        limit = self._s.max_age_seconds
        for key in [k for k, t in self._open.items() if not still_open(t.last_ts, now, limit)]:
            del self._open[key]

    def open_keys(self) -> set[str]:
        """The keys of the open tracks."""
        return set(self._open)

    def open_tracks(self) -> list[TrackState]:
        """The open tracks, oldest first."""
        return list(self._open.values())

    def restore(self, states: Sequence[TrackState]) -> None:
        """Take back tracks an earlier run left open (resume, restart)."""
        for state in sorted(states, key=lambda s: (s.first_ts, s.key)):
            self._open[state.key] = state

    def close_all(self) -> list[str]:
        """Close every open track (a recorded source ended); their keys."""
        keys = list(self._open)
        self._open.clear()
        return keys
