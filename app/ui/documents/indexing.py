"""Indexing in the window's background: one job at a time, its progress as Qt signals.

The work (creating a collection, converting the starter embedding model on first use, loading
the collection's embedding model in the serving pool, the `Indexer` itself) all runs on the
job's own thread; the GUI thread only receives `progress` (at most four times a second, from
the indexer) and `finished`, so the window stays responsive while documents are embedded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.engine.serving.pool import ModelPool
from app.models.document_records import CollectionRecord
from app.models.store import Store
from app.services.documents import Indexer, IndexReport, load_collection_model

__all__ = ["IndexingJob"]

# Given the store on the job's thread, returns the collection to index into (made if needed).
CollectionSource = Callable[[Store], CollectionRecord]


class IndexingJob(QObject):
    started = Signal(int)  # collection id
    progress = Signal(object)  # IndexProgress
    finished = Signal(int, object)  # collection id, IndexReport
    failed = Signal(str)  # why nothing could be indexed, for the user

    def __init__(self, store: Store, pool: ModelPool, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self._pool = pool
        self._thread: threading.Thread | None = None
        self._indexer: Indexer | None = None
        self._cancelled = threading.Event()
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, collection: CollectionSource, paths: Sequence[str | Path]) -> bool:
        """Index ``paths``; False (nothing started) while another run is going."""
        if self.running:
            return False
        self._cancelled.clear()
        self._thread = threading.Thread(target=self._run, args=(collection, list(paths)),
                                        name="hearth-indexing", daemon=True)
        self._thread.start()
        return True

    def cancel(self) -> None:
        """Stop after the current embedding batch; finished documents stay indexed."""
        self._cancelled.set()
        with self._lock:
            if self._indexer is not None:
                self._indexer.cancel()

    def wait(self, timeout: float | None = None) -> bool:
        """True once no run is going (for closing the window)."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def _run(self, source: CollectionSource, paths: list[str | Path]) -> None:
        try:
            collection = source(self._store)
            self.started.emit(collection.id)
            model = load_collection_model(self._pool, collection)
            indexer = Indexer(self._store, collection, model, progress=self.progress.emit)
            with self._lock:  # a cancel() lands before start (nothing runs) or on the indexer
                if self._cancelled.is_set():
                    report: IndexReport | None = IndexReport(cancelled=True)
                else:
                    self._indexer = indexer
                    indexer.start(paths)
                    report = None
            report = report or indexer.wait()
        except Exception as exc:  # noqa: BLE001 - every failure is shown, none kills the app
            self.failed.emit(_reason(exc))
            return
        finally:
            with self._lock:
                self._indexer = None
        self.finished.emit(collection.id, report)


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return f"Could not index the documents: {text}"
