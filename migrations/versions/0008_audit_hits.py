"""Audit: the sightings (tracks) each search returned, so evidence exports show them.

Until now the trail kept how many appearances a search returned, not which; an export of
a past search must show what the operator saw, not what a re-run finds today. Earlier
searches have no rows here (their hits were never recorded).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_hits",
        sa.Column("audit_id", sa.BigInteger(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("track_id", sa.BigInteger(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["audit_id"], ["audit_log.id"], name=op.f("fk_audit_hits_audit_id_audit_log")
        ),
        sa.PrimaryKeyConstraint("audit_id", "rank", name=op.f("pk_audit_hits")),
    )


def downgrade() -> None:
    op.drop_table("audit_hits")
