"""Alert rules, alerts and their webhook deliveries, job state, retention journal, holds.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Tz = sa.DateTime(timezone=True)


def _id(table: str) -> list[sa.Column[int] | sa.PrimaryKeyConstraint]:
    return [
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
    ]


def upgrade() -> None:
    """Create the unattended side's tables; add legal-hold flags."""
    for table in ("cameras", "appearances"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("legal_hold", sa.Boolean(), server_default=sa.false(), nullable=False)
            )
    op.create_table(
        "alert_rules",
        *_id("alert_rules"),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("space", sa.Text(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("cameras", sa.Text(), nullable=False),
        sa.Column("labels", sa.Text(), nullable=False),
        sa.Column("interval_s", sa.Integer(), nullable=False),
        sa.Column("cooldown_s", sa.Integer(), nullable=False),
        sa.Column("gap_s", sa.Float(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("webhooks", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=True),
        sa.Column("watermark", sa.BigInteger(), nullable=False),
        sa.Column("created_at", Tz, nullable=False),
        sa.Column("updated_at", Tz, nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.CheckConstraint("space IN ('person', 'general')", name=op.f("ck_alert_rules_space")),
        sa.UniqueConstraint("name", name=op.f("uq_alert_rules_name")),
    )
    op.create_table(
        "rule_examples",
        *_id("rule_examples"),
        sa.Column("rule_id", sa.BigInteger(), nullable=False),
        sa.Column("crop_path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("model_id", sa.Text(), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["alert_rules.id"],
            name=op.f("fk_rule_examples_rule_id_alert_rules"),
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_rule_examples_rule_id", "rule_examples", ["rule_id"])
    op.create_table(
        "alerts",
        *_id("alerts"),
        sa.Column("rule_id", sa.BigInteger(), nullable=False),
        sa.Column("appearance_id", sa.BigInteger(), nullable=False),
        sa.Column("camera_id", sa.Text(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("ts", Tz, nullable=False),
        sa.Column("last_ts", Tz, nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("created_at", Tz, nullable=False),
        sa.Column("acknowledged_at", Tz, nullable=True),
        sa.Column("acknowledged_by", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["alert_rules.id"],
            name=op.f("fk_alerts_rule_id_alert_rules"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["appearance_id"],
            ["appearances.id"],
            name=op.f("fk_alerts_appearance_id_appearances"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "rule_id", "appearance_id", name=op.f("uq_alerts_rule_id_appearance_id")
        ),
    )
    op.create_index(
        "ix_alerts_rule_id_camera_id_last_ts", "alerts", ["rule_id", "camera_id", "last_ts"]
    )
    op.create_index("ix_alerts_created_at", "alerts", ["created_at"])
    op.create_index("ix_alerts_appearance_id", "alerts", ["appearance_id"])
    op.create_table(
        "alert_deliveries",
        *_id("alert_deliveries"),
        sa.Column("alert_id", sa.BigInteger(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", Tz, nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", Tz, nullable=True),
        sa.CheckConstraint(
            "state IN ('pending', 'delivered', 'failed')", name=op.f("ck_alert_deliveries_state")
        ),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.id"],
            name=op.f("fk_alert_deliveries_alert_id_alerts"),
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_alert_deliveries_state_next_at", "alert_deliveries", ["state", "next_at"])
    op.create_index("ix_alert_deliveries_alert_id", "alert_deliveries", ["alert_id"])
    op.create_table(
        "delivery_attempts",
        *_id("delivery_attempts"),
        sa.Column("delivery_id", sa.BigInteger(), nullable=False),
        sa.Column("ts", Tz, nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["alert_deliveries.id"],
            name=op.f("fk_delivery_attempts_delivery_id_alert_deliveries"),
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_delivery_attempts_delivery_id", "delivery_attempts", ["delivery_id"])
    op.create_table(
        "job_state",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("next_run_at", Tz, nullable=False),
        sa.Column("lease_owner", sa.Text(), nullable=True),
        sa.Column("lease_until", Tz, nullable=True),
        sa.Column("last_started_at", Tz, nullable=True),
        sa.Column("last_finished_at", Tz, nullable=True),
        sa.Column("last_status", sa.Text(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_seconds", sa.Float(), nullable=True),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_job_state")),
    )
    op.create_table(
        "retention_journal",
        *_id("retention_journal"),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("item_id", sa.BigInteger(), nullable=True),
        sa.Column("space", sa.Text(), nullable=True),
        sa.Column("ts", Tz, nullable=True),
        sa.Column("path", sa.Text(), nullable=True),
        sa.CheckConstraint("kind IN ('vector', 'file')", name=op.f("ck_retention_journal_kind")),
    )


def downgrade() -> None:
    """Drop them again."""
    for table in (
        "retention_journal",
        "job_state",
        "delivery_attempts",
        "alert_deliveries",
        "alerts",
        "rule_examples",
        "alert_rules",
    ):
        op.drop_table(table)
    for table in ("appearances", "cameras"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("legal_hold")
