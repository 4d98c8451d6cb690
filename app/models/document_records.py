"""Immutable values the Store's document collections hand out and take in (see
app.models.store.documents and app.models.store.retrieval)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

DocumentStatus = Literal["indexed", "failed"]


class ChunkLike(Protocol):
    """A passage as the chunker makes it (app.engine.documents' ``Chunk`` fits)."""

    @property
    def text(self) -> str: ...
    @property
    def page(self) -> int | None: ...
    @property
    def heading(self) -> str | None: ...
    @property
    def index(self) -> int: ...
    @property
    def start(self) -> int: ...


@dataclass(frozen=True)
class CollectionRecord:
    id: int
    name: str
    embedding_model: str  # path or id of the embedding GGUF the vectors came from
    chunk_size: int  # in the embedding model's tokens
    chunk_overlap: int
    created_at: datetime  # aware, UTC


@dataclass(frozen=True)
class DocumentRecord:
    id: int
    collection_id: int
    path: str
    content_hash: str | None
    mtime: float
    size: int
    status: DocumentStatus
    error: str | None  # why it failed, in words for the user; None when indexed
    chunk_count: int
    indexed_at: datetime  # aware, UTC: when it was last indexed or failed


@dataclass(frozen=True)
class RetrievedChunk:
    """One passage found for a query, with where it is and why it was chosen."""

    chunk_id: int
    text: str
    document_path: str
    page: int | None
    heading: str | None
    start: int
    cosine: float | None  # similarity of its vector to the query's; None without a query vector
    bm25_rank: int | None  # 1 = best BM25 match; None when its words did not match
    vector_rank: int | None  # 1 = nearest vector; None when not among the nearest
    fused: float  # reciprocal rank fusion score: the order results come in
