"""Audit: the track a 'find similar' search started from.

A search can start from a stored track (its pooled vector) as well as from an appearance
or a keyframe box; the trail names the track like it names the appearance. Existing rows
keep NULL: no earlier search started from a track.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("track_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("track_id")
