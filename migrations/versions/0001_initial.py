"""Initial catalog: cameras, sources, keyframes, appearances.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Kept literal (not imported from tables.py) so this revision never changes after release.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Tz = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the four catalog tables and their indexes."""
    op.create_table(
        "cameras",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", Tz, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cameras")),
    )
    op.create_table(
        "sources",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("camera_id", sa.Text(), nullable=False),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("start_ts", Tz, nullable=False),
        sa.Column("fps", sa.Float(), nullable=False),
        sa.Column("frames_read", sa.BigInteger(), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("created_at", Tz, nullable=False),
        sa.Column("updated_at", Tz, nullable=False),
        sa.ForeignKeyConstraint(
            ["camera_id"], ["cameras.id"], name=op.f("fk_sources_camera_id_cameras")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sources")),
        sa.UniqueConstraint(
            "camera_id", "fingerprint", name=op.f("uq_sources_camera_id_fingerprint")
        ),
    )
    op.create_table(
        "keyframes",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("camera_id", sa.Text(), nullable=False),
        sa.Column("source_id", sa.BigInteger(), nullable=False),
        sa.Column("frame_index", sa.Integer(), nullable=False),
        sa.Column("ts", Tz, nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("image_path", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["camera_id"], ["cameras.id"], name=op.f("fk_keyframes_camera_id_cameras")
        ),
        sa.ForeignKeyConstraint(
            ["source_id"], ["sources.id"], name=op.f("fk_keyframes_source_id_sources")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_keyframes")),
        sa.UniqueConstraint(
            "source_id", "frame_index", name=op.f("uq_keyframes_source_id_frame_index")
        ),
    )
    op.create_index("ix_keyframes_camera_id_ts", "keyframes", ["camera_id", "ts"])
    op.create_table(
        "appearances",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("keyframe_id", sa.BigInteger(), nullable=False),
        sa.Column("camera_id", sa.Text(), nullable=False),
        sa.Column("ts", Tz, nullable=False),
        sa.Column("frame_index", sa.Integer(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("x1", sa.Float(), nullable=False),
        sa.Column("y1", sa.Float(), nullable=False),
        sa.Column("x2", sa.Float(), nullable=False),
        sa.Column("y2", sa.Float(), nullable=False),
        sa.Column("space", sa.Text(), nullable=False),
        sa.Column("model_id", sa.Text(), nullable=False),
        sa.Column("crop_path", sa.Text(), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.CheckConstraint("space IN ('person', 'general')", name=op.f("ck_appearances_space")),
        sa.ForeignKeyConstraint(
            ["keyframe_id"],
            ["keyframes.id"],
            name=op.f("fk_appearances_keyframe_id_keyframes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appearances")),
    )
    op.create_index("ix_appearances_camera_id_ts", "appearances", ["camera_id", "ts"])
    op.create_index("ix_appearances_space_ts", "appearances", ["space", "ts"])
    op.create_index("ix_appearances_label_ts", "appearances", ["label", "ts"])
    op.create_index("ix_appearances_keyframe_id", "appearances", ["keyframe_id"])


def downgrade() -> None:
    """Drop everything 0001 created (children first)."""
    op.drop_table("appearances")
    op.drop_table("keyframes")
    op.drop_table("sources")
    op.drop_table("cameras")
