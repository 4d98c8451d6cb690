"""A reply made with documents keeps its sources (issue 13, citations you can open).

- messages.sources: JSON, NULL for every other message (so an upgrade changes no message).
  ``{"mode", "explanation", "citations": [{"number", "document_path", "page", "start",
  "text", "heading", "score"}]}``: which document mode the reply was made in, the sentence
  telling the user why, and the passages its [n] refer to (see
  app.models.document_records.ReplySources), so a citation opens even after the document
  has changed or gone.

Revision ID: 0010_message_sources
Revises: 0009_documents
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_message_sources"
down_revision: str | None = "0009_documents"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("sources", sa.JSON(), nullable=True))


def downgrade() -> None:
    # Native DROP COLUMN, not a batch copy: rebuilding a table would cascade-delete messages.
    op.drop_column("messages", "sources")
