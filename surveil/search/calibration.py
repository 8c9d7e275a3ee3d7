"""Thresholds from feedback: a rule's threshold and a space's default min_score.

Every labelled hit is scored again against the query the way the threshold is applied
(a rule: best example similarity of the hit's appearances; a search: pooled or best
member), so the curve also covers hits below the current threshold, and a changed
threshold is applied only when asked (audited).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from surveil.alerts.calibrate import Labelled, Proposal, propose
from surveil.alerts.model import Rule, RuleSpec
from surveil.config import FeedbackSettings
from surveil.domain import Feedback, InputError, NewAuditEntry, Space
from surveil.ports import AccessStore, FeedbackStore
from surveil.search.audited import Actor
from surveil.search.feedback import FeedbackService


class RuleBook(Protocol):
    """The rules calibration reads and changes."""

    def get_rule(self, rule_id: int) -> Rule: ...

    def update(self, rule_id: int, spec: RuleSpec) -> Rule: ...


@dataclass(frozen=True, slots=True)
class Calibration:
    """What calibration found for one rule or space, and whether it was applied."""

    subject: str  # "rule:3" or "space:person"
    current: float
    proposal: Proposal
    applied: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape the CLI (--json) and the API return."""
        p = self.proposal
        return {
            "subject": self.subject,
            "current": round(self.current, 4),
            "precision_target": p.precision_target,
            "threshold": None if p.threshold is None else threshold_of(p.threshold),
            "precision": p.precision,
            "recall": p.recall,
            "enough_labels": p.enough,
            "needed": {"confirmed": p.needed_confirmed, "rejected": p.needed_rejected},
            "caught": [_hit(x) for x in p.caught],
            "missed": [_hit(x) for x in p.missed],
            "false_alarms": [_hit(x) for x in p.false_alarms],
            "curve": [
                {
                    "threshold": round(c.threshold, 4),
                    "precision": round(c.precision, 4),
                    "recall": round(c.recall, 4),
                    "caught": c.caught,
                    "false_alarms": c.false_alarms,
                }
                for c in p.curve
            ],
            "applied": self.applied,
        }


def threshold_of(score: float) -> float:
    """A proposed threshold as stored: rounded down to 4 places, so it still catches `score`."""
    return math.floor(score * 10_000) / 10_000


def _hit(x: Labelled) -> dict[str, Any]:
    return {"hit": x.ref, "score": round(x.score, 4), "confirmed": x.confirmed}


def _ref(f: Feedback) -> str:
    return f"{f.target.query_key} {f.target.hit_key}"


class Calibrator:
    """Proposes (and on request applies) thresholds measured on operators' verdicts."""

    def __init__(
        self,
        *,
        feedback: FeedbackService,
        store: FeedbackStore,
        rules: RuleBook,
        access: AccessStore,
        settings: FeedbackSettings,
        default_floor: Callable[[Space], float],
    ) -> None:
        self._feedback = feedback
        self._store = store
        self._rules = rules
        self._access = access
        self._settings = settings
        self._default_floor = default_floor

    def _propose(self, labelled: list[Labelled], precision: float | None) -> Proposal:
        if precision is not None and not 0.0 < precision <= 1.0:
            raise InputError(f"precision {precision} must be above 0 and at most 1")
        return propose(
            labelled,
            precision=self._settings.precision if precision is None else precision,
            min_confirmed=self._settings.min_confirmed,
            min_rejected=self._settings.min_rejected,
        )

    def rule(
        self, actor: Actor, rule_id: int, *, precision: float | None = None, apply: bool = False
    ) -> Calibration:
        """The rule's lowest threshold reaching the precision on its labelled hits."""
        rule = self._rules.get_rule(rule_id)
        given = self._store.for_rule(rule_id)
        query = self._feedback.query(given[0].target) if given else None
        labelled = [
            Labelled(self._feedback.score(query, f.target), f.verdict == "confirmed", _ref(f))
            for f in given
            if query is not None
        ]
        found = Calibration(
            f"rule:{rule_id}", rule.spec.threshold, self._propose(labelled, precision)
        )
        if apply and found.proposal.threshold is not None:
            new = threshold_of(found.proposal.threshold)
            self._rules.update(rule_id, replace(rule.spec, threshold=new))
            self._audit(actor, "rule_calibrate", found, rule_id=rule_id)
            found = replace(found, applied=True)
        return found

    def space(
        self, actor: Actor, space: Space, *, precision: float | None = None, apply: bool = False
    ) -> Calibration:
        """The space's lowest min_score reaching the precision on every verdict in it."""
        labelled = [
            Labelled(f.score, f.verdict == "confirmed", _ref(f))
            for f in self._store.for_space(space)
            if f.score is not None
        ]
        current = self._default_floor(space)
        found = Calibration(f"space:{space}", current, self._propose(labelled, precision))
        p = found.proposal
        if apply and p.threshold is not None and p.precision is not None:
            self._store.set_floor(
                space,
                min_score=threshold_of(p.threshold),
                precision=p.precision,
                labels=len(labelled),
                by=actor.name,
            )
            self._audit(actor, "floor_calibrate", found)
            found = replace(found, applied=True)
        return found

    def _audit(
        self, actor: Actor, action: str, found: Calibration, *, rule_id: int | None = None
    ) -> None:
        p = found.proposal
        assert p.threshold is not None
        self._access.record(
            NewAuditEntry(
                action=action,
                key_id=actor.key_id,
                key_name=actor.name,
                role=actor.role,
                status="ok",
                filters={
                    "subject": found.subject,
                    "rule_id": rule_id,
                    "from": round(found.current, 4),
                    "to": threshold_of(p.threshold),
                    "precision_target": p.precision_target,
                    "precision": p.precision,
                    "recall": p.recall,
                    "labels": p.curve[-1].caught + p.curve[-1].false_alarms if p.curve else 0,
                },
                client=actor.client,
            )
        )
