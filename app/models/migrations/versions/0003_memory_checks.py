"""Memory checks: the fit estimate beside the memory a load really took, one row per measurement.

Revision ID: 0003_memory_checks
Revises: 0002_downloads
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_memory_checks"
down_revision: str | None = "0002_downloads"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "memory_checks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("model_path", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("n_ctx", sa.Integer(), nullable=False),
        sa.Column("kv_type", sa.String(16), nullable=False),
        sa.Column("gpu_layers", sa.Integer(), nullable=False),
        sa.Column("estimated_ram", sa.BigInteger(), nullable=False),
        sa.Column("actual_ram", sa.BigInteger(), nullable=False),
        sa.Column("estimated_vram", sa.BigInteger(), nullable=True),
        sa.Column("actual_vram", sa.BigInteger(), nullable=True),
        # False: measured right after loading; True: after the first reply (weights read,
        # KV cache and compute buffers touched), the fairer comparison.
        sa.Column("after_reply", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_index("ix_memory_checks_model_path", "memory_checks", ["model_path", "id"])


def downgrade() -> None:
    op.drop_index("ix_memory_checks_model_path", table_name="memory_checks")
    op.drop_table("memory_checks")
