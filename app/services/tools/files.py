"""Read-only access to the folders the user granted to tools (the read_file built-in).

The granted folders are a Store setting. A requested path is resolved (symlinks and `..`
followed) and must land inside a granted folder's own resolved path; the file is then opened
without following a last-moment symlink and checked to be the same regular file, so swapping
a path for a link between the check and the read does not reach outside.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

GRANTED_FOLDERS_KEY = "tools.granted_folders"
MAX_FILE_BYTES = 256 * 1024
MAX_LISTING = 200
_SNIFF_BYTES = 8192


class FileAccessError(ValueError):
    """A path a tool may not read, or cannot; the message is for the model and the user."""


class GrantedFolders:
    """The folders the user shared with tools, kept in Store settings."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def list(self) -> list[Path]:
        value = self._store.get_setting(GRANTED_FOLDERS_KEY, [])
        if not isinstance(value, list):
            return []
        return [Path(item) for item in value if isinstance(item, str) and item]

    def grant(self, folder: Path | str) -> Path:
        """Share a folder (stored resolved); ValueError when it is not an existing folder."""
        resolved = Path(folder).expanduser().resolve()
        if not resolved.is_dir():
            raise ValueError(f"not a folder: {folder}")
        current = self.list()
        if resolved not in current:
            self._store.set_setting(GRANTED_FOLDERS_KEY, [str(p) for p in [*current, resolved]])
        return resolved

    def revoke(self, folder: Path | str) -> bool:
        target = Path(folder).expanduser().resolve()
        current = self.list()
        kept = [p for p in current if p.resolve() != target]
        if len(kept) == len(current):
            return False
        self._store.set_setting(GRANTED_FOLDERS_KEY, [str(p) for p in kept])
        return True


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def resolve_granted(requested: str, folders: list[Path]) -> Path:
    """The real path of ``requested`` if it lies inside a granted folder; FileAccessError else.

    A relative path is looked up in each granted folder in turn.
    """
    roots = [folder.resolve() for folder in folders if folder.is_dir()]
    if not roots:
        raise FileAccessError("no folders are shared with tools; the user can grant one in "
                              "the tool settings")
    if not requested or "\x00" in requested:
        raise FileAccessError("the path is empty or not valid")
    candidate = Path(requested).expanduser()
    candidates = [candidate] if candidate.is_absolute() else [root / candidate for root in roots]
    for path in candidates:
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError):
            continue
        if _inside(real, roots):
            return real
        raise FileAccessError(f"{requested} is outside the folders shared with tools")
    if candidate.is_absolute() and not _inside(Path(os.path.normpath(candidate)), roots):
        raise FileAccessError(f"{requested} is outside the folders shared with tools")
    raise FileAccessError(f"no such file or folder: {requested}")


def _listing(folder: Path) -> str:
    entries = sorted(folder.iterdir(), key=lambda p: p.name)
    lines = [f"{e.name}/" if e.is_dir() else e.name for e in entries[:MAX_LISTING]]
    if len(entries) > MAX_LISTING:
        lines.append(f"[{len(entries) - MAX_LISTING} more entries not shown]")
    return f"Folder {folder} ({len(entries)} entries):\n" + "\n".join(lines)


def read_granted(requested: str, folders: list[Path]) -> str:
    """The text of a file (or a folder's listing) inside the granted folders."""
    real = resolve_granted(requested, folders)
    if real.is_dir():
        return _listing(real)
    expected = real.stat()
    try:
        # O_NONBLOCK: a FIFO must not hang the call; O_NOFOLLOW: no link swapped in since.
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise FileAccessError(f"cannot open {requested}: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise FileAccessError(f"{requested} is not a regular file")
        if (info.st_dev, info.st_ino) != (expected.st_dev, expected.st_ino):
            raise FileAccessError(f"{requested} changed while it was being opened")
        data = handle.read(MAX_FILE_BYTES + 1)
    if b"\x00" in data[:_SNIFF_BYTES]:
        raise FileAccessError(f"{requested} is a binary file; only text files can be read")
    cut = len(data) > MAX_FILE_BYTES
    data = data[:MAX_FILE_BYTES]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # The cut may split the last character; anything earlier means it isn't UTF-8 text.
        if not (cut and exc.start >= len(data) - 3):
            raise FileAccessError(f"{requested} is not UTF-8 text") from exc
        text = data[: exc.start].decode("utf-8")
    if cut:
        text += f"\n[file truncated: {info.st_size:,} bytes, showing the first {MAX_FILE_BYTES:,}]"
    return text

