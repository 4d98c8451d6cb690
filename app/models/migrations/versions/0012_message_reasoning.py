"""A reply's reasoning is kept apart from its answer (issue 15, reasoning done right).

- messages.reasoning: TEXT, NULL for every message without reasoning (so an upgrade changes no
  message). Filled when a reply ends: its `<think>` text (the template-opened form too) is
  split off, and ``content`` keeps the answer alone. Rows written before this keep their
  reasoning inside ``content``; the window and the history still split it there.

Revision ID: 0012_message_reasoning
Revises: 0011_message_images
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_message_reasoning"
down_revision: str | None = "0011_message_images"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("reasoning", sa.Text(), nullable=True))


def downgrade() -> None:
    # Native DROP COLUMN, not a batch copy: rebuilding a table would cascade-delete messages.
    op.drop_column("messages", "reasoning")
