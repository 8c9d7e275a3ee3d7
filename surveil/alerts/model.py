"""Alert rules and alerts as plain data; JSON shapes shared by the CLI and the API."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from surveil.domain import InputError, Space
from surveil.search.render import iso

#: Bounds that keep a rule from hammering the catalog or never firing.
MIN_INTERVAL_S = 1
MAX_INTERVAL_S = 7 * 24 * 3600


@dataclass(frozen=True)
class RuleSpec:
    """What an operator asks for; validated before anything is stored."""

    name: str
    threshold: float
    cameras: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    interval_s: int = 60
    cooldown_s: int = 300
    gap_s: float = 10.0
    webhooks: tuple[str, ...] = ()
    secret: str | None = None
    enabled: bool = True

    def __post_init__(self) -> None:
        if not self.name.strip() or len(self.name) > 200:
            raise InputError("rule name must be 1-200 characters")
        if not -1.0 <= self.threshold <= 1.0:
            raise InputError(f"threshold {self.threshold} must be a cosine similarity in -1..1")
        if not MIN_INTERVAL_S <= self.interval_s <= MAX_INTERVAL_S:
            raise InputError(f"interval must be {MIN_INTERVAL_S}..{MAX_INTERVAL_S} seconds")
        if self.cooldown_s < 0 or self.gap_s < 0:
            raise InputError("cooldown and gap must not be negative")
        for url in self.webhooks:
            if not url.startswith(("http://", "https://")) or len(url) > 2000:
                raise InputError(f"webhook {url!r} must be an http:// or https:// URL")


@dataclass(frozen=True)
class RuleExample:
    """One example crop of a rule (its stored copy and hash; the vector stays in the catalog)."""

    id: int
    sha256: str
    crop_path: str


@dataclass(frozen=True)
class Rule:
    """A stored rule with its evaluation watermark."""

    id: int
    spec: RuleSpec
    space: Space
    watermark: int
    created_at: datetime
    updated_at: datetime
    created_by: str
    examples: tuple[RuleExample, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The rule's JSON object; the webhook secret is never shown, only whether one is set."""
        s = self.spec
        return {
            "id": self.id,
            "name": s.name,
            "space": self.space,
            "threshold": s.threshold,
            "cameras": list(s.cameras),
            "labels": list(s.labels),
            "interval": s.interval_s,
            "cooldown": s.cooldown_s,
            "gap": s.gap_s,
            "enabled": s.enabled,
            "webhooks": list(s.webhooks),
            "has_secret": s.secret is not None,
            "watermark": self.watermark,
            "examples": [
                {
                    "id": e.id,
                    "sha256": e.sha256,
                    "crop_url": f"/api/v1/rules/{self.id}/examples/{e.id}.jpg",
                }
                for e in self.examples
            ],
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "created_by": self.created_by,
        }


@dataclass(frozen=True)
class Candidate:
    """A stored appearance a rule has not seen yet (its vector travels alongside)."""

    id: int
    camera_id: str
    label: str
    ts: datetime
    track_id: int | None = None


@dataclass(frozen=True)
class Hit:
    """A candidate whose best score over the rule's examples reached the threshold."""

    candidate: Candidate
    score: float


@dataclass
class AlertDraft:
    """An alert being built or extended by one evaluation; `id` is None until stored."""

    camera_id: str
    label: str
    appearance_id: int
    score: float
    ts: datetime
    last_ts: datetime
    hits: int = 1
    id: int | None = None
    changed: bool = field(default=False, compare=False)
    #: The track alerted on: its later hits extend this alert instead of raising another.
    track_id: int | None = None


@dataclass(frozen=True)
class Alert:
    """A stored alert."""

    id: int
    rule_id: int
    rule_name: str
    appearance_id: int
    camera_id: str
    label: str
    score: float
    ts: datetime
    last_ts: datetime
    hits: int
    created_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None

    def to_dict(self) -> dict[str, Any]:
        """The documented alert object (`surveil alerts list --json`, `/api/v1/alerts`)."""
        return {
            "id": self.id,
            "rule_id": self.rule_id,
            "rule_name": self.rule_name,
            "appearance_id": self.appearance_id,
            "camera_id": self.camera_id,
            "label": self.label,
            "score": round(self.score, 4),
            "ts": iso(self.ts),
            "last_ts": iso(self.last_ts),
            "hits": self.hits,
            "created_at": iso(self.created_at),
            "acknowledged": self.acknowledged_at is not None,
            "acknowledged_at": iso(self.acknowledged_at) if self.acknowledged_at else None,
            "acknowledged_by": self.acknowledged_by,
            "crop_url": f"/api/v1/appearances/{self.appearance_id}/crop.jpg",
        }
