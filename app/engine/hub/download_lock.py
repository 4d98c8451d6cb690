"""One writer per ``.part`` file across every Hearth process on a data folder. No Qt.

The window, `hearth get` and the server may share one models folder. Whoever writes, re-hashes,
renames or deletes a part file holds ``<name>.part.lock`` (an OS file lock through
``filelock``, released by the kernel if the process dies), so a second downloader of the same
file never appends to bytes another process is writing.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from filelock import FileLock, Timeout

from app.engine.hub.part_origin import drop_origin


def lock_path(part: Path) -> Path:
    return part.with_name(part.name + ".lock")


class PartLock:
    """A non-blocking lock on one part file; another process holding it means "busy"."""

    def __init__(self, part: Path) -> None:
        self.path = lock_path(part)
        # thread_local=False: the job that takes it may be finished (released) by another call
        # of the manager; the manager itself makes sure only one job of a process holds it.
        self._lock = FileLock(str(self.path), timeout=0, thread_local=False)

    @property
    def held(self) -> bool:
        return self._lock.is_locked

    def try_acquire(self) -> bool:
        """Take the lock now; False when another process (or manager) holds it."""
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            return False
        return True

    def release(self) -> None:
        """Release, removing the lock file so none is left beside the models. Unlinking while
        still holding it is safe: filelock re-checks, after locking, that the inode it locked
        is still linked, so a waiter that opened the old file tries again."""
        if not self._lock.is_locked:
            return
        if os.name != "nt":  # Windows cannot unlink an open file; filelock removes it there
            with contextlib.suppress(OSError):
                self.path.unlink(missing_ok=True)
        self._lock.release()


def remove_part(part: Path) -> bool:
    """Delete ``part`` (and what describes it) unless another process is writing it."""
    lock = PartLock(part)
    if not lock.try_acquire():
        return False
    try:
        part.unlink(missing_ok=True)
        drop_origin(part)
    finally:
        lock.release()
    return True
