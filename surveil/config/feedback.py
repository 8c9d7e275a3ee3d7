"""Operator feedback: how a search re-runs with it and how much of it calibration needs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from surveil.config.base import Section


class FeedbackSettings(Section):
    fusion: Literal["max", "mean"] = Field(
        "max",
        title="Multi-example fusion",
        description=(
            "How a re-run joins the confirmed hits to the query: 'max' searches with each "
            "example and keeps each track's best score; 'mean' searches once with the mean."
        ),
    )
    reject_weight: float = Field(
        1.0,
        ge=0.0,
        le=10.0,
        title="Rejected-hit penalty",
        description=(
            "A re-run lowers a track's score by this times how much closer it is to a "
            "rejected hit than to the query and confirmed hits."
        ),
    )
    max_examples: int = Field(
        20,
        ge=1,
        le=200,
        title="Most confirmed examples",
        description="Confirmed hits a re-run adds to the query (the latest ones).",
    )
    precision: float = Field(
        0.9,
        gt=0.0,
        le=1.0,
        title="Calibration precision",
        description="Precision a calibrated threshold must reach when none is given.",
    )
    min_confirmed: int = Field(
        5,
        ge=1,
        title="Confirmed labels needed",
        description="Confirmed hits needed before a threshold is calibrated.",
    )
    min_rejected: int = Field(
        5,
        ge=1,
        title="Rejected labels needed",
        description="Rejected hits needed before a threshold is calibrated.",
    )
