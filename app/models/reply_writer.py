"""Saves a streaming reply as it grows, off the caller's thread, so a crash loses at most the
last `interval` of text and the GUI thread never waits for the database.

The caller only hands text over (`append` takes a lock and adds to a list). A background thread
wakes every `interval`, takes the text that came in since its last save and appends just that
to the stored reply (`Store.save_reply`), so each save costs the new text, not the whole reply.
The search index takes the reply once, when it ends (see migration 0005).
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from dataclasses import dataclass

from app.engine.inference.reasoning import reasoning_apart
from app.engine.types import GenerationStats
from app.models.records import MessageStatus
from app.models.store import Store

log = logging.getLogger(__name__)
EXIT_WAIT_S = 5.0  # at interpreter exit, how long to wait for a reply's last save

_active: weakref.WeakSet[ReplyWriter] = weakref.WeakSet()


@atexit.register
def _save_before_exit() -> None:
    # The saving threads are daemons (a stuck database must not hang the exit), so give the
    # last save of a reply that just ended a moment to land instead of leaving it "streaming".
    for writer in list(_active):
        writer.wait(EXIT_WAIT_S)


@dataclass(frozen=True)
class _Ending:
    status: MessageStatus
    stats: GenerationStats | None
    error: str | None


class ReplyWriter:
    """Accumulates streamed text for one message and saves it in batches on its own thread.

    After finish/stop/fail the writer is closed and later calls are ignored (a token may still
    arrive after Stop); the final save happens on the background thread too: `wait()` blocks
    until it is done. The thread exits when the reply ends or when no text came for a whole
    interval (a new one starts with the next text), so an abandoned writer leaves no thread.
    """

    def __init__(self, store: Store, message_id: int, interval: float = 0.5,
                 initial: str = "") -> None:
        """``initial``: the text already stored (a continued reply goes on after it)."""
        self._store = store
        self._message_id = message_id
        self._interval = interval
        self._cond = threading.Condition()
        self._parts: list[str] = [initial] if initial else []  # the whole reply so far
        self._pending: list[str] = []  # not saved yet
        self._flush_now = False
        self._ending: _Ending | None = None
        self._closed = False
        self._thread: threading.Thread | None = None
        self.saves = 0  # how many times the reply was written (for tests and benchmarks)

    @property
    def text(self) -> str:
        with self._cond:
            return "".join(self._parts)

    @property
    def closed(self) -> bool:
        return self._closed

    def append(self, text: str) -> None:
        with self._cond:
            if self._closed or not text:
                return
            self._parts.append(text)
            self._pending.append(text)
            self._start_locked()

    def flush(self) -> None:
        """Save pending text now (status stays "streaming"), without waiting for it."""
        with self._cond:
            if self._closed or not self._pending:
                return
            self._flush_now = True
            self._start_locked()
            self._cond.notify()

    def finish(self, stats: GenerationStats | None = None) -> None:
        self._close(_Ending("complete", stats, None))

    def stop(self, stats: GenerationStats | None = None) -> None:
        self._close(_Ending("partial", stats, None))

    def fail(self, reason: str, stats: GenerationStats | None = None) -> None:
        """Mark the reply failed, keeping the text produced so far and the reason."""
        self._close(_Ending("failed", stats, reason))

    def wait(self, timeout: float | None = None) -> bool:
        """Block until everything handed over is saved; False if `timeout` ran out first."""
        while True:
            with self._cond:
                thread = self._thread
                if thread is None:
                    return not self._pending and self._ending is None
            thread.join(timeout)
            if thread.is_alive():
                return False

    def _close(self, ending: _Ending) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._ending = ending
            self._start_locked()
            self._cond.notify()

    def _start_locked(self) -> None:
        if self._thread is None:
            _active.add(self)
            self._thread = threading.Thread(
                target=self._run, name=f"hearth-reply-{self._message_id}", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed or self._flush_now, self._interval)
                piece = "".join(self._pending)
                self._pending.clear()
                self._flush_now = False
                ending, self._ending = self._ending, None
                if not piece and ending is None:
                    self._thread = None  # idle: the next text starts a new thread
                    return
            self._save(piece, ending)
            if ending is not None:
                with self._cond:
                    self._thread = None
                return

    def _save(self, piece: str, ending: _Ending | None) -> None:
        try:
            if ending is None:
                self._store.save_reply(self._message_id, piece)
            elif reasoning := self._reasoning(ending):
                # Reasoning is stored apart: the answer replaces the text in the same write.
                self._store.update_message(self._message_id, content=reasoning[0],
                                           reasoning=reasoning[1], status=ending.status,
                                           stats=ending.stats, error=ending.error)
            else:
                self._store.save_reply(self._message_id, piece, status=ending.status,
                                       stats=ending.stats, error=ending.error)
            self.saves += 1
        except Exception:
            # The text stays on screen; a reply left "streaming" is marked partial at the next
            # start. Nothing here may take down the thread that streams the reply.
            log.exception("could not save reply %d", self._message_id)

    def _reasoning(self, ending: _Ending) -> tuple[str, str] | None:
        """The ended reply as (answer, reasoning) when it has reasoning, else None."""
        opened = ending.stats.opens_thinking if ending.stats is not None else False
        answer, reasoning = reasoning_apart(self.text, starts_in_thinking=opened)
        return (answer, reasoning) if reasoning else None
