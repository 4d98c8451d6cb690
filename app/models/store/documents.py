"""The Store's document collections: collections, their documents and chunks, and which chats
use them (issue 13). Searching them is in `retrieval`.

API (all on `Store`):

- ``create_collection(name, embedding_model, chunk_size, chunk_overlap)`` -> CollectionRecord
  (`CollectionExists` when the name is taken); ``list_collections()``, ``get_collection(id)``,
  ``find_collection(name)``, ``delete_collection(id)`` (its documents, chunks and their FTS
  rows go with it).
- ``replace_document(collection_id, path, chunks, vectors, content_hash=, mtime=, size=)``:
  the document's chunks become exactly these, in ONE transaction: a failure or a kill part way
  leaves the old chunks, never half of the new ones. The indexer's "resume from the last
  finished document" rests on this: a document is either fully indexed or as it was.
- ``mark_document_failed(collection_id, path, reason, mtime=, size=)``: an unreadable file is
  listed with its reason (its old chunks go: they no longer describe the file);
  ``failed_documents(collection_id)``.
- ``documents_to_index(collection_id, files)``: which of the files on disk (path -> (mtime,
  size)) are new, changed or failed before. For a changed one the indexer hashes the file and,
  when ``content_hash`` matches ``get_document(...).content_hash``, calls
  ``touch_document(...)`` instead of re-embedding it (a copy or `touch` changes mtime only).
- ``list_documents``, ``get_document``, ``remove_document``.
- ``chunks_near(document_path, start, around=1)``: the chunk of that file starting at (or
  else nearest before) ``start`` with ``around`` neighbours each side, for showing a cited
  passage in its surroundings.
- ``attach_collection(chat_id, collection_id)``, ``detach_collection``,
  ``chat_collections(chat_id)``: a chat may use several collections.

Every change to a collection's chunks bumps its ``generation`` in the same transaction, which is
how the retrieval cache notices changes made by any process.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy import case, delete, func, insert, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.models.document_records import (
    ChunkLike,
    CollectionRecord,
    DocumentRecord,
    StoredChunk,
)
from app.models.document_tables import ChatCollection, ChunkRow, Collection, Document
from app.models.store.database import Database
from app.models.tables import utcnow

__all__ = ["CollectionExists", "DocumentStore"]

_COLLECTION_COLUMNS = (Collection.id, Collection.name, Collection.embedding_model,
                       Collection.chunk_size, Collection.chunk_overlap, Collection.created_at)
_DOCUMENT_COLUMNS = (Document.id, Document.collection_id, Document.path, Document.content_hash,
                     Document.mtime, Document.size, Document.status, Document.error,
                     Document.chunk_count, Document.indexed_at)


class CollectionExists(ValueError):
    """A collection of that name already exists; the message is meant for the user."""


def _collection(row: Row[Any]) -> CollectionRecord:
    return CollectionRecord(*row)


def _document(row: Row[Any]) -> DocumentRecord:
    return DocumentRecord(*row)


def _as_matrix(vectors: Any) -> np.ndarray:
    matrix = np.asarray(vectors, dtype="<f4")
    if matrix.ndim == 1 and matrix.size == 0:
        matrix = matrix.reshape(0, 0)
    if matrix.ndim != 2:
        raise ValueError("vectors must be one row of floats per chunk")
    if not np.isfinite(matrix).all():
        raise ValueError("vectors contain NaN or infinity")
    return matrix


class DocumentStore(Database):
    """Store mixin: document collections, documents, chunks and chat attachments."""

    # -- collections ---------------------------------------------------------------------------
    def create_collection(self, name: str, embedding_model: str, chunk_size: int,
                          chunk_overlap: int) -> CollectionRecord:
        name = name.strip()
        if not name:
            raise ValueError("A collection needs a name")
        if chunk_size <= 0 or not 0 <= chunk_overlap < chunk_size:
            raise ValueError("Chunk size must be positive and the overlap smaller than it")
        now = utcnow()
        statement = insert(Collection).values(
            name=name, embedding_model=embedding_model, chunk_size=chunk_size,
            chunk_overlap=chunk_overlap, created_at=now,
        ).returning(Collection.id)
        try:
            with self._writing() as session:
                collection_id = int(session.execute(statement).scalar_one())
        except IntegrityError as exc:
            raise CollectionExists(f"A collection named {name!r} already exists") from exc
        return CollectionRecord(collection_id, name, embedding_model, chunk_size, chunk_overlap,
                                now)

    def list_collections(self) -> list[CollectionRecord]:
        with self._reading() as conn:
            rows = conn.execute(select(*_COLLECTION_COLUMNS).order_by(Collection.name)).all()
        return [_collection(row) for row in rows]

    def get_collection(self, collection_id: int) -> CollectionRecord | None:
        query = select(*_COLLECTION_COLUMNS).where(Collection.id == collection_id)
        with self._reading() as conn:
            row = conn.execute(query).first()
        return _collection(row) if row else None

    def find_collection(self, name: str) -> CollectionRecord | None:
        query = select(*_COLLECTION_COLUMNS).where(Collection.name == name.strip())
        with self._reading() as conn:
            row = conn.execute(query).first()
        return _collection(row) if row else None

    def set_chunking(self, collection_id: int, chunk_size: int, chunk_overlap: int) -> bool:
        """New chunk settings; every document of the collection then needs indexing again.

        Its documents lose their mtime and hash (so the indexer re-reads them) but keep their
        chunks until each is replaced: a cancelled re-index leaves a searchable collection."""
        if chunk_size <= 0 or not 0 <= chunk_overlap < chunk_size:
            raise ValueError("Chunk size must be positive and the overlap smaller than it")
        with self._writing() as session:
            changed = session.execute(update(Collection).where(Collection.id == collection_id)
                                      .values(chunk_size=chunk_size,
                                              chunk_overlap=chunk_overlap)).rowcount > 0
            session.execute(update(Document).where(Document.collection_id == collection_id)
                            .values(mtime=-1.0, content_hash=None))
        return changed

    def delete_collection(self, collection_id: int) -> bool:
        """Its documents and chunks go by ON DELETE CASCADE, their FTS rows by trigger."""
        return self._update(delete(Collection).where(Collection.id == collection_id))

    # -- documents -----------------------------------------------------------------------------
    def replace_document(self, collection_id: int, path: str, chunks: Iterable[ChunkLike],
                         vectors: Any, *, content_hash: str | None, mtime: float,
                         size: int) -> DocumentRecord:
        """Make ``chunks`` (with one vector each, in order) the document's whole content, all or
        nothing. ``chunks`` may be a generator: anything it raises rolls everything back."""
        matrix = _as_matrix(vectors)
        now = utcnow()
        with self._writing() as session:
            document_id = self._upsert_document(
                session, collection_id, path, content_hash=content_hash, mtime=mtime,
                size=size, status="indexed", error=None, indexed_at=now)
            session.execute(delete(ChunkRow).where(ChunkRow.document_id == document_id))
            rows = []
            for number, chunk in enumerate(chunks):
                if number >= len(matrix):
                    raise ValueError("fewer vectors than chunks")
                rows.append({
                    "document_id": document_id, "collection_id": collection_id,
                    "position": chunk.index, "text": chunk.text, "page": chunk.page,
                    "heading": chunk.heading, "start": chunk.start,
                    "vector": matrix[number].tobytes(), "dimensions": matrix.shape[1],
                })
            if len(rows) != len(matrix):
                raise ValueError(f"{len(rows)} chunks but {len(matrix)} vectors")
            if rows:
                session.execute(insert(ChunkRow), rows)
            session.execute(update(Document).where(Document.id == document_id)
                            .values(chunk_count=len(rows)))
            self._bump(session, collection_id)
        return DocumentRecord(document_id, collection_id, path, content_hash, mtime, size,
                              "indexed", None, len(rows), now)

    def mark_document_failed(self, collection_id: int, path: str, reason: str, *,
                             mtime: float, size: int,
                             content_hash: str | None = None) -> DocumentRecord:
        now = utcnow()
        with self._writing() as session:
            document_id = self._upsert_document(
                session, collection_id, path, content_hash=content_hash, mtime=mtime,
                size=size, status="failed", error=reason, indexed_at=now)
            session.execute(delete(ChunkRow).where(ChunkRow.document_id == document_id))
            session.execute(update(Document).where(Document.id == document_id)
                            .values(chunk_count=0))
            self._bump(session, collection_id)
        return DocumentRecord(document_id, collection_id, path, content_hash, mtime, size,
                              "failed", reason, 0, now)

    def touch_document(self, collection_id: int, path: str, mtime: float, size: int) -> bool:
        """Record a new mtime/size for a file whose content hash did not change."""
        return self._update(update(Document).where(
            Document.collection_id == collection_id, Document.path == path,
            Document.status == "indexed").values(mtime=mtime, size=size))

    def get_document(self, collection_id: int, path: str) -> DocumentRecord | None:
        query = select(*_DOCUMENT_COLUMNS).where(Document.collection_id == collection_id,
                                                 Document.path == path)
        with self._reading() as conn:
            row = conn.execute(query).first()
        return _document(row) if row else None

    def list_documents(self, collection_id: int) -> list[DocumentRecord]:
        query = (select(*_DOCUMENT_COLUMNS).where(Document.collection_id == collection_id)
                 .order_by(Document.path))
        with self._reading() as conn:
            return [_document(row) for row in conn.execute(query)]

    def collection_counts(self, collection_id: int) -> tuple[int, int, int]:
        """(indexed documents, failed documents, chunks) of a collection, counted in SQL: cheap
        enough to show while it is being indexed."""
        failed = case((Document.status == "failed", 1), else_=0)
        query = select(func.count(Document.id), func.coalesce(func.sum(failed), 0),
                       func.coalesce(func.sum(Document.chunk_count), 0)
                       ).where(Document.collection_id == collection_id)
        with self._reading() as conn:
            total, failures, chunks = conn.execute(query).one()
        return int(total) - int(failures), int(failures), int(chunks)

    def failed_documents(self, collection_id: int) -> list[DocumentRecord]:
        """Only the failed ones, selected in SQL: the window asks on its GUI thread, and a big
        collection's listing would cost it every refresh."""
        query = (select(*_DOCUMENT_COLUMNS).where(Document.collection_id == collection_id,
                                                  Document.status == "failed")
                 .order_by(Document.path))
        with self._reading() as conn:
            return [_document(row) for row in conn.execute(query)]

    def documents_to_index(self, collection_id: int,
                           files: Mapping[str, tuple[float, int]]) -> list[str]:
        """The paths of ``files`` (path -> (mtime, size)) that are new, changed since they were
        indexed, or failed last time; in the order given."""
        known = {d.path: d for d in self.list_documents(collection_id)}
        stale = []
        for path, (mtime, size) in files.items():
            doc = known.get(path)
            if doc is None or doc.status != "indexed" or doc.mtime != mtime or doc.size != size:
                stale.append(path)
        return stale

    def chunks_near(self, document_path: str, start: int, around: int = 1) -> list[StoredChunk]:
        """The indexed chunk of ``document_path`` that starts at ``start`` (else the last one
        starting before it) and up to ``around`` chunks each side, in document order; [] when
        the file is not indexed. A file in several collections: one that has a chunk starting
        exactly there is preferred (a citation's offset is a chunk's start)."""
        found = (
            select(ChunkRow.document_id, ChunkRow.position)
            .join(Document, Document.id == ChunkRow.document_id)
            .where(Document.path == document_path, Document.status == "indexed",
                   ChunkRow.start <= start)
            .order_by((ChunkRow.start == start).desc(), ChunkRow.start.desc())
            .limit(1)
        )
        with self._reading() as conn:
            hit = conn.execute(found).first()
            if hit is None:
                return []
            rows = conn.execute(
                select(ChunkRow.position, ChunkRow.start, ChunkRow.text, ChunkRow.page,
                       ChunkRow.heading)
                .where(ChunkRow.document_id == hit[0],
                       ChunkRow.position.between(hit[1] - around, hit[1] + around))
                .order_by(ChunkRow.position)).all()
        return [StoredChunk(*row) for row in rows]

    def indexed_text(self, document_id: int) -> str:
        """The document's text as it was indexed, put back together from its chunks (their
        overlaps taken once; a gap the chunker trimmed, such as the break between sections,
        becomes a line break): what whole-document mode gives the model, without reading or
        parsing the file again, and the same text the passages were cut from."""
        with self._reading() as conn:
            rows = conn.execute(select(ChunkRow.start, ChunkRow.text)
                                .where(ChunkRow.document_id == document_id)
                                .order_by(ChunkRow.start, ChunkRow.position)).all()
        parts: list[str] = []
        covered = None  # where the text put together so far ends, in the document's offsets
        for start, text in rows:
            end = start + len(text)
            if covered is None or start >= covered:
                if covered is not None:
                    parts.append("\n")
                parts.append(text)
            elif end > covered:
                parts.append(text[covered - start:])
            covered = end if covered is None else max(covered, end)
        return "".join(parts)

    def remove_document(self, collection_id: int, path: str) -> bool:
        with self._writing() as session:
            gone = session.execute(delete(Document).where(
                Document.collection_id == collection_id, Document.path == path)).rowcount > 0
            if gone:
                self._bump(session, collection_id)
        return gone

    def _upsert_document(self, session: Session, collection_id: int, path: str,
                         **values: Any) -> int:
        statement = sqlite_insert(Document).values(collection_id=collection_id, path=path,
                                                   **values)
        statement = statement.on_conflict_do_update(
            index_elements=[Document.collection_id, Document.path], set_=values,
        ).returning(Document.id)
        return int(session.execute(statement).scalar_one())

    @staticmethod
    def _bump(session: Session, collection_id: int) -> None:
        session.execute(update(Collection).where(Collection.id == collection_id)
                        .values(generation=Collection.generation + 1))

    # -- chats ---------------------------------------------------------------------------------
    def attach_collection(self, chat_id: int, collection_id: int) -> bool:
        """False when the chat or collection does not exist; attaching twice is harmless."""
        statement = (sqlite_insert(ChatCollection)
                     .values(chat_id=chat_id, collection_id=collection_id)
                     .on_conflict_do_nothing())
        try:
            with self._writing() as session:
                session.execute(statement)
        except IntegrityError:
            return False
        return True

    def detach_collection(self, chat_id: int, collection_id: int) -> bool:
        return self._update(delete(ChatCollection).where(
            ChatCollection.chat_id == chat_id, ChatCollection.collection_id == collection_id))

    def chat_collections(self, chat_id: int) -> list[CollectionRecord]:
        query = (select(*_COLLECTION_COLUMNS)
                 .join(ChatCollection, ChatCollection.collection_id == Collection.id)
                 .where(ChatCollection.chat_id == chat_id).order_by(Collection.name))
        with self._reading() as conn:
            return [_collection(row) for row in conn.execute(query)]

    def collection_ids(self, names: Sequence[str]) -> dict[str, int]:
        """Name -> id for the names that exist (for front ends that take names)."""
        query = select(Collection.name, Collection.id).where(Collection.name.in_(list(names)))
        with self._reading() as conn:
            return {row[0]: row[1] for row in conn.execute(query)}
