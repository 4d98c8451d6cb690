"""Write a download's received blocks on a second thread while the next block arrives. No Qt."""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import queue
import sys
import threading
from collections.abc import Callable
from typing import Any

CHUNK = 1024 * 1024  # large enough to amortise Python per-read costs, small enough for L2
WRITEBACK_EVERY = 32 * 1024 * 1024  # bytes written between early writeback requests


def _writeback_starter() -> Callable[[int, int, int], None] | None:
    """Linux's ``sync_file_range(SYNC_FILE_RANGE_WRITE)``: start writing a range to disk
    without waiting, so the fsync before the rename finds little left to do (without it that
    fsync wrote the whole file at the end, about a fifth of the transfer time on loopback)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        call = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int
    write = 2  # SYNC_FILE_RANGE_WRITE

    def start(fd: int, offset: int, length: int) -> None:
        call(fd, offset, length, write)  # advisory: a failure only leaves more for fsync

    return start


_start_writeback = _writeback_starter()


class HashingWriter:
    """Write received blocks on a second thread while the next block arrives and is hashed.

    Hashing and writing on the receiving thread would halve loopback throughput; both release
    the GIL on large buffers, so the two threads really overlap. The blocks are a few
    preallocated buffers that go round between the two threads (``take`` → ``put`` → back to
    the free queue), so no received byte is copied in Python: a copy per block cost about a
    tenth of the throughput on loopback. Leaving the block waits until every received byte is
    on disk and in the hash, so the part file and the hash always agree.
    """

    _BUFFERS = 4

    def __init__(self, out: Any, hasher: hashlib._Hash, chunk: int = CHUNK) -> None:
        self._out, self._hasher = out, hasher
        self._free: queue.Queue[memoryview] = queue.Queue()
        for _ in range(self._BUFFERS):
            self._free.put(memoryview(bytearray(chunk)))
        self._blocks: queue.Queue[tuple[memoryview, int] | None] = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="hearth-download-write",
                                        daemon=True)

    def __enter__(self) -> HashingWriter:
        self._position = self._flushed = self._out.tell()
        self._thread.start()
        return self

    def take(self) -> memoryview:
        """A free buffer to receive into (waits while all of them are queued for writing)."""
        if self._error is not None:
            raise self._error
        return self._free.get()

    def give_back(self, view: memoryview) -> None:
        self._free.put(view)

    def put(self, view: memoryview, n: int) -> None:
        """Hash the first ``n`` bytes of ``view`` (from `take`) here and queue them for writing.

        Hashing here rather than on the writer splits the work evenly: receiving into a buffer
        costs less than writing it, and with hash and write together the writer thread was the
        bottleneck. The hash may run ahead of the file only until ``__exit__`` (which waits for
        the writes); a failed write ends the transfer, and the next one re-hashes the part file.
        """
        self._hasher.update(view[:n])
        self._blocks.put((view, n))

    def __exit__(self, *exc: object) -> None:
        self._blocks.put(None)
        self._thread.join()
        if self._error is not None:
            # Even over a dropped connection: the hash now holds bytes the file lacks, so this
            # transfer must not go on with it (the job ends; the next one re-hashes the part).
            raise self._error

    def _run(self) -> None:
        while (item := self._blocks.get()) is not None:
            view, n = item
            if self._error is None:
                try:
                    block, written = view[:n], 0
                    while written < n:  # an unbuffered write may be partial
                        written += self._out.write(block[written:])
                    self._position += n
                    if (_start_writeback is not None
                            and self._position - self._flushed >= WRITEBACK_EVERY):
                        _start_writeback(self._out.fileno(), self._flushed,
                                         self._position - self._flushed)
                        self._flushed = self._position
                except BaseException as exc:  # re-raised on the receiving thread
                    self._error = exc
            self._free.put(view)
