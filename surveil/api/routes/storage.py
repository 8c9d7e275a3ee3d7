"""Storage: bytes stored per camera and the days that fit in the budget (operator)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from surveil.api.deps import Operator, ServicesDep
from surveil.api.schemas import AUTH_ERRORS
from surveil.api.views import API
from surveil.jobs.storage import storage_estimate

router = APIRouter(prefix=API, tags=["retention"])


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CameraStorage(_Model):
    camera_id: str
    bytes: int = Field(description="Its files plus its share of catalog rows and vectors.")
    bytes_per_day: int = Field(description="Bytes per UTC day with footage, so far.")
    days_that_fit: float | None = Field(
        description="Days of its footage the budgets hold at that rate; null without a budget."
    )
    budget_bytes: int | None = Field(description="Its own budget (retention.camera_max_bytes).")
    days_stored: int = Field(description="UTC days with footage now stored.")
    appearances: int
    keyframes: int
    oldest: str | None
    newest: str | None


class StorageEstimate(_Model):
    bytes_stored: int = Field(description="Crops, keyframes, catalog rows and vectors, in bytes.")
    budget_bytes: int | None = Field(description="retention.max_bytes; null: no global budget.")
    cameras: list[CameraStorage]
    bytes_per_day: int = Field(description="All cameras together.")
    days_that_fit: float | None = Field(description="Days of all footage the global budget holds.")
    budget_full_at: str | None = Field(description="When the global budget is reached.")
    disk_total_bytes: int | None = Field(description="The media disk (null on S3).")
    disk_free_bytes: int | None
    disk_full_at: str | None = Field(description="When the disk fills at this rate.")
    catalog_bytes: int = Field(description="Live bytes of the footage's catalog rows.")
    index_bytes: int = Field(description="Bytes of the vector index.")
    now: str


@router.get("/storage", response_model=StorageEstimate, responses=AUTH_ERRORS)
def get_storage(_: Operator, services: ServicesDep) -> dict[str, Any]:
    """`surveil storage estimate`: what footage takes and how long it can be kept.

    Reads every camera's byte sums (rows stored before sizes were recorded are sized
    first, once), so it is a view to open, not to poll.
    """
    return storage_estimate(services).to_dict()
