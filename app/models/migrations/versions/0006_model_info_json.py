"""A model file's GGUF header values become one JSON value, `model_files.info`.

Until now each ModelInfo field was a column of model_files, so every field added to ModelInfo
needed a migration. Only what queries look up keeps a column (id, path, source, added_at); the
rest moves into `info`, a JSON object keyed by ModelInfo field name. The column list below is
this revision's own copy: a migration must not change when ModelInfo does.

Revision ID: 0006_model_info_json
Revises: 0005_message_tree
Create Date: 2026-11-30
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0006_model_info_json"
down_revision: str | None = "0005_message_tree"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The 0001 columns that move into `info`: (name, type, nullable, value when `info` lacks it).
_COLUMNS: tuple[tuple[str, Any, bool, Any], ...] = (
    ("file_size", sa.BigInteger(), False, 0),
    ("architecture", sa.String(64), False, ""),
    ("name", sa.Text(), False, ""),
    ("parameter_count", sa.BigInteger(), False, 0),
    ("file_type", sa.String(32), False, ""),
    ("context_length", sa.Integer(), False, 0),
    ("block_count", sa.Integer(), False, 0),
    ("embedding_length", sa.Integer(), False, 0),
    ("head_count", sa.Integer(), False, 0),
    ("head_count_kv", sa.Integer(), False, 0),
    ("has_chat_template", sa.Boolean(), False, False),
    ("chat_template", sa.Text(), True, None),
    ("sliding_window", sa.Integer(), True, None),
    ("layer_tensor_bytes", sa.JSON(), False, []),
    ("other_tensor_bytes", sa.BigInteger(), False, 0),
)
_NAMES = [name for name, *_ in _COLUMNS]


def _int_list(raw: Any) -> list[int]:
    """The stored layer sizes (JSON text) as a list; an unreadable value becomes empty rather
    than stopping the upgrade, because the next import of the file rewrites it anyway."""
    try:
        value = json.loads(raw) if isinstance(raw, str | bytes) else raw
    except ValueError:
        return []
    return [int(n) for n in value] if isinstance(value, list) else []


def upgrade() -> None:
    op.add_column("model_files", sa.Column("info", sa.JSON(), nullable=True))
    conn = op.get_bind()
    rows = conn.execute(sa.text(f"SELECT id, {', '.join(_NAMES)} FROM model_files")).mappings()
    updates = []
    for row in rows.all():
        info = {name: row[name] for name in _NAMES}
        info["has_chat_template"] = bool(row["has_chat_template"])
        info["layer_tensor_bytes"] = _int_list(row["layer_tensor_bytes"])
        updates.append({"id": row["id"], "info": json.dumps(info)})
    if updates:
        conn.execute(sa.text("UPDATE model_files SET info = :info WHERE id = :id"), updates)
    with op.batch_alter_table("model_files") as batch:
        batch.alter_column("info", existing_type=sa.JSON(), nullable=False)
        for name in _NAMES:
            batch.drop_column(name)


def downgrade() -> None:
    with op.batch_alter_table("model_files") as batch:
        for name, type_, _nullable, _default in _COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
    conn = op.get_bind()
    updates = []
    for row_id, raw in conn.execute(sa.text("SELECT id, info FROM model_files")).all():
        try:
            info = json.loads(raw)
        except (TypeError, ValueError):
            info = None
        info = info if isinstance(info, dict) else {}
        values = {name: default if info.get(name) is None else info[name]
                  for name, _type, _null, default in _COLUMNS}
        values["has_chat_template"] = bool(values["has_chat_template"])
        values["layer_tensor_bytes"] = json.dumps(_int_list(values["layer_tensor_bytes"]))
        updates.append({"id": row_id, **values})
    if updates:
        assignments = ", ".join(f"{name} = :{name}" for name in _NAMES)
        conn.execute(sa.text(f"UPDATE model_files SET {assignments} WHERE id = :id"), updates)
    with op.batch_alter_table("model_files") as batch:
        for name, type_, nullable, _default in _COLUMNS:
            if not nullable:
                batch.alter_column(name, existing_type=type_, nullable=False)
        batch.drop_column("info")
