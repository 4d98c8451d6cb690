"""A user message keeps the images attached to it (issue 14, images in the chat).

- messages.images: JSON, NULL for every message without images (so an upgrade changes no
  message). ``[{"file", "name", "size", "media_type", "width", "height"}]``: ``file`` is the
  image's name in the data folder's ``images`` folder (its content hash and extension, so an
  image attached twice is stored once); the rest is what the export and the window show
  without opening the file (see app.models.image_records.StoredImage).

Revision ID: 0011_message_images
Revises: 0010_message_sources
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_message_images"
down_revision: str | None = "0010_message_sources"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("images", sa.JSON(), nullable=True))


def downgrade() -> None:
    # Native DROP COLUMN, not a batch copy: rebuilding a table would cascade-delete messages.
    op.drop_column("messages", "images")
