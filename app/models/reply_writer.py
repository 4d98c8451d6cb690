"""Saves a streaming reply as it grows, so a crash loses at most the last `interval` of text."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from app.engine.types import GenerationStats
from app.models.records import MessageStatus
from app.models.store import Store


class ReplyWriter:
    """Accumulates streamed text for one message and writes it to the Store in batches.

    Writing per token would cost one SQLite transaction per token; batching by time keeps the
    database quiet while bounding what a crash can lose. After finish/stop/fail the writer is
    closed and later calls are ignored (a token may still arrive after Stop).
    """

    def __init__(
        self,
        store: Store,
        message_id: int,
        interval: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._message_id = message_id
        self._interval = interval
        self._clock = clock
        self._parts: list[str] = []
        self._dirty = False
        self._closed = False
        self._last_write = clock()
        self._lock = threading.Lock()

    @property
    def text(self) -> str:
        with self._lock:
            return "".join(self._parts)

    @property
    def closed(self) -> bool:
        return self._closed

    def append(self, text: str) -> None:
        with self._lock:
            if self._closed or not text:
                return
            self._parts.append(text)
            self._dirty = True
            if self._clock() - self._last_write >= self._interval:
                self._write_locked("streaming")

    def flush(self) -> None:
        """Write pending text now (status stays "streaming")."""
        with self._lock:
            if not self._closed and self._dirty:
                self._write_locked("streaming")

    def finish(self, stats: GenerationStats | None = None) -> None:
        self._close("complete", stats=stats)

    def stop(self, stats: GenerationStats | None = None) -> None:
        self._close("partial", stats=stats)

    def fail(self, reason: str, stats: GenerationStats | None = None) -> None:
        """Mark the reply failed, keeping the text produced so far and the reason."""
        self._close("failed", stats=stats, error=reason)

    def _close(
        self, status: MessageStatus, *, stats: GenerationStats | None, error: str | None = None
    ) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._write_locked(status, stats=stats, error=error)

    def _write_locked(
        self,
        status: MessageStatus,
        *,
        stats: GenerationStats | None = None,
        error: str | None = None,
    ) -> None:
        content = "".join(self._parts)
        if status == "streaming":
            self._store.update_message(self._message_id, content=content, status=status)
        else:
            self._store.update_message(
                self._message_id, content=content, status=status, stats=stats, error=error
            )
        self._parts = [content]  # keep joins cheap on long replies
        self._dirty = False
        self._last_write = self._clock()
