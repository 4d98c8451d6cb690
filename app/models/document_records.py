"""Immutable values the Store's document collections hand out and take in (see
app.models.store.documents and app.models.store.retrieval), and a reply's saved sources
(`ReplySources`: the citations it was given, kept with the message)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

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


@dataclass(frozen=True)
class StoredChunk:
    """A stored passage with its place in its document (for showing a citation in context)."""

    position: int  # index of the chunk in its document, from 0
    start: int  # character offset in the document's text
    text: str
    page: int | None
    heading: str | None


@dataclass(frozen=True)
class Citation:
    number: int  # [1], [2], … in the prompt and the reply
    document_path: str
    page: int | None
    start: int  # character offset in the document's text (for highlighting)
    text: str
    heading: str | None = None
    score: float | None = None  # cosine to the question (retrieval mode)


# Bounds on what a reply's saved sources may hold: the JSON is read back from a file anyone
# could have edited, and a whole-document citation would otherwise store the whole document
# in every reply.
MAX_SOURCE_TEXT = 8_000
MAX_SOURCE_CITATIONS = 100
MAX_SOURCE_NUMBER = 9_999
_MAX_MODE = 32
_MAX_EXPLANATION = 2_000
_MAX_PATH = 4_096
_MAX_HEADING = 500


def _bounded(value: object, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) else None


def _whole(value: object, low: int, high: int) -> int | None:
    """An int in [low, high]; bools (which are ints to Python) and anything else give None."""
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
        return value
    return None


def _citation_from(data: object) -> Citation | None:
    if not isinstance(data, dict):
        return None
    number = _whole(data.get("number"), 1, MAX_SOURCE_NUMBER)
    path = _bounded(data.get("document_path"), _MAX_PATH)
    start = _whole(data.get("start"), 0, 2**53)
    text = _bounded(data.get("text"), MAX_SOURCE_TEXT)
    if number is None or not path or start is None or text is None:
        return None
    page = _whole(data.get("page"), 0, 10**9)
    score = data.get("score")
    if not isinstance(score, int | float) or isinstance(score, bool) or not math.isfinite(score):
        score = None
    return Citation(number, path, page, start, text, _bounded(data.get("heading"), _MAX_HEADING),
                    float(score) if score is not None else None)


@dataclass(frozen=True)
class ReplySources:
    """What a reply made with documents was given: the mode, the sentence saying which and why
    (shown above the reply), and the passages its [n] refer to."""

    mode: str  # "whole", "retrieval", "nothing_found" or "no_room"
    explanation: str
    citations: tuple[Citation, ...] = ()

    def citation(self, number: int) -> Citation | None:
        return next((c for c in self.citations if c.number == number), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode[:_MAX_MODE],
            "explanation": self.explanation[:_MAX_EXPLANATION],
            "citations": [
                {"number": c.number, "document_path": c.document_path, "page": c.page,
                 "start": c.start, "text": c.text[:MAX_SOURCE_TEXT], "heading": c.heading,
                 "score": c.score}
                for c in self.citations[:MAX_SOURCE_CITATIONS]
            ],
        }

    @classmethod
    def from_dict(cls, data: object) -> ReplySources | None:
        """None when ``data`` is not sources at all; bad citations are dropped one by one, a
        repeated number keeps its first, and every text is cut to its bound."""
        if not isinstance(data, dict):
            return None
        mode = _bounded(data.get("mode"), _MAX_MODE)
        if not mode:
            return None
        explanation = _bounded(data.get("explanation"), _MAX_EXPLANATION) or ""
        entries = data.get("citations")
        citations: list[Citation] = []
        seen: set[int] = set()
        for entry in entries[:MAX_SOURCE_CITATIONS] if isinstance(entries, list) else ():
            citation = _citation_from(entry)
            if citation is not None and citation.number not in seen:
                seen.add(citation.number)
                citations.append(citation)
        return cls(mode, explanation, tuple(citations))
