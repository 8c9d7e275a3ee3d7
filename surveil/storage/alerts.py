"""`SqlAlerts`: alert rules with their examples, alerts, and the webhook outbox.

An evaluation's alerts, alert updates, deliveries and the rule's new watermark are one
transaction, guarded by the watermark the evaluation started from: after a crash
nothing is evaluated twice or skipped, and a second evaluator loses cleanly.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import numpy as np
from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from surveil.alerts.model import Alert, AlertDraft, Candidate, Rule, RuleExample, RuleSpec
from surveil.domain import ConflictError, NotFoundError, Space, Vectors
from surveil.storage.index_feed import vectors_from_blobs
from surveil.storage.outbox import OutboxQueries, alert_from_row
from surveil.storage.tables import (
    AlertRow,
    AlertRuleRow,
    AppearanceRow,
    DeliveryAttemptRow,
    DeliveryRow,
    RuleExampleRow,
    utcnow,
)

_A = AppearanceRow
_rules = cast(Table, AlertRuleRow.__table__)
_alerts = cast(Table, AlertRow.__table__)
_deliveries = cast(Table, DeliveryRow.__table__)


@dataclass(frozen=True)
class NewExample:
    """An example crop ready to store: blob key, hash, and its embedding in the rule's space."""

    crop_path: str
    sha256: str
    model_id: str
    vector: Vectors


def _draft(r: AlertRow) -> AlertDraft:
    return AlertDraft(
        camera_id=r.camera_id,
        label=r.label,
        appearance_id=r.appearance_id,
        score=r.score,
        ts=r.ts,
        last_ts=r.last_ts,
        hits=r.hits,
        id=r.id,
        track_id=r.track_id,
    )


def _spec(row: AlertRuleRow) -> RuleSpec:
    return RuleSpec(
        name=row.name,
        threshold=row.threshold,
        cameras=tuple(json.loads(row.cameras)),
        labels=tuple(json.loads(row.labels)),
        interval_s=row.interval_s,
        cooldown_s=row.cooldown_s,
        gap_s=row.gap_s,
        webhooks=tuple(json.loads(row.webhooks)),
        secret=row.secret,
        enabled=row.enabled,
    )


def _rule(row: AlertRuleRow, examples: Sequence[RuleExampleRow]) -> Rule:
    return Rule(
        id=row.id,
        spec=_spec(row),
        space=cast(Space, row.space),
        watermark=row.watermark,
        created_at=row.created_at,
        updated_at=row.updated_at,
        created_by=row.created_by,
        examples=tuple(RuleExample(e.id, e.sha256, e.crop_path) for e in examples),
    )


def _spec_columns(spec: RuleSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "threshold": spec.threshold,
        "cameras": json.dumps(sorted(spec.cameras)),
        "labels": json.dumps(sorted(spec.labels)),
        "interval_s": spec.interval_s,
        "cooldown_s": spec.cooldown_s,
        "gap_s": spec.gap_s,
        "webhooks": json.dumps(list(spec.webhooks)),
        "secret": spec.secret,
        "enabled": spec.enabled,
    }


