"""The webhook outbox: deliveries owed for alerts, each POST attempt, and their states.

Delivery rows are written in the same transaction as the alerts they announce, so an
alert is never lost between "stored" and "sent"; the delivery job drains them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session, sessionmaker

from surveil.alerts.model import Alert
from surveil.search.render import iso
from surveil.storage.tables import (
    AlertRow,
    AlertRuleRow,
    DeliveryAttemptRow,
    DeliveryRow,
    utcnow,
)

_deliveries = cast(Table, DeliveryRow.__table__)


@dataclass(frozen=True)
class DeliveryTask:
    """A due webhook delivery with what the POST needs."""

    id: int
    url: str
    attempts: int
    alert: Alert
    secret: str | None


@dataclass(frozen=True)
class AttemptResult:
    """One POST's outcome and what the delivery becomes: delivered, retried at, or failed."""

    status_code: int | None
    error: str | None
    seconds: float
    state: str  # "delivered", "pending" or "failed"
    next_at: datetime | None = None


def alert_from_row(row: AlertRow, rule_name: str) -> Alert:
    """An alert row (with its rule's name) as the domain object."""
    return Alert(
        id=row.id,
        rule_id=row.rule_id,
        rule_name=rule_name,
        appearance_id=row.appearance_id,
        camera_id=row.camera_id,
        label=row.label,
        score=row.score,
        ts=row.ts,
        last_ts=row.last_ts,
        hits=row.hits,
        created_at=row.created_at,
        acknowledged_at=row.acknowledged_at,
        acknowledged_by=row.acknowledged_by,
    )


class OutboxQueries:
    """Mixed into SqlAlerts: the delivery side of alerts."""

    _sessions: sessionmaker[Session]

    def due_deliveries(self, *, now: datetime, limit: int = 100) -> list[DeliveryTask]:
        """Pending deliveries whose next attempt is due, oldest first, with their alerts."""
        stmt = (
            select(DeliveryRow, AlertRow, AlertRuleRow.name, AlertRuleRow.secret)
            .join(AlertRow, AlertRow.id == DeliveryRow.alert_id)
            .join(AlertRuleRow, AlertRuleRow.id == AlertRow.rule_id)
            .where(DeliveryRow.state == "pending", DeliveryRow.next_at <= now)
            .order_by(DeliveryRow.next_at, DeliveryRow.id)
            .limit(limit)
        )
        with self._sessions() as session:
            rows = session.execute(stmt).all()
            return [
                DeliveryTask(d.id, d.url, d.attempts, alert_from_row(a, name), secret)
                for d, a, name, secret in rows
            ]

    def record_attempt(self, delivery_id: int, result: AttemptResult) -> None:
        """Log one POST and move the delivery to its next state."""
        now = utcnow()
        with self._sessions.begin() as session:
            session.add(
                DeliveryAttemptRow(
                    delivery_id=delivery_id,
                    ts=now,
                    status_code=result.status_code,
                    error=result.error,
                    seconds=result.seconds,
                )
            )
            values: dict[str, Any] = {
                "attempts": _deliveries.c.attempts + 1,
                "state": result.state,
                "last_status": result.status_code,
                "last_error": result.error,
            }
            if result.state == "delivered":
                values["delivered_at"] = now
            if result.next_at is not None:
                values["next_at"] = result.next_at
            session.execute(
                update(_deliveries).where(_deliveries.c.id == delivery_id).values(**values)
            )

    def deliveries(self, alert_id: int) -> list[dict[str, Any]]:
        """An alert's deliveries with every attempt, for the API and CLI."""
        with self._sessions() as session:
            rows = session.scalars(
                select(DeliveryRow).where(DeliveryRow.alert_id == alert_id).order_by(DeliveryRow.id)
            ).all()
            attempts = session.scalars(
                select(DeliveryAttemptRow)
                .where(DeliveryAttemptRow.delivery_id.in_([r.id for r in rows]))
                .order_by(DeliveryAttemptRow.id)
            ).all()
        return [
            {
                "id": r.id,
                "url": r.url,
                "state": r.state,
                "attempts": [
                    {
                        "ts": iso(a.ts),
                        "status": a.status_code,
                        "error": a.error,
                        "seconds": round(a.seconds, 3),
                    }
                    for a in attempts
                    if a.delivery_id == r.id
                ],
                "delivered_at": iso(r.delivered_at) if r.delivered_at else None,
            }
            for r in rows
        ]
