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
) -> Folded:
    """Turn hits into alerts: one per sighting per camera, none within the cooldown.

    A hit joins the camera's latest alert when it is within `gap_s` of that alert's
    hits (the same sighting) or within `cooldown_s` of the alert's first hit (too soon
    to alert again); otherwise it opens a new alert. Times are capture times, so the
    outcome does not depend on when or how often the rule runs.
    """
    latest = dict(open_alerts)
    out = Folded()
    gap, cooldown = timedelta(seconds=gap_s), timedelta(seconds=cooldown_s)
    for hit in hits:
        c = hit.candidate
        current = latest.get(c.camera_id)
        if current is not None and _joins(current, c, gap, cooldown):
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
        )
        out.new.append(draft)
        latest[c.camera_id] = draft
    return out


def _joins(alert: AlertDraft, c: Candidate, gap: timedelta, cooldown: timedelta) -> bool:
    within_sighting = alert.ts - gap <= c.ts <= alert.last_ts + gap
    within_cooldown = abs(c.ts - alert.ts) < cooldown
    return within_sighting or within_cooldown


def _extend(alert: AlertDraft, hit: Hit) -> None:
    c = hit.candidate
    alert.hits += 1
    alert.ts = min(alert.ts, c.ts)
    alert.last_ts = max(alert.last_ts, c.ts)
    if hit.score > alert.score:
        alert.score, alert.appearance_id, alert.label = hit.score, c.id, c.label
