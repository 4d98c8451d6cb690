"""Documents to passages: read a file into positioned text, then cut it into token-aware chunks.

Qt-free and Hub-free; the embedding tokenizer is passed in, so nothing here loads a model.

Interface (kept stable for storage, indexing, the CLI and the window):

- ``read_document(path) -> Document`` — ``Document(path, kind, sections: list[Section])``;
  ``Section(text, page: int | None, heading: str | None, start: int)``. ``kind`` is one of
  "pdf", "docx", "markdown", "text", "html", "epub", "code". ``page`` is the PDF page number
  from 1 (None elsewhere); ``heading`` the heading path ("Intro > Setup") for Markdown, HTML,
  DOCX and EPUB; ``start`` the character offset of the section in ``Document.text`` (sections
  joined by ``SECTION_SEPARATOR``). PDF tables become rows with cells separated by " | ".
- ``DocumentError(path, reason)`` — the only exception for bad input (encrypted, corrupt or
  truncated PDF, binary file renamed .txt, empty file, unsupported extension, too big, zip
  bomb); ``reason`` is for the user. ``SUPPORTED_EXTENSIONS`` lists what is read.
- ``chunk_document(document, count_tokens, size=DEFAULT_CHUNK_TOKENS,
  overlap=DEFAULT_OVERLAP_TOKENS) -> list[Chunk]`` — ``Chunk(text, page, heading, index,
  start)``; at most ``size`` tokens by ``count_tokens(str) -> int`` (the embedding model's
  tokenizer), never across pages or headings; ``start`` is an offset in ``Document.text``.
- ``content_hash(path) -> str`` — streamed sha256 hex, for incremental indexing.

All text is untrusted: it is kept as plain text with control characters (except newlines and
tabs) and bidi overrides removed, and is never interpreted (no markup is rendered or fetched).
"""

from app.engine.documents.chunking import (
    DEFAULT_CHUNK_TOKENS,
    DEFAULT_OVERLAP_TOKENS,
    chunk_document,
)
from app.engine.documents.limits import MAX_FILE_BYTES
from app.engine.documents.read import SUPPORTED_EXTENSIONS, content_hash, read_document
from app.engine.documents.types import (
    SECTION_SEPARATOR,
    Chunk,
    Document,
    DocumentError,
    Section,
)

__all__ = [
    "DEFAULT_CHUNK_TOKENS", "DEFAULT_OVERLAP_TOKENS", "MAX_FILE_BYTES", "SECTION_SEPARATOR",
    "SUPPORTED_EXTENSIONS", "Chunk", "Document", "DocumentError", "Section", "chunk_document",
    "content_hash", "read_document",
]
