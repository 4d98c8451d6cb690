"""Document collections for chatting with files (issue 13): collections, their documents, the
documents' chunks with embedding vectors, an FTS5 index over chunk text, and which chats use
which collections.

- collections: one embedding model and one chunking setting each (changing either means
  re-indexing). ``generation`` grows with every change to the collection's chunks, so a cached
  vector matrix (app.models.store.retrieval) knows, with one cheap read, that it is stale, even
  when another Hearth process made the change.
- documents: one file in a collection, with what incremental indexing compares (content hash,
  mtime, size) and its outcome: "indexed" (chunk_count chunks) or "failed" (``error`` says why).
- chunks: a passage with its place in the file (page, heading, character start) and its
  vector as little-endian float32 bytes (``dimensions`` floats). collection_id is kept on the
  chunk too, so retrieval filters one collection without joining documents.
- chunks_fts: external-content FTS5 over chunks.text, kept in step by triggers (as
  messages_fts is). Tokenizer: porter over unicode61 — document questions use other word forms
  than the text ("sits" / "sit", "cats" / "cat"), and stemming lets BM25 match them; porter
  only stems ASCII English words, so other languages get plain unicode61 tokens.
- chat_collections: the collections a chat uses (several allowed).

Deleting a collection deletes its documents, their chunks, and (through the chunk trigger)
their FTS rows; deleting a chat or collection drops its attachments.

Revision ID: 0009_documents
Revises: 0008_chat_tools
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_documents"
down_revision: str | None = "0008_chat_tools"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FTS_STATEMENTS = (
    "CREATE VIRTUAL TABLE chunks_fts USING fts5("
    "text, content='chunks', content_rowid='id', "
    "tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER chunks_fts_ai AFTER INSERT ON chunks BEGIN "
    "INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER chunks_fts_ad AFTER DELETE ON chunks BEGIN "
    "INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text); END",
    "CREATE TRIGGER chunks_fts_au AFTER UPDATE OF text ON chunks BEGIN "
    "INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text); "
    "INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text); END",
)


def upgrade() -> None:
    op.create_table(
        "collections",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("embedding_model", sa.Text(), nullable=False),
        sa.Column("chunk_size", sa.Integer(), nullable=False),
        sa.Column("chunk_overlap", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "documents",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("collection_id", sa.Integer(),
                  sa.ForeignKey("collections.id", ondelete="CASCADE"), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(128), nullable=True),
        sa.Column("mtime", sa.Float(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("chunk_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("indexed_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("collection_id", "path", name="uq_documents_collection_path"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "chunks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("document_id", sa.Integer(),
                  sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("page", sa.Integer(), nullable=True),
        sa.Column("heading", sa.Text(), nullable=True),
        sa.Column("start", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("dimensions", sa.Integer(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_chunks_document_id", "chunks", ["document_id", "position"])
    op.create_index("ix_chunks_collection_id", "chunks", ["collection_id", "id"])
    for statement in FTS_STATEMENTS:
        op.execute(statement)
    op.create_table(
        "chat_collections",
        sa.Column("chat_id", sa.Integer(), sa.ForeignKey("chats.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("collection_id", sa.Integer(),
                  sa.ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True),
    )
    op.create_index("ix_chat_collections_collection_id", "chat_collections", ["collection_id"])


def downgrade() -> None:
    op.drop_index("ix_chat_collections_collection_id", table_name="chat_collections")
    op.drop_table("chat_collections")
    for trigger in ("chunks_fts_au", "chunks_fts_ad", "chunks_fts_ai"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.execute("DROP TABLE IF EXISTS chunks_fts")
    op.drop_index("ix_chunks_collection_id", table_name="chunks")
    op.drop_index("ix_chunks_document_id", table_name="chunks")
    op.drop_table("chunks")
    op.drop_table("documents")
    op.drop_table("collections")
