"""The Store's image files: images attached to user messages, kept in the ``images`` folder
beside the database and referenced from ``messages.images``.

A file is named by its content hash, so the same image attached to many messages (or chats) is
stored once. Files are written before the message that names them (a crash leaves at most an
unreferenced file, never a message pointing at nothing) and removed only after the transaction
that deleted their last message has committed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.models.image_records import EXTENSIONS, MAX_NAME, MEDIA_TYPES, StoredImage
from app.models.store.database import Database
from app.models.tables import Message

HASH_CHARS = 32  # of the SHA-256 hex digest: 128 bits, collisions out of reach

# Every file name the remaining messages point at.
_REFERENCED = text(
    "SELECT DISTINCT json_extract(value, '$.file') FROM messages, json_each(messages.images) "
    "WHERE messages.images IS NOT NULL AND json_extract(value, '$.file') IN "
    "(SELECT value FROM json_each(:files))"
)


class ImageFiles(Database):
    """Store mixin: the files of attached images."""

    @property
    def images_folder(self) -> Path:
        return Path(str(self._engine.url.database)).parent / "images"

    def save_image(self, data: bytes, name: str, fmt: str, width: int, height: int
                   ) -> StoredImage:
        """Keep an image's bytes (already checked by `load_image`; ``fmt`` is its format
        there: PNG, JPEG, WEBP or GIF) and return what a message stores for it. The same bytes
        give the same file, written once. OSError when the folder cannot be written."""
        if fmt not in EXTENSIONS:
            raise ValueError(f"unsupported image format {fmt!r}")
        digest = hashlib.sha256(data).hexdigest()[:HASH_CHARS]
        file = f"{digest}.{EXTENSIONS[fmt]}"
        folder = self.images_folder
        target = folder / file
        if not (target.is_file() and target.stat().st_size == len(data)):
            folder.mkdir(parents=True, exist_ok=True)
            # Written under a temporary name and renamed: never a half-written image.
            handle, temporary = tempfile.mkstemp(dir=folder, prefix=".part-")
            try:
                with os.fdopen(handle, "wb") as f:
                    f.write(data)
                os.replace(temporary, target)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        return StoredImage(file, (name or file)[:MAX_NAME], len(data), MEDIA_TYPES[fmt],
                           width, height)

    def _image_files(self, session: Session, condition: Any) -> set[str]:
        """The image files the messages matching ``condition`` name (before deleting them)."""
        files: set[str] = set()
        rows = session.execute(select(Message.images).where(condition,
                                                            Message.images.is_not(None)))
        for (images,) in rows:
            for entry in images if isinstance(images, list) else ():
                image = StoredImage.from_dict(entry)
                if image is not None:
                    files.add(image.file)
        return files

    def _unreferenced(self, session: Session, files: Iterable[str]) -> set[str]:
        """Of ``files``, those no remaining message names (call after the delete)."""
        wanted = set(files)
        if not wanted:
            return set()
        kept = set(session.execute(_REFERENCED, {"files": json.dumps(sorted(wanted))}).scalars())
        return wanted - kept

    def _remove_files(self, files: Iterable[str]) -> None:
        """Delete image files once their last message is gone (after the commit)."""
        folder = self.images_folder
        for file in files:
            try:
                (folder / file).unlink(missing_ok=True)
            except OSError:
                pass  # an unreadable folder: a file left behind costs space, not data
