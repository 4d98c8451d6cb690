"""Chats keep a response schema and a structured-output switch (issue 12, in the window).

- chats.response_schema: the JSON schema text the user wrote for this chat's replies, kept as
  typed (even while it does not parse) so nothing the user wrote is lost; NULL: none written.
- chats.structured_output: whether replies are constrained to that schema. Off for every
  existing chat, so an upgrade changes no chat's behaviour.

Revision ID: 0007_chat_response_schema
Revises: 0006_model_info_json
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_chat_response_schema"
down_revision: str | None = "0006_model_info_json"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("chats", sa.Column("response_schema", sa.Text(), nullable=True))
    op.add_column("chats", sa.Column("structured_output", sa.Boolean(), nullable=False,
                                     server_default=sa.false()))


def downgrade() -> None:
    # Native DROP COLUMN, not a batch copy: rebuilding `chats` would cascade-delete messages.
    op.drop_column("chats", "structured_output")
    op.drop_column("chats", "response_schema")
