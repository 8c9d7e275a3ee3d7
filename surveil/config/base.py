"""The base every settings section shares: unknown keys refused, values frozen."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """One section of the settings tree (``extra="forbid"``: a typo is an error)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
