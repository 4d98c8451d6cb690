"""The images attached to a user message, as the Store keeps them: a file in the data folder's
``images`` folder (named by content hash, so one image attached twice is stored once) and what
the window and exports show without opening it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# The formats load_image reads, by Pillow's format name: the stored file's extension and type.
EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "GIF": "gif"}
MEDIA_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp",
               "GIF": "image/gif"}
MAX_NAME = 200  # characters of the user's file name kept


@dataclass(frozen=True)
class StoredImage:
    """One attached image: ``file`` is its name in the images folder (hash + extension),
    ``name`` the user's own file name (from outside: shown as plain text only)."""

    file: str
    name: str
    size: int  # bytes
    media_type: str
    width: int
    height: int

    def path_in(self, folder: Path) -> Path:
        return folder / self.file

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> StoredImage | None:
        """None for a damaged entry (a hand-edited or half-written database)."""
        if not isinstance(data, dict):
            return None
        file = data.get("file")
        # Only a bare file name: a damaged row must not point outside the images folder.
        if not isinstance(file, str) or not file or Path(file).name != file or file[0] == ".":
            return None
        try:
            return cls(file, str(data.get("name") or file)[:MAX_NAME], int(data.get("size", 0)),
                       str(data.get("media_type", "")), int(data.get("width", 0)),
                       int(data.get("height", 0)))
        except (TypeError, ValueError):
            return None


def images_from_json(text: str | None) -> tuple[StoredImage, ...]:
    """The images of a message's ``images`` column (none for NULL or damaged JSON)."""
    if not text:
        return ()
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return ()
    if not isinstance(data, list):
        return ()
    return tuple(image for image in map(StoredImage.from_dict, data) if image is not None)
