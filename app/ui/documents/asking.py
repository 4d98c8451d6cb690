"""The document step before a reply: the question's document context is built off the GUI
thread (it may load an embedding model, embed the question and read files), then handed back as
a Qt signal with the history to send.

One worker thread does all of it, so the chat model's vocabulary and the collections' models
are always used from the same thread. What was loaded is kept for the next question while the
chat model and the collections stay the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from PySide6.QtCore import QObject, Signal

from app.engine.serving.pool import ModelPool
from app.engine.types import ChatMessage
from app.models.store import Store
from app.services.documents import ChatDocuments, DocumentsUnavailable

__all__ = ["DocumentAsker"]


class DocumentAsker(QObject):
    ready = Signal(int, object, object)  # ticket, history to send, DocumentContext
    failed = Signal(int, str)  # ticket, why, for the user

    def __init__(self, store: Store, pool: ModelPool, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self._pool = pool
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hearth-docs")
        self._loaded: tuple[tuple[object, ...], ChatDocuments] | None = None
        self._tickets = 0

    def wanted(self, chat_id: int | None) -> bool:
        return chat_id is not None and bool(self._store.chat_collections(chat_id))

    def ask(self, chat_id: int, history: Sequence[ChatMessage], chat_model: str, n_ctx: int,
            max_tokens: int) -> int:
        """Start building the context for the last message of ``history``; its ticket."""
        self._tickets += 1
        ticket = self._tickets
        future = self._worker.submit(self._build, chat_id, list(history), chat_model, n_ctx,
                                     max_tokens)
        future.add_done_callback(lambda f: self._deliver(ticket, f))
        return ticket

    def shutdown(self) -> None:
        self._worker.submit(self._drop)
        self._worker.shutdown(wait=True)

    # -- worker thread -------------------------------------------------------------------------
    def _build(self, chat_id: int, history: list[ChatMessage], chat_model: str, n_ctx: int,
               max_tokens: int) -> tuple[list[ChatMessage], object]:
        collections = self._store.chat_collections(chat_id)
        key = (chat_model, tuple((c.id, c.embedding_model) for c in collections))
        if self._loaded is None or self._loaded[0] != key:
            self._drop()
            self._loaded = key, ChatDocuments(self._store, collections, self._pool, chat_model)
        return self._loaded[1].context(history, n_ctx, max_tokens)

    def _drop(self) -> None:
        if self._loaded is not None:
            self._loaded[1].close()
            self._loaded = None

    def _deliver(self, ticket: int, future: Future) -> None:
        exc = future.exception()
        if exc is None:
            history, found = future.result()
            self.ready.emit(ticket, history, found)
        elif isinstance(exc, DocumentsUnavailable):
            self.failed.emit(ticket, str(exc))
        else:
            self.failed.emit(ticket, f"Could not read the chat's documents: {exc}")
