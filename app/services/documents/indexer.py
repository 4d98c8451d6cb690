"""Index files and folders into a document collection, off the caller's thread (issue 13).

For each supported file under the given paths: skip it when its mtime and size are what the
Store last indexed; hash it when they changed, and only record the new mtime when the content
is the same; otherwise read, chunk (by the embedding model's own tokens, with the collection's
size and overlap), embed in batches (shared by consecutive short documents) and store it
with `Store.replace_document`, one transaction per document. A file that cannot be read or
embedded is recorded as failed with its reason, and the rest goes on.

Resuming after a kill is running again: a document is either wholly stored or as it was, and
stored ones are skipped by their mtime and size. `cancel()` stops between embedding batches and
keeps the documents finished so far. A watched folder is `rescan()` run periodically by the
caller (the window on a timer, or a user re-running `hearth docs add`): a rescan of unchanged
files costs one stat per file and one query.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from app.engine.documents import (
    SUPPORTED_EXTENSIONS,
    Chunk,
    DocumentError,
    chunk_document,
    content_hash,
    read_document,
)
from app.engine.inference.embedding_runtime import Embeddings, TextTooLong
from app.engine.inference.runtime import GenerationError

if TYPE_CHECKING:
    from app.models.document_records import CollectionRecord
    from app.models.store import Store

__all__ = ["Embedder", "IndexFailure", "IndexProgress", "IndexReport", "Indexer",
           "find_documents"]

DEFAULT_BATCH = 32  # chunks per embedding call: cancel is checked between them
PROGRESS_EVERY_S = 0.25  # progress callbacks at most this often (and at each document's end)


class Embedder(Protocol):
    """What indexing needs of an embedding model (`EmbeddingModel` fits)."""

    def embed(self, texts: Sequence[str]) -> Embeddings: ...
    def count_tokens(self, text: str) -> int: ...


@dataclass(frozen=True)
class IndexFailure:
    path: str
    reason: str  # for the user


@dataclass(frozen=True)
class IndexProgress:
    documents_done: int  # finished, failed or found unchanged by content
    documents_total: int  # files that needed looking at (new or changed)
    chunks_done: int  # embedded so far, the current document's too
    chunks_per_s: float  # through the whole pipeline: read, chunk, embed, store
    eta_s: float | None  # None until something has been embedded
    current: str | None  # the file being indexed
    failures: tuple[IndexFailure, ...]


@dataclass
class IndexReport:
    indexed: list[str] = field(default_factory=list)
    touched: list[str] = field(default_factory=list)  # changed mtime, same content
    unchanged: int = 0  # skipped by mtime and size
    removed: list[str] = field(default_factory=list)  # gone from a folder that was indexed
    failures: list[IndexFailure] = field(default_factory=list)
    chunks: int = 0
    seconds: float = 0.0
    cancelled: bool = False


def find_documents(paths: Iterable[str | Path]) -> tuple[dict[str, tuple[float, int]],
                                                         list[IndexFailure]]:
    """Supported files under ``paths`` (files or folders, recursively): absolute path ->
    (mtime, size), in a stable order; and the paths that could not be looked at."""
    found: dict[str, tuple[float, int]] = {}
    problems: list[IndexFailure] = []

    def add(file: Path) -> None:
        try:
            stat = file.stat()
        except OSError as exc:
            problems.append(IndexFailure(str(file), exc.strerror or str(exc)))
            return
        found[str(file)] = (stat.st_mtime, stat.st_size)

    for raw in paths:
        path = Path(raw).expanduser().absolute()
        if path.is_dir():
            for root, dirs, files in os.walk(path, onerror=lambda e: problems.append(
                    IndexFailure(str(e.filename), e.strerror or str(e)))):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if Path(name).suffix.lower() in SUPPORTED_EXTENSIONS:
                        add(Path(root) / name)
        elif path.is_file():
            if path.suffix.lower() in SUPPORTED_EXTENSIONS:
                add(path)
            else:
                kind = path.suffix or "a file without an extension"
                problems.append(IndexFailure(str(path), f"{kind} is not a supported document type"))
        else:
            problems.append(IndexFailure(str(path), "no such file or folder"))
    return found, problems


class Indexer:
    """Indexes paths into one collection with one embedding model; see the module doc.

    ``progress`` is called from the indexing thread (a front end hands it to its own thread).
    """

    def __init__(self, store: Store, collection: CollectionRecord, model: Embedder, *,
                 progress: Callable[[IndexProgress], None] | None = None,
                 batch_size: int = DEFAULT_BATCH,
                 progress_every_s: float = PROGRESS_EVERY_S) -> None:
        self.store = store
        self.collection = collection
        self.model = model
        self._progress = progress
        self._batch = max(1, batch_size)
        self._every = progress_every_s
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._paths: list[str | Path] = []
        self._report: IndexReport | None = None
        self._error: BaseException | None = None

    # -- control -------------------------------------------------------------------------------
    def start(self, paths: Iterable[str | Path]) -> None:
        """Index ``paths`` on a background thread; `wait()` for the report."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("this indexer is already running")
        paths = list(paths)
        self._report = self._error = None
        self._cancel.clear()  # here, not on the thread: a cancel() right after start() holds
        self._thread = threading.Thread(target=self._background, args=(paths,),
                                        name="hearth-indexer", daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> IndexReport | None:
        """The report once the background run ends (None if still running after ``timeout``);
        re-raises what stopped it unexpectedly (the database going away, say)."""
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                return None
        if self._error is not None:
            raise self._error
        return self._report

    def cancel(self) -> None:
        """Stop at the next batch boundary; finished documents stay stored."""
        self._cancel.set()

    def rescan(self) -> IndexReport:
        """Index the last paths again (a watched folder): new and changed files only."""
        return self.run(self._paths)

    def _background(self, paths: list[str | Path]) -> None:
        try:
            self._report = self._run(paths)
        except BaseException as exc:  # handed to wait(): a thread must not die silently
            self._error = exc

    # -- the work ------------------------------------------------------------------------------
    def run(self, paths: Iterable[str | Path]) -> IndexReport:
        """Index ``paths`` on this thread and return what happened."""
        self._cancel.clear()
        return self._run(paths)

    def _run(self, paths: Iterable[str | Path]) -> IndexReport:
        self._paths = list(paths)
        files, problems = find_documents(self._paths)
        removed = self._forget_vanished(files)
        stale = self.store.documents_to_index(self.collection.id, files)
        report = _Run(self, files, stale, problems).go()
        report.removed = removed
        return report

    def _forget_vanished(self, files: dict[str, tuple[float, int]]) -> list[str]:
        """Documents stored from one of the given folders whose files are gone: removed, so
        a watched folder's deletions reach the collection too."""
        folders = [str(Path(p).expanduser().absolute()) + os.sep for p in self._paths
                   if Path(p).expanduser().is_dir()]
        gone = [d.path for d in self.store.list_documents(self.collection.id)
                if d.path not in files and any(d.path.startswith(f) for f in folders)
                and not os.path.exists(d.path)]
        for path in gone:
            self.store.remove_document(self.collection.id, path)
        return gone


@dataclass
class _Pending:
    """A document read and chunked, waiting for the rest of its vectors."""

    path: str
    mtime: float
    size: int
    digest: str
    chunks: list[Chunk]
    vectors: list[list[float]] = field(default_factory=list)


class _Run:
    """One pass over the stale files. Chunks of consecutive documents share embedding batches
    (a folder of short notes would otherwise cost a model call per note); a document is
    stored as soon as its last chunk is embedded."""

    def __init__(self, indexer: Indexer, files: dict[str, tuple[float, int]],
                 stale: list[str], problems: list[IndexFailure]) -> None:
        self.ix = indexer
        self.files = files
        self.stale = stale
        self.problems = len(problems)
        self.report = IndexReport(failures=list(problems), unchanged=len(files) - len(stale))
        self.began = time.monotonic()
        self.last_sent = 0.0
        self.total_bytes = sum(files[p][1] for p in stale) or 1
        self.done_bytes = 0
        self.embedded = 0
        self.pending: list[_Pending] = []

    def go(self) -> IndexReport:
        cancel = self.ix._cancel
        self.send(None, force=True)
        for path in self.stale:
            if cancel.is_set():
                break
            self.send(path, force=True)
            self.prepare(path)
            while self.waiting() >= self.ix._batch and not cancel.is_set():
                self.embed_batch()
        while self.pending and not cancel.is_set():
            self.embed_batch()
        self.report.cancelled = cancel.is_set() and (
            bool(self.pending) or self.finished() < len(self.stale))
        self.report.seconds = time.monotonic() - self.began
        self.send(None, force=True)
        return self.report

    def finished(self) -> int:
        r = self.report
        return len(r.indexed) + len(r.touched) + len(r.failures) - self.problems

    def send(self, current: str | None, force: bool = False) -> None:
        now = time.monotonic()
        if self.ix._progress is None or (not force and now - self.last_sent < self.ix._every):
            return
        self.last_sent = now
        elapsed = now - self.began
        rate = self.embedded / elapsed if elapsed > 0 else 0.0
        done = self.done_bytes
        eta = elapsed / done * (self.total_bytes - done) if done else None
        self.ix._progress(IndexProgress(self.finished(), len(self.stale), self.embedded, rate,
                                        eta, current, tuple(self.report.failures)))

    def waiting(self) -> int:
        return sum(len(d.chunks) - len(d.vectors) for d in self.pending)

    def prepare(self, path: str) -> None:
        """Hash, then touch, fail, or read and chunk the file into the pending list."""
        ix, cid = self.ix, self.ix.collection.id
        mtime, size = self.files[path]
        digest: str | None = None
        try:
            digest = content_hash(path)
            known = ix.store.get_document(cid, path)
            if known is not None and known.status == "indexed" and known.content_hash == digest:
                ix.store.touch_document(cid, path, mtime, size)
                self.report.touched.append(path)
                self.done_bytes += size
                return
            chunks = chunk_document(read_document(path), ix.model.count_tokens,
                                    ix.collection.chunk_size, ix.collection.chunk_overlap)
        except DocumentError as exc:
            self.fail(path, mtime, size, digest, exc.reason)
            return
        except OSError as exc:
            self.fail(path, mtime, size, digest, exc.strerror or str(exc))
            return
        self.pending.append(_Pending(path, mtime, size, digest, chunks))
        self.store_finished()

    def embed_batch(self) -> None:
        batch: list[tuple[_Pending, Chunk]] = []
        for doc in self.pending:
            for chunk in doc.chunks[len(doc.vectors):]:
                if len(batch) == self.ix._batch:
                    break
                batch.append((doc, chunk))
        try:
            vectors = self.ix.model.embed([chunk.text for _, chunk in batch]).vectors
        except TextTooLong as exc:
            doc = batch[exc.index][0]
            self.drop(doc, f"a passage has {exc.tokens} tokens, more than the {exc.n_ctx} the "
                      "embedding model reads; choose a smaller chunk size")
            return
        except GenerationError as exc:
            for doc in dict.fromkeys(d for d, _ in batch):
                self.drop(doc, str(exc))
            return
        for (doc, _), vector in zip(batch, vectors, strict=True):
            doc.vectors.append(vector)
        self.embedded += len(batch)
        self.store_finished()
        self.send(self.pending[0].path if self.pending else None)

    def store_finished(self) -> None:
        ix = self.ix
        for doc in [d for d in self.pending if len(d.vectors) == len(d.chunks)]:
            ix.store.replace_document(ix.collection.id, doc.path, doc.chunks, doc.vectors,
                                      content_hash=doc.digest, mtime=doc.mtime, size=doc.size)
            self.pending.remove(doc)
            self.report.indexed.append(doc.path)
            self.report.chunks += len(doc.chunks)
            self.done_bytes += doc.size

    def drop(self, doc: _Pending, reason: str) -> None:
        self.pending.remove(doc)
        self.fail(doc.path, doc.mtime, doc.size, doc.digest, reason)

    def fail(self, path: str, mtime: float, size: int, digest: str | None,
             reason: str) -> None:
        self.ix.store.mark_document_failed(self.ix.collection.id, path, reason, mtime=mtime,
                                           size=size, content_hash=digest)
        self.report.failures.append(IndexFailure(path, reason))
        self.done_bytes += size
