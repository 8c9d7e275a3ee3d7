"""Request and response models of operator feedback and calibration."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from surveil.api.schemas import Integer, TimeOut, _Input, _Model


class FeedbackIn(_Input):
    verdict: Literal["confirmed", "rejected"] = Field(description="Whether the hit is the query's.")
    track_id: Integer | None = Field(
        None, ge=1, le=2**63 - 1, description="The sighting (track) marked."
    )
    appearance_id: Integer | None = Field(
        None, ge=1, le=2**63 - 1, description="Or one appearance marked."
    )


class AlertFeedbackIn(_Input):
    verdict: Literal["confirmed", "rejected"] = Field(description="Whether the alert was right.")


class FeedbackOut(_Model):
    id: int
    ts: TimeOut
    by: str = Field(description="Name of the key that gave the verdict.")
    audit_id: int | None = Field(description="The search it is for (its audit entry).")
    rule_id: int | None = Field(description="Or the alert rule it is for.")
    alert_id: int | None
    track_id: int | None
    appearance_id: int | None
    space: str
    verdict: str
    score: float | None = Field(description="The hit's score for the query, when marked.")


class FeedbackList(_Model):
    feedback: list[FeedbackOut]


class CalibrationIn(_Input):
    precision: float | None = Field(
        None, gt=0.0, le=1.0, description="Precision to reach (default feedback.precision)."
    )


class LabelledHit(_Model):
    hit: str = Field(description="Query and hit, e.g. 'rule:3 track:17'.")
    score: float
    confirmed: bool


class CurvePointOut(_Model):
    threshold: float
    precision: float
    recall: float
    caught: int
    false_alarms: int


class Needed(_Model):
    confirmed: int
    rejected: int


class CalibrationOut(_Model):
    subject: str = Field(description="'rule:<id>' or 'space:<space>'.")
    current: float = Field(description="The threshold (or min_score) in force now.")
    precision_target: float
    threshold: float | None = Field(description="Proposed; null with too few labels or none.")
    precision: float | None
    recall: float | None
    enough_labels: bool
    needed: Needed = Field(description="More labels it takes before a threshold is proposed.")
    caught: list[LabelledHit]
    missed: list[LabelledHit]
    false_alarms: list[LabelledHit]
    curve: list[CurvePointOut]
    applied: bool
