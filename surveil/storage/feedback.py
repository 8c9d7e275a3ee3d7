"""`SqlFeedback`: operators' verdicts on hits and the space floors calibrated from them."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from surveil.domain import Feedback, FeedbackTarget, Space, SpaceFloor, Verdict
from surveil.storage.tables import FeedbackRow, SpaceFloorRow, utcnow


def _feedback(row: FeedbackRow) -> Feedback:
    return Feedback(
        id=row.id,
        ts=row.ts,
        key_id=row.key_id,
        key_name=row.key_name,
        target=FeedbackTarget(
            audit_id=row.audit_id,
            rule_id=row.rule_id,
            alert_id=row.alert_id,
            track_id=row.track_id,
            appearance_id=row.appearance_id,
        ),
        space=row.space,  # type: ignore[arg-type]  # the CHECK constraint keeps it a Space
        verdict=row.verdict,  # type: ignore[arg-type]  # and this a Verdict
        score=row.score,
    )


def _floor(row: SpaceFloorRow) -> SpaceFloor:
    return SpaceFloor(
        space=row.space,  # type: ignore[arg-type]  # the CHECK constraint keeps it a Space
        min_score=row.min_score,
        precision=row.precision,
        labels=row.labels,
        set_at=row.set_at,
        set_by=row.set_by,
    )


class SqlFeedback:
    """Feedback rows; each method is one short transaction."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def mark(
        self,
        target: FeedbackTarget,
        *,
        verdict: Verdict,
        space: Space,
        score: float | None,
        key_id: int | None,
        key_name: str,
    ) -> Feedback:
        """Record a verdict, replacing any earlier one on the same (query, hit)."""
        with self._sessions.begin() as session:
            session.execute(
                delete(FeedbackRow).where(
                    FeedbackRow.query_key == target.query_key,
                    FeedbackRow.hit_key == target.hit_key,
                )
            )
            row = FeedbackRow(
                ts=utcnow(),
                key_id=key_id,
                key_name=key_name,
                query_key=target.query_key,
                hit_key=target.hit_key,
                audit_id=target.audit_id,
                rule_id=target.rule_id,
                alert_id=target.alert_id,
                track_id=target.track_id,
                appearance_id=target.appearance_id,
                space=space,
                verdict=verdict,
                score=score,
            )
            session.add(row)
            session.flush()
            return _feedback(row)

    def clear(self, target: FeedbackTarget) -> bool:
        """Forget the verdict on one (query, hit); whether there was one."""
        with self._sessions.begin() as session:
            gone = session.execute(
                delete(FeedbackRow).where(
                    FeedbackRow.query_key == target.query_key,
                    FeedbackRow.hit_key == target.hit_key,
                )
            )
            return bool(getattr(gone, "rowcount", 0))

    def _list(self, *where: object) -> list[Feedback]:
        stmt = select(FeedbackRow).where(*where).order_by(FeedbackRow.id)  # type: ignore[arg-type]
        with self._sessions() as session:
            return [_feedback(row) for row in session.scalars(stmt)]

    def for_search(self, audit_id: int) -> list[Feedback]:
        """Every verdict given on the hits of one search, oldest first."""
        return self._list(FeedbackRow.audit_id == audit_id)

    def for_rule(self, rule_id: int) -> list[Feedback]:
        """Every verdict given on one rule's hits (its alerts or any hit marked for it)."""
        return self._list(FeedbackRow.rule_id == rule_id)

    def for_space(self, space: Space) -> list[Feedback]:
        """Every verdict in one embedding space, whatever the query."""
        return self._list(FeedbackRow.space == space)

    def floor(self, space: Space) -> SpaceFloor | None:
        """The space's calibrated min_score, if one was applied."""
        with self._sessions() as session:
            row = session.get(SpaceFloorRow, space)
            return None if row is None else _floor(row)

    def set_floor(
        self, space: Space, *, min_score: float, precision: float, labels: int, by: str
    ) -> SpaceFloor:
        """Store (or replace) the space's calibrated min_score."""
        with self._sessions.begin() as session:
            row = session.get(SpaceFloorRow, space)
            if row is None:
                row = SpaceFloorRow(space=space, min_score=0.0, precision=0.0, labels=0, set_by=by)
                session.add(row)
            row.min_score, row.precision, row.labels = min_score, precision, labels
            row.set_at, row.set_by = utcnow(), by
            session.flush()
            return _floor(row)
