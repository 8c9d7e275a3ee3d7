"""Model changes: the model each vector space holds, and re-embedded vectors kept aside.

`space_models` is seeded from each space's newest track, so an existing catalog keeps
searching with the model it was built with and a changed model is refused until
`surveil index reembed` has moved the space. `reembed_vectors` holds a re-embed's new
vectors until its swap (a killed re-embed resumes from it).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Tz = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create space_models (seeded from the newest track per space) and reembed_vectors."""
    space_models = op.create_table(
        "space_models",
        sa.Column("space", sa.Text(), nullable=False),
        sa.Column("model_id", sa.Text(), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("embedder", sa.Text(), nullable=True),
        sa.Column("pending_model_id", sa.Text(), nullable=True),
        sa.Column("index_stale", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("updated_at", Tz, nullable=False),
        sa.CheckConstraint("space IN ('person', 'general')", name=op.f("ck_space_models_space")),
        sa.PrimaryKeyConstraint("space", name=op.f("pk_space_models")),
    )
    op.create_table(
        "reembed_vectors",
        sa.Column("appearance_id", sa.BigInteger(), nullable=False),
        sa.Column("space", sa.Text(), nullable=False),
        sa.Column("model_id", sa.Text(), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=True),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["appearance_id"],
            ["appearances.id"],
            name=op.f("fk_reembed_vectors_appearance_id_appearances"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("appearance_id", name=op.f("pk_reembed_vectors")),
    )
    op.create_index("ix_reembed_vectors_space_model_id", "reembed_vectors", ["space", "model_id"])
    conn = op.get_bind()
    newest = conn.execute(sa.text("SELECT max(id) FROM tracks GROUP BY space")).scalars().all()
    rows = (
        [
            {**dict(r._mapping), "updated_at": datetime.now(UTC)}
            for r in conn.execute(
                sa.text("SELECT space, model_id, dim FROM tracks WHERE id IN :ids").bindparams(
                    sa.bindparam("ids", expanding=True)
                ),
                {"ids": list(newest)},
            )
        ]
        if newest
        else []
    )
    if rows:
        op.bulk_insert(space_models, rows)


def downgrade() -> None:
    """Drop both tables."""
    op.drop_index("ix_reembed_vectors_space_model_id", table_name="reembed_vectors")
    op.drop_table("reembed_vectors")
    op.drop_table("space_models")
