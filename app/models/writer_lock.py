"""Which replies are still being written: each process that streams a reply holds an OS file lock.

Several Hearth processes (window, `hearth chat`, server) share one database. A reply left in
"streaming" is interrupted only if the process writing it is gone; an OS lock is released by the
kernel when its process dies, however it dies, so a lock that can be taken means a dead writer.
The lock is per process (not per reply) and is taken before the first streaming row is inserted,
so no other process can see such a row without a live lock behind it.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from pathlib import Path

from filelock import FileLock, Timeout

log = logging.getLogger(__name__)

_WRITER_ID = re.compile(r"[0-9a-f]{32}")  # ids come from the database: never trust them as paths


def lock_folder(database: str | None) -> Path | None:
    """Where the writer locks of a database file live (None for an in-memory database)."""
    if not database or database == ":memory:":
        return None
    path = Path(database)
    return path.with_name(path.name + "-writers")


class WriterLock:
    """This process's claim on the replies it streams into one database."""

    def __init__(self, folder: Path | None) -> None:
        self.writer_id = uuid.uuid4().hex
        self._folder = folder
        self._lock: FileLock | None = None
        self._guard = threading.Lock()  # any thread may add the first streaming reply

    def claim(self) -> str | None:
        """Hold this process's lock (taken once) and return the id to store on its replies."""
        if self._folder is None:
            return None
        with self._guard:
            if self._lock is None:
                self._folder.mkdir(parents=True, exist_ok=True)
                # thread_local=False: the lock belongs to the process, whichever thread writes.
                lock = FileLock(self._folder / f"{self.writer_id}.lock", thread_local=False)
                lock.acquire(timeout=0)  # a fresh random name: nobody else can hold it
                self._lock = lock
        return self.writer_id

    def is_alive(self, writer_id: str | None) -> bool:
        """Whether the process that wrote `writer_id` on a reply still holds its lock."""
        if writer_id == self.writer_id:
            return self._lock is not None
        if self._folder is None or writer_id is None or not _WRITER_ID.fullmatch(writer_id):
            return False
        path = self._folder / f"{writer_id}.lock"
        if not path.exists():
            return False
        probe = FileLock(path, thread_local=False)
        try:
            probe.acquire(timeout=0)
        except Timeout:
            return True
        probe.release()  # the writer is gone; its lock file goes with this release
        path.unlink(missing_ok=True)
        return False

    def release(self) -> None:
        with self._guard:
            if self._lock is not None:
                self._lock.release()
                self._lock = None
                if self._folder is not None:
                    (self._folder / f"{self.writer_id}.lock").unlink(missing_ok=True)
