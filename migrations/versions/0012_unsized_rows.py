"""Partial indexes over the rows whose file size is not recorded yet.

The storage check (every `retention.check_minutes`) and every estimate first ask for
rows without a recorded size (those stored before 0011). Once all are sized that query
found nothing by reading every keyframe and appearance: 23-35 ms at 100k appearances
on PostgreSQL, growing with the catalog. These indexes hold only the unsized rows, so
the question costs an empty index probe once they are sized, and new rows (always sized
at ingest) never enter them.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 21:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FRAMES = sa.text("image_bytes IS NULL AND image_path IS NOT NULL")
_CROPS = sa.text("crop_bytes IS NULL")


def upgrade() -> None:
    """Index the unsized keyframes and appearances by id (the order sizing walks them)."""
    op.create_index(
        "ix_keyframes_unsized",
        "keyframes",
        ["id"],
        sqlite_where=_FRAMES,
        postgresql_where=_FRAMES,
    )
    op.create_index(
        "ix_appearances_unsized",
        "appearances",
        ["id"],
        sqlite_where=_CROPS,
        postgresql_where=_CROPS,
    )


def downgrade() -> None:
    """Drop them (the storage check scans the tables again)."""
    op.drop_index("ix_appearances_unsized", table_name="appearances")
    op.drop_index("ix_keyframes_unsized", table_name="keyframes")
