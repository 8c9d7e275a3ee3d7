"""Live ingest: per-camera health and the gaps when a camera delivered nothing.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 06:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Tz = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create camera_health and camera_gaps."""
    op.create_table(
        "camera_health",
        sa.Column("camera_id", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("last_frame_at", Tz, nullable=True),
        sa.Column("fps", sa.Float(), nullable=False),
        sa.Column("keyframes_per_s", sa.Float(), nullable=False),
        sa.Column("keyframes", sa.BigInteger(), nullable=False),
        sa.Column("drops", sa.BigInteger(), nullable=False),
        sa.Column("reconnects", sa.BigInteger(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", Tz, nullable=False),
        sa.CheckConstraint(
            "state IN ('connecting', 'online', 'stalled', 'offline', 'stopped')",
            name=op.f("ck_camera_health_state"),
        ),
        sa.PrimaryKeyConstraint("camera_id", name=op.f("pk_camera_health")),
    )
    op.create_table(
        "camera_gaps",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("camera_id", sa.Text(), nullable=False),
        sa.Column("start_ts", Tz, nullable=False),
        sa.Column("end_ts", Tz, nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_camera_gaps")),
    )
    op.create_index("ix_camera_gaps_camera_id_start_ts", "camera_gaps", ["camera_id", "start_ts"])


def downgrade() -> None:
    """Drop the live-ingest tables."""
    op.drop_index("ix_camera_gaps_camera_id_start_ts", table_name="camera_gaps")
    op.drop_table("camera_gaps")
    op.drop_table("camera_health")