class SqlAlerts(OutboxQueries):
    """Rules, alerts and deliveries; each method is one short transaction."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    # ---- rules -------------------------------------------------------------------------

    def create_rule(
        self, spec: RuleSpec, *, space: Space, examples: Sequence[NewExample], created_by: str
    ) -> Rule:
        """Store a rule; its watermark is the newest appearance now (it alerts on what follows)."""
        if not examples:
            raise ConflictError("a rule needs at least one example crop")
        now = utcnow()
        try:
            with self._sessions.begin() as session:
                newest = session.scalar(select(func.coalesce(func.max(_A.id), 0)))
                row = AlertRuleRow(
                    **_spec_columns(spec),
                    space=space,
                    watermark=int(newest or 0),
                    created_at=now,
                    updated_at=now,
                    created_by=created_by,
                )
                session.add(row)
                session.flush()
                rule_id = row.id
                for ex in examples:
                    vec = np.asarray(ex.vector, dtype=np.float32).ravel()
                    session.add(
                        RuleExampleRow(
                            rule_id=rule_id,
                            crop_path=ex.crop_path,
                            sha256=ex.sha256,
                            model_id=ex.model_id,
                            embedding=vec.tobytes(),
                            dim=int(vec.shape[0]),
                        )
                    )
        except IntegrityError:
            raise ConflictError(f"a rule named {spec.name!r} exists; pick another name") from None
        return self.get_rule(rule_id)

    def get_rule(self, rule_id: int) -> Rule:
        """One rule with its examples (NotFoundError when unknown)."""
        with self._sessions() as session:
            row = session.get(AlertRuleRow, rule_id)
            if row is None:
                raise NotFoundError(f"no alert rule with id {rule_id}")
            examples = session.scalars(
                select(RuleExampleRow)
                .where(RuleExampleRow.rule_id == rule_id)
                .order_by(RuleExampleRow.id)
            ).all()
            return _rule(row, examples)

    def find_rule(self, ref: str) -> Rule:
        """A rule by id or by name (what an operator types)."""
        if ref.isdigit():
            return self.get_rule(int(ref))
        with self._sessions() as session:
            rule_id = session.scalar(select(AlertRuleRow.id).where(AlertRuleRow.name == ref))
        if rule_id is None:
            raise NotFoundError(f"no alert rule named {ref!r}")
        return self.get_rule(rule_id)

    def list_rules(self, *, enabled_only: bool = False) -> list[Rule]:
        """Every rule, by id."""
        stmt = select(AlertRuleRow).order_by(AlertRuleRow.id)
        if enabled_only:
            stmt = stmt.where(AlertRuleRow.enabled.is_(True))
        with self._sessions() as session:
            rows = session.scalars(stmt).all()
            examples = session.scalars(select(RuleExampleRow).order_by(RuleExampleRow.id)).all()
        by_rule: dict[int, list[RuleExampleRow]] = {}
        for e in examples:
            by_rule.setdefault(e.rule_id, []).append(e)
        return [_rule(r, by_rule.get(r.id, [])) for r in rows]

    def update_rule(self, rule_id: int, spec: RuleSpec) -> Rule:
        """Replace a rule's settings (its examples, space and watermark stay)."""
        try:
            with self._sessions.begin() as session:
                result = session.execute(
                    update(_rules)
                    .where(_rules.c.id == rule_id)
                    .values(**_spec_columns(spec), updated_at=utcnow())
                )
                if result.rowcount == 0:  # type: ignore[attr-defined]
                    raise NotFoundError(f"no alert rule with id {rule_id}")
        except IntegrityError:
            raise ConflictError(f"a rule named {spec.name!r} exists; pick another name") from None
        return self.get_rule(rule_id)

    def delete_rule(self, rule_id: int) -> list[str]:
        """Delete a rule, its examples and alerts; returns the example blobs to remove."""
        with self._sessions.begin() as session:
            if session.get(AlertRuleRow, rule_id) is None:
                raise NotFoundError(f"no alert rule with id {rule_id}")
            paths = list(
                session.scalars(
                    select(RuleExampleRow.crop_path).where(RuleExampleRow.rule_id == rule_id)
                )
            )
            alert_ids = select(AlertRow.id).where(AlertRow.rule_id == rule_id)
            delivery_ids = select(DeliveryRow.id).where(DeliveryRow.alert_id.in_(alert_ids))
            session.execute(
                delete(DeliveryAttemptRow).where(DeliveryAttemptRow.delivery_id.in_(delivery_ids))
            )
            session.execute(delete(DeliveryRow).where(DeliveryRow.alert_id.in_(alert_ids)))
            session.execute(delete(AlertRow).where(AlertRow.rule_id == rule_id))
            session.execute(delete(RuleExampleRow).where(RuleExampleRow.rule_id == rule_id))
            session.execute(delete(AlertRuleRow).where(AlertRuleRow.id == rule_id))
        return paths

    def example_vectors(self, rule_id: int) -> Vectors:
        """The rule's example embeddings, one row each."""
        with self._sessions() as session:
            rows = session.execute(
                select(AlertRuleRow.space, RuleExampleRow.embedding, RuleExampleRow.dim)
                .join(AlertRuleRow, AlertRuleRow.id == RuleExampleRow.rule_id)
                .where(RuleExampleRow.rule_id == rule_id)
                .order_by(RuleExampleRow.id)
            ).all()
        if not rows:
            raise NotFoundError(f"alert rule {rule_id} has no examples")
        return vectors_from_blobs(rows[0][0], [r[1] for r in rows], [r[2] for r in rows])

    def example_models(self, rule_id: int) -> set[str]:
        """The model ids of the rule's example vectors (checked against its space's model)."""
        with self._sessions() as session:
            stmt = select(RuleExampleRow.model_id).where(RuleExampleRow.rule_id == rule_id)
            return set(session.scalars(stmt.distinct()))

    def example_blob(self, rule_id: int, example_id: int) -> str:
        """The blob key of one example crop."""
        with self._sessions() as session:
            path = session.scalar(
                select(RuleExampleRow.crop_path).where(
                    RuleExampleRow.id == example_id, RuleExampleRow.rule_id == rule_id
                )
            )
        if path is None:
            raise NotFoundError(f"rule {rule_id} has no example {example_id}")
        return path

    # ---- evaluation --------------------------------------------------------------------

    def newest_appearance_id(self) -> int:
        """The highest stored appearance id (0 when none): an evaluation's upper bound."""
        with self._sessions() as session:
            return int(session.scalar(select(func.coalesce(func.max(_A.id), 0))) or 0)

    def candidates(
        self,
        rule: Rule,
        *,
        after: int,
        upto: int,
        limit: int,
        since: datetime | None = None,
    ) -> tuple[list[Candidate], Vectors]:
        """Appearances in the rule's space, cameras and labels with after < id <= upto."""
        stmt = (
            select(_A.id, _A.camera_id, _A.label, _A.ts, _A.embedding, _A.dim, _A.track_id)
            .where(_A.id > after, _A.id <= upto, _A.space == rule.space)
            .order_by(_A.id)
            .limit(limit)
        )
        if rule.spec.cameras:
            stmt = stmt.where(_A.camera_id.in_(rule.spec.cameras))
        if rule.spec.labels:
            stmt = stmt.where(_A.label.in_(rule.spec.labels))
        if since is not None:
            stmt = stmt.where(_A.ts >= since)
        with self._sessions() as session:
            rows = session.execute(stmt).all()
        found = [Candidate(r.id, r.camera_id, r.label, r.ts, r.track_id) for r in rows]
        if not rows:
            return found, np.zeros((0, 0), np.float32)
        return found, vectors_from_blobs(
            rule.space, [r.embedding for r in rows], [r.dim for r in rows]
        )

    def open_alerts(self, rule_id: int, cameras: Sequence[str]) -> dict[str, AlertDraft]:
        """Each camera's latest alert of the rule (by first-hit time), as extendable drafts."""
        if not cameras:
            return {}
        newest = (
            select(AlertRow.camera_id, func.max(AlertRow.ts).label("ts"))
            .where(AlertRow.rule_id == rule_id, AlertRow.camera_id.in_(sorted(set(cameras))))
            .group_by(AlertRow.camera_id)
            .subquery()
        )
        stmt = (
            select(AlertRow)
            .join(newest, (AlertRow.camera_id == newest.c.camera_id) & (AlertRow.ts == newest.c.ts))
            .where(AlertRow.rule_id == rule_id)
            .order_by(AlertRow.id)
        )
        with self._sessions() as session:
            rows = session.scalars(stmt).all()
        return {r.camera_id: _draft(r) for r in rows}

    def track_alerts(self, rule_id: int, track_ids: Sequence[int]) -> dict[int, AlertDraft]:
        """The rule's alert on each of these tracks, as extendable drafts (one per track)."""
        wanted = sorted({int(t) for t in track_ids})
        if not wanted:
            return {}
        stmt = (
            select(AlertRow)
            .where(AlertRow.rule_id == rule_id, AlertRow.track_id.in_(wanted))
            .order_by(AlertRow.id)
        )
        with self._sessions() as session:
            rows = session.scalars(stmt).all()
        return {int(r.track_id): _draft(r) for r in rows if r.track_id is not None}

    def commit_evaluation(
        self,
        rule: Rule,
        *,
        expected_watermark: int,
        new_watermark: int,
        new: Sequence[AlertDraft],
        extended: Sequence[AlertDraft],
        notify: bool,
    ) -> list[int]:
        """Store alerts, updates, deliveries and the watermark at once; ids of new alerts.

        ConflictError when the watermark moved meanwhile (another evaluator won): then
        nothing of this evaluation is kept.
        """
        now = utcnow()
        with self._sessions.begin() as session:
            moved = session.execute(
                update(_rules)
                .where(_rules.c.id == rule.id, _rules.c.watermark == expected_watermark)
                .values(watermark=new_watermark)
            )
            if moved.rowcount != 1:  # type: ignore[attr-defined]
                raise ConflictError(f"rule {rule.id} was evaluated concurrently; skipped")
            for draft in extended:
                session.execute(
                    update(_alerts)
                    .where(_alerts.c.id == draft.id)
                    .values(
                        appearance_id=draft.appearance_id,
                        label=draft.label,
                        score=draft.score,
                        ts=draft.ts,
                        last_ts=draft.last_ts,
                        hits=draft.hits,
                    )
                )
            ids: list[int] = []
            for draft in new:
                row = AlertRow(
                    rule_id=rule.id,
                    appearance_id=draft.appearance_id,
                    camera_id=draft.camera_id,
                    label=draft.label,
                    score=draft.score,
                    ts=draft.ts,
                    last_ts=draft.last_ts,
                    hits=draft.hits,
                    track_id=draft.track_id,
                    created_at=now,
                )
                session.add(row)
                session.flush()
                ids.append(row.id)
            if notify and ids and rule.spec.webhooks:
                session.execute(
                    insert(_deliveries),
                    [
                        {
                            "alert_id": i,
                            "url": url,
                            "state": "pending",
                            "attempts": 0,
                            "next_at": now,
                        }
                        for i in ids
                        for url in rule.spec.webhooks
                    ],
                )
        return ids

    # ---- alerts ------------------------------------------------------------------------

    def list_alerts(
        self,
        *,
        rule_id: int | None = None,
        camera_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        acknowledged: bool | None = None,
        ids: Sequence[int] | None = None,
        limit: int = 100,
    ) -> list[Alert]:
        """Alerts newest first (by first-hit time), filtered."""
        stmt = (
            select(AlertRow, AlertRuleRow.name)
            .join(AlertRuleRow, AlertRuleRow.id == AlertRow.rule_id)
            .order_by(AlertRow.ts.desc(), AlertRow.id.desc())
            .limit(limit)
        )
        if rule_id is not None:
            stmt = stmt.where(AlertRow.rule_id == rule_id)
        if camera_id is not None:
            stmt = stmt.where(AlertRow.camera_id == camera_id)
        if since is not None:
            stmt = stmt.where(AlertRow.ts >= since)
        if until is not None:
            stmt = stmt.where(AlertRow.ts <= until)
        if acknowledged is not None:
            ack = AlertRow.acknowledged_at.is_not(None)
            stmt = stmt.where(ack if acknowledged else ~ack)
        if ids is not None:
            stmt = stmt.where(AlertRow.id.in_(list(ids)))
        with self._sessions() as session:
            return [alert_from_row(row, name) for row, name in session.execute(stmt).all()]

    def get_alert(self, alert_id: int) -> Alert:
        """One alert (NotFoundError when unknown)."""
        found = self.list_alerts(ids=[alert_id], limit=1)
        if not found:
            raise NotFoundError(f"no alert with id {alert_id}")
        return found[0]

    def acknowledge(self, alert_id: int, *, by: str) -> Alert:
        """Mark an alert seen by someone; acknowledging twice keeps the first."""
        with self._sessions.begin() as session:
            row = session.get(AlertRow, alert_id)
            if row is None:
                raise NotFoundError(f"no alert with id {alert_id}")
            if row.acknowledged_at is None:
                row.acknowledged_at, row.acknowledged_by = utcnow(), by
        return self.get_alert(alert_id)
