"""Tracks: one row per object followed through a camera, and each appearance's track.

Existing appearances become one-member tracks whose id IS the appearance id, so the vector
index already on disk (ids = appearance ids, same vectors, same day shards) stays valid
and search works the moment the upgrade is done. `surveil tracks backfill` then runs the
tracker over them and merges the one-member tracks into real ones.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 20:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Tz = sa.DateTime(timezone=True)
#: Key prefix of the one-member tracks this migration makes (the backfill replaces them).
LEGACY_PREFIX = "legacy:"


def _create_tracks() -> None:
    op.create_table(
        "tracks",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("camera_id", sa.Text(), nullable=False),
        sa.Column("space", sa.Text(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("label_group", sa.Text(), nullable=False),
        sa.Column("first_ts", Tz, nullable=False),
        sa.Column("last_ts", Tz, nullable=False),
        sa.Column("appearances", sa.Integer(), nullable=False),
        sa.Column("best_appearance_id", sa.BigInteger(), nullable=True),
        sa.Column("best_quality", sa.Float(), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Text(), nullable=False),
        sa.Column("closed", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("updated_at", Tz, nullable=False),
        sa.CheckConstraint("space IN ('person', 'general')", name=op.f("ck_tracks_space")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracks")),
        sa.UniqueConstraint("key", name=op.f("uq_tracks_key")),
    )
    op.create_index("ix_tracks_space_first_ts", "tracks", ["space", "first_ts"])
    op.create_index("ix_tracks_camera_id_last_ts", "tracks", ["camera_id", "last_ts"])
    op.create_index("ix_tracks_updated_at", "tracks", ["updated_at"])


def _add_columns() -> None:
    with op.batch_alter_table("appearances") as batch:
        batch.add_column(sa.Column("track_id", sa.BigInteger(), nullable=True))
        batch.add_column(
            sa.Column("quality", sa.Float(), server_default=sa.text("1"), nullable=False)
        )
        batch.create_index("ix_appearances_track_id_ts", ["track_id", "ts"])
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("track_id", sa.BigInteger(), nullable=True))
        batch.create_index("ix_alerts_rule_id_track_id", ["rule_id", "track_id"])


def _one_member_tracks() -> None:
    """Every stored appearance becomes a track of one, with the same id and vector."""
    bind = op.get_bind()
    concat = "'legacy:' || CAST(id AS TEXT)"
    op.execute(
        "INSERT INTO tracks (id, key, camera_id, space, label, label_group, first_ts, last_ts,"
        " appearances, best_appearance_id, best_quality, embedding, dim, model_id, closed,"
        " updated_at)"
        f" SELECT id, {concat}, camera_id, space, label, label, ts, ts, 1, id, confidence,"
        " embedding, dim, model_id, true, ts FROM appearances"
    )
    op.execute("UPDATE appearances SET track_id = id, quality = confidence")
    op.execute("UPDATE alerts SET track_id = appearance_id")
    if bind.dialect.name == "postgresql":
        # New tracks must number above the appearance ids the legacy tracks took.
        op.execute(
            "SELECT setval(pg_get_serial_sequence('tracks', 'id'),"
            " (SELECT COALESCE(MAX(id), 0) + 1 FROM tracks), false)"
        )


def upgrade() -> None:
    """Create tracks, add appearances.track_id/quality and alerts.track_id, track the data."""
    _create_tracks()
    _add_columns()
    _one_member_tracks()


def downgrade() -> None:
    """Drop tracks and the columns that point at them (appearances keep their vectors)."""
    with op.batch_alter_table("alerts") as batch:
        batch.drop_index("ix_alerts_rule_id_track_id")
        batch.drop_column("track_id")
    with op.batch_alter_table("appearances") as batch:
        batch.drop_index("ix_appearances_track_id_ts")
        batch.drop_column("quality")
        batch.drop_column("track_id")
    op.drop_index("ix_tracks_updated_at", table_name="tracks")
    op.drop_index("ix_tracks_camera_id_last_ts", table_name="tracks")
    op.drop_index("ix_tracks_space_first_ts", table_name="tracks")
    op.drop_table("tracks")
