"""Messages form a tree (regenerate and edit keep the old branch); replies name their writer;
the search index holds a reply only once it has stopped streaming.

- messages.parent_id: the message this one answers or follows (NULL for a chat's first).
  No foreign key: SQLite would cascade a deleted chain one trigger level per message and stop
  at its recursion limit; the Store deletes subtrees itself.
- chats.leaf_id: the last message of the branch on screen; the branch is the path up to the root.
- messages.writer: the id of the process streaming the reply (see app.models.writer_lock).
- FTS triggers: a streaming reply grows by many small writes; indexing it on each would cost
  O(length) per write, so it is indexed once, when it leaves "streaming".

Existing chats become single branches: each message's parent is the one before it.

Revision ID: 0005_message_tree
Revises: 0004_quantize
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_message_tree"
down_revision: str | None = "0004_quantize"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_TRIGGERS = (
    "CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN "
    "INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content); END",
    "CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages BEGIN "
    "INSERT INTO messages_fts(messages_fts, rowid, content) "
    "VALUES ('delete', old.id, old.content); END",
    "CREATE TRIGGER messages_fts_au AFTER UPDATE OF content ON messages BEGIN "
    "INSERT INTO messages_fts(messages_fts, rowid, content) "
    "VALUES ('delete', old.id, old.content); "
    "INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content); END",
)
# A row is in the index exactly when its status is not 'streaming'. The update trigger is one
# trigger so its removal always runs before its insertion (separate triggers run in no set order).
_NEW_TRIGGERS = (
    "CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages "
    "WHEN new.status != 'streaming' BEGIN "
    "INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content); END",
    "CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages "
    "WHEN old.status != 'streaming' BEGIN "
    "INSERT INTO messages_fts(messages_fts, rowid, content) "
    "VALUES ('delete', old.id, old.content); END",
    "CREATE TRIGGER messages_fts_au AFTER UPDATE OF content, status ON messages BEGIN "
    "INSERT INTO messages_fts(messages_fts, rowid, content) "
    "SELECT 'delete', old.id, old.content WHERE old.status != 'streaming' "
    "AND (new.status = 'streaming' OR old.content IS NOT new.content); "
    "INSERT INTO messages_fts(rowid, content) "
    "SELECT new.id, new.content WHERE new.status != 'streaming' "
    "AND (old.status = 'streaming' OR old.content IS NOT new.content); END",
)
_TRIGGER_NAMES = ("messages_fts_ai", "messages_fts_ad", "messages_fts_au")


def _replace_triggers(statements: Sequence[str]) -> None:
    for name in _TRIGGER_NAMES:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    for statement in statements:
        op.execute(statement)


def upgrade() -> None:
    op.add_column("messages", sa.Column("parent_id", sa.Integer(), nullable=True))
    op.add_column("messages", sa.Column("writer", sa.String(32), nullable=True))
    op.add_column("chats", sa.Column("leaf_id", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE messages SET parent_id = (SELECT MAX(p.id) FROM messages AS p "
        "WHERE p.chat_id = messages.chat_id AND p.id < messages.id)"
    )
    op.execute("UPDATE chats SET leaf_id = (SELECT MAX(id) FROM messages WHERE chat_id = chats.id)")
    op.create_index("ix_messages_chat_id_parent_id", "messages", ["chat_id", "parent_id", "id"])
    # Replies cut off while streaming were indexed by the old triggers; the new ones index them
    # when they end, so take them out now or they would be in the index twice.
    op.execute(
        "INSERT INTO messages_fts(messages_fts, rowid, content) "
        "SELECT 'delete', id, content FROM messages WHERE status = 'streaming'"
    )
    _replace_triggers(_NEW_TRIGGERS)


def downgrade() -> None:
    op.execute(
        "INSERT INTO messages_fts(rowid, content) "
        "SELECT id, content FROM messages WHERE status = 'streaming'"
    )
    _replace_triggers(())
    op.drop_index("ix_messages_chat_id_parent_id", table_name="messages")
    op.drop_column("messages", "writer")
    op.drop_column("messages", "parent_id")
    op.drop_column("chats", "leaf_id")
    _replace_triggers(_OLD_TRIGGERS)
