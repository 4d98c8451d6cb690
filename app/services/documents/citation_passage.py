"""A cited passage in its surroundings, for the window's citation pane (issue 13).

The surroundings are the cited chunk's neighbours in the Store. Chunks overlap (each starts
with the end of the one before), so they are merged by their character offsets instead of
being put one after the other, which would show the overlap twice. When the document is no
longer indexed, or its text at the cited offset is no longer the cited text (it changed and
was indexed again), the citation's own saved text is shown instead, with a note saying why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from app.models.document_records import Citation, StoredChunk

__all__ = ["CitedPassage", "cited_passage", "merge_chunks"]

GAP = "\n\n"  # shown between chunks that do not touch (sections are joined by a blank line)
_MATCH_PREFIX = 200  # characters of the saved text compared with the document's text


class ChunkSource(Protocol):
    def chunks_near(self, document_path: str, start: int,
                    around: int = 1) -> list[StoredChunk]: ...


@dataclass(frozen=True)
class CitedPassage:
    text: str  # the passage with what surrounds it
    highlight: tuple[int, int]  # [start, end) of the cited passage in ``text``
    note: str | None  # why only the saved text is shown; None when shown in its document


@dataclass(frozen=True)
class _Segment:
    document_start: int  # where this piece of the shown text is in the document
    shown_start: int  # and where it is in the shown text
    length: int


def merge_chunks(chunks: Sequence[StoredChunk]) -> tuple[str, list[_Segment]]:
    """The chunks' text once, in document order, with each shown piece's place in the
    document. An overlap that does not agree with the text already shown (a damaged row) is
    not trusted: the chunk is shown whole after a gap."""
    shown = ""
    segments: list[_Segment] = []
    end = None  # document offset where ``shown`` ends
    for chunk in sorted(chunks, key=lambda c: c.start):
        chunk_end = chunk.start + len(chunk.text)
        if end is not None and chunk.start < end:
            overlap = end - chunk.start
            if shown.endswith(chunk.text[:overlap]):
                if chunk_end > end:
                    segments.append(_Segment(end, len(shown), chunk_end - end))
                    shown += chunk.text[overlap:]
                    end = chunk_end
                continue
        if shown:
            shown += GAP
        segments.append(_Segment(chunk.start, len(shown), len(chunk.text)))
        shown += chunk.text
        end = chunk_end
    return shown, segments


def _shown_offset(segments: Sequence[_Segment], offset: int, *, at_end: bool) -> int | None:
    for segment in segments:
        if segment.document_start <= offset <= segment.document_start + segment.length:
            if at_end and offset == segment.document_start and segment.shown_start > 0:
                continue  # an end exactly at a segment's start belongs to the one before
            return segment.shown_start + offset - segment.document_start
    return None


def cited_passage(store: ChunkSource, citation: Citation, around: int = 1) -> CitedPassage:
    """``citation`` with ``around`` chunks each side from ``store``, its own text highlighted;
    or its saved text alone, highlighted whole, with a note when the document cannot show it."""
    saved = CitedPassage(citation.text, (0, len(citation.text)), None)
    chunks = store.chunks_near(citation.document_path, citation.start, around)
    if not chunks:
        return CitedPassage(saved.text, saved.highlight,
                            "This document is no longer indexed: showing the passage as it was "
                            "when the reply was written.")
    text, segments = merge_chunks(chunks)
    begin = _shown_offset(segments, citation.start, at_end=False)
    cited_end = citation.start + len(citation.text)
    window_end = segments[-1].document_start + segments[-1].length
    finish = _shown_offset(segments, min(cited_end, window_end), at_end=True)
    prefix = citation.text[:_MATCH_PREFIX]
    if begin is None or finish is None or not text.startswith(prefix, begin):
        return CitedPassage(saved.text, saved.highlight,
                            "This document has changed since the reply was written: showing the "
                            "passage as it was then.")
    return CitedPassage(text, (begin, max(begin, finish)), None)
