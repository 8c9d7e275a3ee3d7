"""Ingest workers that share the cameras: camera leases, live workers, camera tags.

Several `surveil run` processes (on any hosts) read one catalog's cameras; each camera
is read by the one worker holding its lease. Existing cameras get no tags (any worker
may read them) and no lease (the first worker to start claims them).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Tz = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Add cameras.tags, camera_leases and live_workers."""
    with op.batch_alter_table("cameras") as batch:
        batch.add_column(sa.Column("tags", sa.Text(), nullable=False, server_default=""))
    op.create_table(
        "camera_leases",
        sa.Column("camera_id", sa.Text(), nullable=False),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("acquired_at", Tz, nullable=False),
        sa.Column("renewed_at", Tz, nullable=False),
        sa.Column("lease_until", Tz, nullable=False),
        sa.PrimaryKeyConstraint("camera_id", name=op.f("pk_camera_leases")),
    )
    op.create_index("ix_camera_leases_owner", "camera_leases", ["owner"])
    op.create_table(
        "live_workers",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("host", sa.Text(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", Tz, nullable=False),
        sa.Column("heartbeat_at", Tz, nullable=False),
        sa.Column("lease_until", Tz, nullable=False),
        sa.Column("cameras", sa.Text(), nullable=False),
        sa.Column("camera_tags", sa.Text(), nullable=False),
        sa.Column("index_backend", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_live_workers")),
    )


def downgrade() -> None:
    """Drop the worker tables and the tags column."""
    op.drop_table("live_workers")
    op.drop_index("ix_camera_leases_owner", table_name="camera_leases")
    op.drop_table("camera_leases")
    with op.batch_alter_table("cameras") as batch:
        batch.drop_column("tags")
