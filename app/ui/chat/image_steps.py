"""The chat's image work before a reply, off the GUI thread (DESIGN rule 3): saving the images
attached at Send (hashing and writing up to 50 MiB each), and building a reply's history, which
decodes the branch's images a reopened chat has not decoded yet.

One worker thread runs the jobs in the order asked. Each has a ticket; its result comes back as
a signal on the GUI thread, and the controller ignores a ticket it no longer waits for (a Send
stopped, another chat opened). After `shutdown` nothing more is delivered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.models.store import Store
from app.services.chat_images import Attachment, save_attachments
from app.services.chat_session import HistorySource
from app.ui.workers import TaskRunner

log = logging.getLogger(__name__)

SAVED, BUILT, FAILED = "saved", "built", "failed"


class ImageSteps(QObject):
    saved = Signal(int, object)  # ticket, tuple[StoredImage, ...] in the order attached
    historyBuilt = Signal(int, object)  # ticket, list[ChatMessage] to send
    failed = Signal(int, str)  # ticket, why, for the user

    def __init__(self, store: Store, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self._tasks = TaskRunner(self, max_threads=1)
        self._tickets = 0
        self._closed = False

    def save(self, images: Sequence[Attachment]) -> int:
        """Start keeping ``images`` in the Store's folder; their ticket."""
        return self._start(_save, self._store, tuple(images))

    def build_history(self, source: HistorySource) -> int:
        """Start building a reply's history (its images decoded); its ticket."""
        return self._start(_build, source)

    def shutdown(self) -> None:
        """The page is closing: wait for the job running now (a save ends within seconds)."""
        self._closed = True
        self._tasks.shutdown()

    def _start(self, job: Callable[..., tuple[str, Any]], *args: Any) -> int:
        self._tickets += 1
        ticket = self._tickets
        self._tasks.start(_run, ticket, job, args, on_returned=self._deliver)
        return ticket

    def _deliver(self, result: tuple[int, str, Any]) -> None:
        ticket, kind, value = result
        if self._closed:
            return
        if kind == SAVED:
            self.saved.emit(ticket, value)
        elif kind == BUILT:
            self.historyBuilt.emit(ticket, value)
        else:
            self.failed.emit(ticket, value)


# -- worker thread ---------------------------------------------------------------------------
def _run(ticket: int, job: Callable[..., tuple[str, Any]], args: tuple[Any, ...]
         ) -> tuple[int, str, Any]:
    # Every job answers: a reply waiting for one that raised would stay busy for ever.
    try:
        kind, value = job(*args)
    except Exception as exc:
        log.exception("image step failed")
        kind, value = FAILED, f"Could not prepare the chat's images: {exc}"
    return ticket, kind, value


def _save(store: Store, images: tuple[Attachment, ...]) -> tuple[str, Any]:
    try:
        return SAVED, save_attachments(store, images)
    except OSError as exc:
        return FAILED, (f"Could not save the images in {store.images_folder}: "
                        f"{exc.strerror or exc}. Nothing was sent; your message is still there.")


def _build(source: HistorySource) -> tuple[str, Any]:
    return BUILT, source.build()
