"""Stored bytes: each keyframe's image and each appearance's crop size, for size budgets.

Size-budget retention and `surveil storage estimate` sum these instead of asking the
blob store about every file. Existing rows keep NULL ("not sized yet"): a migration
must not walk a media store that may be an S3 bucket of millions of objects, so the
first budget run or estimate sizes them in batches through the blob store's inventory.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 18:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the nullable byte columns and the (ts, id) order budget retention walks."""
    with op.batch_alter_table("keyframes") as batch:
        batch.add_column(sa.Column("image_bytes", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("appearances") as batch:
        batch.add_column(sa.Column("crop_bytes", sa.BigInteger(), nullable=True))
    op.create_index("ix_keyframes_ts_id", "keyframes", ["ts", "id"])


def downgrade() -> None:
    """Drop them again (sizes are re-read from the blob store after a later upgrade)."""
    op.drop_index("ix_keyframes_ts_id", table_name="keyframes")
    with op.batch_alter_table("appearances") as batch:
        batch.drop_column("crop_bytes")
    with op.batch_alter_table("keyframes") as batch:
        batch.drop_column("image_bytes")
