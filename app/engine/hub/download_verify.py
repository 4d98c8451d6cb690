"""Checking a download's bytes and putting the file in place durably. No Qt.

Hashing an existing file (a complete file found at the destination, or a part file whose
running hash was lost with the process) reports ``verifying`` progress, because a 20 GB file
takes a minute to hash and the user must see why nothing arrives meanwhile.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from app.engine.hub.download_meter import Meter
from app.engine.units import human_bytes

_HASH_CHUNK = 4 * 1024 * 1024


def hash_file(path: Path, hasher: hashlib._Hash, meter: Meter | None = None,
              check: Callable[[], None] = lambda: None) -> int:
    """Feed ``path``'s bytes into ``hasher``; ``check`` runs per block and may raise to stop.
    Returns the number of bytes hashed."""
    done = 0
    buffer = memoryview(bytearray(_HASH_CHUNK))
    with path.open("rb", buffering=0) as fh:
        while n := fh.readinto(buffer):
            check()
            hasher.update(buffer[:n])
            done += n
            if meter is not None:
                meter.report(done)
    if meter is not None:
        meter.report(done, force=True)
    return done


def matches(expected: str | None, hasher: hashlib._Hash) -> bool:
    """True when there is no sha256 to check against, or the hash is the expected one."""
    return not expected or hasher.hexdigest() == expected.strip().lower()


def durable_replace(part: Path, dest: Path) -> None:
    """Rename ``part`` to ``dest`` only after its bytes are on disk, so a power cut cannot
    leave a file of the right size and the wrong (zeroed) content under the final name."""
    fd = os.open(part, os.O_RDWR)  # Windows flushes only a handle open for writing
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    part.replace(dest)
    if os.name == "posix":  # the rename itself lives in the folder's entry list
        folder = os.open(dest.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def disk_full_message(missing: int) -> str:
    """The pause reason when the disk fills mid-download; ``missing`` is the bytes still due."""
    return f"disk full: free {human_bytes(max(missing, 0))}, then Resume"
