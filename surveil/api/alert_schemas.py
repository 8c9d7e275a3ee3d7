"""Request and response models of the rules and alerts API."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from surveil.api.schemas import NO_NUL, Integer, TimeOut, Timestamp, _Input, _Model

Text = Annotated[str, Field(pattern=NO_NUL)]


class RuleExampleOut(_Model):
    id: int
    sha256: str
    crop_url: str


class RuleOut(_Model):
    id: int
    name: str
    space: str = Field(description="Embedding space: person or general.")
    threshold: float
    cameras: list[str] = Field(description="Empty: every camera.")
    labels: list[str] = Field(description="Empty: every label of the space.")
    interval: int = Field(description="Seconds between evaluations.")
    cooldown: int = Field(description="No second alert per camera this soon (seconds).")
    gap: float = Field(description="Hits this close in time are one sighting (seconds).")
    enabled: bool
    webhooks: list[str]
    has_secret: bool = Field(description="Whether webhooks are HMAC-signed; never the secret.")
    watermark: int = Field(description="Highest appearance id already evaluated.")
    examples: list[RuleExampleOut]
    created_at: TimeOut
    updated_at: TimeOut
    created_by: str


class RuleList(_Model):
    rules: list[RuleOut]


class RuleUpdate(_Input):
    name: str | None = Field(None, min_length=1, max_length=200, pattern=NO_NUL)
    threshold: float | None = Field(None, ge=-1.0, le=1.0)
    cameras: list[Text] | None = Field(None, max_length=64)
    labels: list[Text] | None = Field(None, max_length=64)
    interval: Integer | None = Field(None, ge=1, le=604800)
    cooldown: Integer | None = Field(None, ge=0, le=604800)
    gap: float | None = Field(None, ge=0.0, le=86400.0)
    webhooks: list[Text] | None = Field(None, max_length=16)
    secret: str | None = Field(None, min_length=16, max_length=200, pattern=NO_NUL)
    enabled: bool | None = None


class RuleDeleted(_Model):
    id: int
    name: str
    deleted: bool


class RuleTest(_Input):
    since: Timestamp = Field(description="Evaluate appearances from this time (RFC 3339).")


class TestAlert(_Model):
    appearance_id: int
    camera_id: str
    label: str
    score: float
    ts: TimeOut
    last_ts: TimeOut
    hits: int


class RuleTestReport(_Model):
    rule_id: int
    scanned: int
    hits: int
    new_alerts: int
    extended: int
    watermark: int
    top_scores: list[float] = Field(description="The best scores seen, to tune the threshold.")
    alerts: list[TestAlert] = Field(description="What the rule would have raised.")


class AlertOut(_Model):
    id: int
    rule_id: int
    rule_name: str
    appearance_id: int
    camera_id: str
    label: str
    score: float
    ts: TimeOut = Field(description="First hit (capture time).")
    last_ts: TimeOut = Field(description="Latest hit folded into this alert.")
    hits: int
    created_at: TimeOut
    acknowledged: bool
    acknowledged_at: TimeOut | None
    acknowledged_by: str | None
    crop_url: str


class AlertList(_Model):
    alerts: list[AlertOut]


class Attempt(_Model):
    ts: TimeOut
    status: int | None
    error: str | None
    seconds: float


class DeliveryOut(_Model):
    id: int
    url: str
    state: str = Field(description="pending, delivered or failed.")
    attempts: list[Attempt]
    delivered_at: TimeOut | None


class AlertDetail(AlertOut):
    deliveries: list[DeliveryOut]
