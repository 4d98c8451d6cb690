"""The Store's image files: images attached to user messages, kept in the ``images`` folder
beside the database and referenced from ``messages.images``.

A file is named by its content hash, so the same image attached to many messages (or chats) is
stored once. Files are written before the message that names them (a crash leaves at most an
unreferenced file, never a message pointing at nothing) and removed only after the transaction
that deleted their last message has committed.

A file written for a message that was never stored (Stop pressed or another chat opened while
Send saved it, the message's save failed, a crash) is named by nothing; `stray_image_sweep`
removes such files once they are old enough that no Send can still be about to store their
message. Saving an image that is already there refreshes its modification time for that reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import tempfile
import threading
import time
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.models.image_records import EXTENSIONS, MAX_NAME, MEDIA_TYPES, StoredImage
from app.models.store.database import Database
from app.models.tables import Message

HASH_CHARS = 32  # of the SHA-256 hex digest: 128 bits, collisions out of reach
# A stray file younger than this may belong to a Send saving right now: its message comes next.
STRAY_AGE_S = 3600.0
_SWEEP_CHUNK = 400  # names checked against the database per query
_PART_PREFIX = ".part-"  # a write in progress (or one a crash cut short)
_IMAGE_NAME = re.compile(
    rf"[0-9a-f]{{{HASH_CHARS}}}\.(?:{'|'.join(map(re.escape, EXTENSIONS.values()))})")
# Held while a file is checked and written (`save_image`) or checked and swept, so this process
# never removes a file between a Send's save and the message that names it.
_FILES_LOCK = threading.Lock()

# Every file name the remaining messages point at.
_REFERENCED = text(
    "SELECT DISTINCT json_extract(value, '$.file') FROM messages, json_each(messages.images) "
    "WHERE messages.images IS NOT NULL AND json_extract(value, '$.file') IN "
    "(SELECT value FROM json_each(:files))"
)


@dataclass(frozen=True)
class StraySweep:
    """What a sweep of stray image files removed so far."""

    files: int = 0
    bytes: int = 0

    def __add__(self, other: StraySweep) -> StraySweep:
        return StraySweep(self.files + other.files, self.bytes + other.bytes)


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
        with _FILES_LOCK:
            if not _refreshed(target, len(data)):
                folder.mkdir(parents=True, exist_ok=True)
                # Written under a temporary name and renamed: never a half-written image.
                handle, temporary = tempfile.mkstemp(dir=folder, prefix=_PART_PREFIX)
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

    def remove_stray_images(self, min_age_s: float = STRAY_AGE_S) -> StraySweep:
        """Delete the image files no message names and leftover partial writes, of those
        unchanged for ``min_age_s`` seconds; what was removed."""
        *_, removed = self.stray_image_sweep(min_age_s)  # each step yields the total so far
        return removed

    def stray_image_sweep(self, min_age_s: float = STRAY_AGE_S
                          ) -> Generator[StraySweep, None, StraySweep]:
        """`remove_stray_images` in steps: yields the total so far after each few hundred files
        (a caller may stop there) and returns the total. The folder is listed once; the names
        are checked against the messages a few hundred per query."""
        folder = self.images_folder
        cutoff = time.time() - min_age_s
        images, parts = _old_files(folder, cutoff)
        removed = _remove_old(folder, parts, cutoff)
        yield removed
        for start in range(0, len(images), _SWEEP_CHUNK):
            chunk = images[start:start + _SWEEP_CHUNK]
            with self._reading() as conn:
                named = set(conn.execute(_REFERENCED, {"files": json.dumps(chunk)}).scalars())
            removed += _remove_old(folder, [f for f in chunk if f not in named], cutoff)
            yield removed
        return removed


def _refreshed(target: Path, size: int) -> bool:
    """True when ``target`` already holds the image (same hash, same size); its modification
    time is then set to now, so a sweep counts it as just saved."""
    try:
        if not (target.is_file() and target.stat().st_size == size):
            return False
        os.utime(target)
    except OSError:
        return False  # rewritten instead: that also makes it new
    return True


def _old_files(folder: Path, cutoff: float) -> tuple[list[str], list[str]]:
    """The images folder's image files and partial writes unchanged since ``cutoff``. Names of
    any other shape are not Hearth's: they are left alone."""
    images: list[str] = []
    parts: list[str] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return images, parts  # no folder yet, or unreadable: nothing to sweep
    for entry in entries:
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISREG(info.st_mode) or info.st_mtime >= cutoff:
            continue
        if entry.name.startswith(_PART_PREFIX):
            parts.append(entry.name)
        elif _IMAGE_NAME.fullmatch(entry.name):
            images.append(entry.name)
    return images, parts


def _remove_old(folder: Path, names: Iterable[str], cutoff: float) -> StraySweep:
    """Delete those of ``names`` still unchanged since ``cutoff``: a Send may have saved one
    again since the folder was listed (its message may not be stored yet)."""
    files = size = 0
    for name in names:
        path = folder / name
        with _FILES_LOCK:
            try:
                info = path.lstat()
                if not stat.S_ISREG(info.st_mode) or info.st_mtime >= cutoff:
                    continue
                path.unlink()
            except OSError:
                continue  # gone already, or not ours to delete: try again at the next start
        files += 1
        size += info.st_size
    return StraySweep(files, size)
