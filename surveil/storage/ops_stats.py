"""`SqlOpsStats`: what the catalog says about scheduled jobs, webhooks and rule lag.

Read at every `/metrics` scrape, so each figure is one small indexed query: job_state
has a row per job, alert_deliveries is read through its (state, next_at) index, and
rule lag reads a few appearance rows by primary key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, sessionmaker

from surveil.storage.jobs import JobState, _state
from surveil.storage.tables import AlertRow, AlertRuleRow, AppearanceRow, DeliveryRow, JobStateRow


@dataclass(frozen=True)
class DeliveryCounts:
    """Deliveries still owed (pending, of which retrying) and given up (failed).

    Delivered ones are history that only grows: they are not counted at scrape time
    (`surveil_webhook_attempts_total{state="delivered"}` counts them as they happen).
    """

    failed: int = 0
    pending: int = 0
    retrying: int = 0
    oldest_pending: datetime | None = None  # when the oldest pending one's alert was raised


@dataclass(frozen=True)
class RuleLag:
    """How far the slowest enabled rule is behind the newest stored appearance."""

    rules: int
    appearances: int
    oldest_unevaluated: datetime | None
    newest: datetime | None


class SqlOpsStats:
    """Cheap catalog reads for the metrics collectors."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def jobs(self) -> list[JobState]:
        """Every scheduled job's state row."""
        with self._sessions() as session:
            rows = session.scalars(select(JobStateRow).order_by(JobStateRow.name)).all()
            return [_state(r) for r in rows]

    def deliveries(self) -> DeliveryCounts:
        """Pending and failed deliveries (through the state index) and the oldest owed."""
        retry = case((DeliveryRow.attempts > 0, 1), else_=0)
        stmt = (
            select(DeliveryRow.state, retry, func.count(), func.min(AlertRow.created_at))
            .join(AlertRow, AlertRow.id == DeliveryRow.alert_id)
            .where(DeliveryRow.state.in_(("pending", "failed")))
            .group_by(DeliveryRow.state, retry)
        )
        counts: dict[str, int] = {}
        oldest: datetime | None = None
        with self._sessions() as session:
            for state, retried, n, first in session.execute(stmt).all():
                key = "retrying" if state == "pending" and retried else str(state)
                counts[key] = counts.get(key, 0) + int(n)
                if state == "pending" and first is not None:
                    oldest = first if oldest is None else min(oldest, first)
        return DeliveryCounts(
            failed=counts.get("failed", 0),
            pending=counts.get("pending", 0) + counts.get("retrying", 0),
            retrying=counts.get("retrying", 0),
            oldest_pending=oldest,
        )

    def rule_lag(self) -> RuleLag:
        """Appearances (and capture time) between the slowest enabled rule and the newest."""
        with self._sessions() as session:
            rules, mark = session.execute(
                select(func.count(), func.min(AlertRuleRow.watermark)).where(
                    AlertRuleRow.enabled.is_(True)
                )
            ).one()
            newest_id = session.scalar(select(func.max(AppearanceRow.id)))
            if not rules or newest_id is None:
                return RuleLag(int(rules or 0), 0, None, None)
            newest = session.scalar(select(AppearanceRow.ts).where(AppearanceRow.id == newest_id))
            first_id = session.scalar(
                select(func.min(AppearanceRow.id)).where(AppearanceRow.id > mark)
            )
            first = (
                None
                if first_id is None
                else session.scalar(select(AppearanceRow.ts).where(AppearanceRow.id == first_id))
            )
        # Ids are assigned in commit order: their difference is the appearances stored
        # since (less any retention removed), without counting a possibly long range.
        return RuleLag(int(rules), max(0, int(newest_id) - int(mark)), first, newest)
