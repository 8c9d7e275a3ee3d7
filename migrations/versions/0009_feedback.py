"""Operator feedback on search and rule hits, and each space's calibrated min_score.

`feedback` holds the current verdict per (query, hit): changing one's mind replaces the
row (the audit trail keeps every action). `space_floors` holds a min_score calibrated
from that feedback, used by searches that give none.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Tz = sa.DateTime(timezone=True)
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create feedback and space_floors."""
    op.create_table(
        "feedback",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("ts", Tz, nullable=False),
        sa.Column("key_id", sa.BigInteger(), nullable=True),
        sa.Column("key_name", sa.Text(), nullable=False),
        sa.Column("query_key", sa.Text(), nullable=False),
        sa.Column("hit_key", sa.Text(), nullable=False),
        sa.Column("audit_id", sa.BigInteger(), nullable=True),
        sa.Column("rule_id", sa.BigInteger(), nullable=True),
        sa.Column("alert_id", sa.BigInteger(), nullable=True),
        sa.Column("track_id", sa.BigInteger(), nullable=True),
        sa.Column("appearance_id", sa.BigInteger(), nullable=True),
        sa.Column("space", sa.Text(), nullable=False),
        sa.Column("verdict", sa.Text(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.CheckConstraint(
            "verdict IN ('confirmed', 'rejected')", name=op.f("ck_feedback_verdict")
        ),
        sa.CheckConstraint("space IN ('person', 'general')", name=op.f("ck_feedback_space")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
        sa.UniqueConstraint("query_key", "hit_key", name=op.f("uq_feedback_query_key_hit_key")),
    )
    op.create_index("ix_feedback_audit_id", "feedback", ["audit_id"])
    op.create_index("ix_feedback_rule_id", "feedback", ["rule_id"])
    op.create_index("ix_feedback_space_ts", "feedback", ["space", "ts"])
    op.create_table(
        "space_floors",
        sa.Column("space", sa.Text(), nullable=False),
        sa.Column("min_score", sa.Float(), nullable=False),
        sa.Column("precision", sa.Float(), nullable=False),
        sa.Column("labels", sa.Integer(), nullable=False),
        sa.Column("set_at", Tz, nullable=False),
        sa.Column("set_by", sa.Text(), nullable=False),
        sa.CheckConstraint("space IN ('person', 'general')", name=op.f("ck_space_floors_space")),
        sa.PrimaryKeyConstraint("space", name=op.f("pk_space_floors")),
    )


def downgrade() -> None:
    """Drop space_floors and feedback."""
    op.drop_table("space_floors")
    op.drop_index("ix_feedback_space_ts", table_name="feedback")
    op.drop_index("ix_feedback_rule_id", table_name="feedback")
    op.drop_index("ix_feedback_audit_id", table_name="feedback")
    op.drop_table("feedback")
