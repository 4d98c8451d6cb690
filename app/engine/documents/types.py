"""Values the document reader and chunker hand to the layers above (Qt-free, plain data)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Section texts are joined with this in `Document.text`; `Section.start` and `Chunk.start`
# are offsets into that text, so a citation can highlight the passage in the whole document.
SECTION_SEPARATOR = "\n\n"


class DocumentError(Exception):
    """A file Hearth cannot read as a document; ``reason`` is for the user, in plain words."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{Path(path).name}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass(frozen=True)
class Section:
    text: str  # plain, cleaned text (never markup to interpret)
    page: int | None  # PDF page number from 1; None for formats without pages
    heading: str | None  # heading path, e.g. "Intro > Setup"; None before any heading
    start: int  # character offset of ``text`` in `Document.text`


@dataclass(frozen=True)
class Document:
    path: str
    kind: str  # "pdf", "docx", "markdown", "text", "html", "epub" or "code"
    sections: list[Section]

    @property
    def text(self) -> str:
        return SECTION_SEPARATOR.join(s.text for s in self.sections)


@dataclass(frozen=True)
class Chunk:
    text: str
    page: int | None
    heading: str | None
    index: int  # position of the chunk in the document, from 0
    start: int  # character offset of ``text`` in `Document.text`
