"""Chats can offer tools, and keep the calls their replies made and what each call gave back
(issue 12, tools in the window).

- chats.tools_enabled: the per-chat "Tools" switch. Off for every existing chat, so an upgrade
  changes no chat's behaviour.
- messages.tool: JSON, NULL for ordinary messages. An assistant turn that called tools holds
  ``{"calls": [{"id", "name", "arguments"}]}``; a "tool" turn (a new role) holds the call it
  answers ``{"call_id", "name", "arguments", "source", "decision", "is_error"}``, where
  decision is what the user said: "allowed", "always" (run without asking) or "denied".

Revision ID: 0008_chat_tools
Revises: 0007_chat_response_schema
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_chat_tools"
down_revision: str | None = "0007_chat_response_schema"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("chats", sa.Column("tools_enabled", sa.Boolean(), nullable=False,
                                     server_default=sa.false()))
    op.add_column("messages", sa.Column("tool", sa.JSON(), nullable=True))


def downgrade() -> None:
    # Tool turns mean nothing to an older Hearth: they go, and what followed them is re-parented
    # onto the turn before, so the rest of each chat stays readable.
    connection = op.get_bind()
    # One level per pass: several tool turns in a row need several (each pass ends nearer a root).
    while connection.execute(sa.text(
            "UPDATE messages SET parent_id = (SELECT t.parent_id FROM messages AS t "
            "WHERE t.id = messages.parent_id) WHERE parent_id IN "
            "(SELECT id FROM messages WHERE role = 'tool')")).rowcount:
        pass
    op.execute("DELETE FROM messages WHERE role = 'tool'")
    # Native DROP COLUMN, not a batch copy: rebuilding a table would cascade-delete messages.
    op.drop_column("messages", "tool")
    op.drop_column("chats", "tools_enabled")
