"""Rule evaluation as pure functions: score new appearances, fold hits into alerts.

No database, no clock: the job feeds candidates and the rule's open alerts in and stores
what comes out, in one transaction with the watermark.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np

from surveil.alerts.model import AlertDraft, Candidate, Hit
from surveil.domain import Vectors


def best_scores(examples: Vectors, vectors: Vectors) -> np.ndarray:
    """Cosine similarity of each vector to its closest example (rows are L2-normalised)."""
    if len(vectors) == 0:
        return np.zeros(0, np.float32)
    if len(examples) == 0:
        raise ValueError("a rule needs at least one example")
    sims = np.asarray(vectors @ examples.T, dtype=np.float32)
    return np.asarray(sims.max(axis=1), dtype=np.float32)


def hits_over(candidates: Sequence[Candidate], scores: np.ndarray, threshold: float) -> list[Hit]:
    """The candidates that reach the threshold, in capture-time order."""
    hits = [Hit(c, float(s)) for c, s in zip(candidates, scores, strict=True) if s >= threshold]
    return sorted(hits, key=lambda h: (h.candidate.ts, h.candidate.id))


@dataclass
class Folded:
    """What one evaluation does to alerts: drafts to insert and stored ones to extend."""

    new: list[AlertDraft] = field(default_factory=list)
    extended: list[AlertDraft] = field(default_factory=list)


def fold_hits(
    hits: Iterable[Hit],
    open_alerts: Mapping[str, AlertDraft],
    *,
    gap_s: float,
    cooldown_s: float,
    track_alerts: Mapping[int, AlertDraft] | None = None,
) -> Folded:
    """Turn hits into alerts: one per track, and none within the cooldown on a camera.

    A hit of a track that already has an alert extends that alert (a person standing in
    view for a minute is one alert, not one per keyframe). A hit of another track joins
    the camera's latest alert when within `cooldown_s` of its first hit (too soon to
    alert again); otherwise it opens a new alert. A hit with no track (none in catalogs
    since tracks) falls back to joining within `gap_s`. Times are capture times, so the
    outcome does not depend on when or how often the rule runs.
    """
    latest = dict(open_alerts)
    by_track = dict(track_alerts or {})
    out = Folded()
    gap, cooldown = timedelta(seconds=gap_s), timedelta(seconds=cooldown_s)
    for hit in hits:
        c = hit.candidate
        current = by_track.get(c.track_id) if c.track_id is not None else None
        if current is None:
            current = latest.get(c.camera_id)
            if current is not None and not _joins(current, c, gap, cooldown):
                current = None
        if current is not None:
            _extend(current, hit)
            if current.id is not None and not current.changed:
                current.changed = True
                out.extended.append(current)
            continue
        draft = AlertDraft(
            camera_id=c.camera_id,
            label=c.label,
            appearance_id=c.id,
            score=hit.score,
            ts=c.ts,
            last_ts=c.ts,
            track_id=c.track_id,
        )
        out.new.append(draft)
        latest[c.camera_id] = draft
        if c.track_id is not None:
            by_track[c.track_id] = draft
    return out


def _joins(alert: AlertDraft, c: Candidate, gap: timedelta, cooldown: timedelta) -> bool:
    """Another track (or an untracked hit) joins the camera's latest alert only in cooldown."""
    within_cooldown = abs(c.ts - alert.ts) < cooldown
    if c.track_id is not None and alert.track_id is not None:
        return within_cooldown
    within_sighting = alert.ts - gap <= c.ts <= alert.last_ts + gap
    return within_sighting or within_cooldown


def _extend(alert: AlertDraft, hit: Hit) -> None:
    c = hit.candidate
    alert.hits += 1
    alert.ts = min(alert.ts, c.ts)
    alert.last_ts = max(alert.last_ts, c.ts)
    if hit.score > alert.score:
        alert.score, alert.appearance_id, alert.label = hit.score, c.id, c.label
