"""Token-aware chunks that follow headings and paragraphs (semantic-text-splitter).

A chunk never spans two pages or two headings: consecutive sections that share both are split
as one text (so code's blank-line blocks and a page's paragraphs fill chunks), and each group
on its own, so every chunk carries exactly one page and one heading path.

Overlap is added here rather than by the splitter: its overlap works in whole units of the
level it split at, so chunks cut between paragraphs (the common case) share nothing. Each
chunk is instead cut to ``size - overlap`` tokens and then extended backwards over the end of
the previous chunk, word by word, up to ``overlap`` tokens.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from functools import lru_cache
from itertools import groupby

from semantic_text_splitter import MarkdownSplitter, TextSplitter

from app.engine.documents.types import SECTION_SEPARATOR, Chunk, Document

# Defaults in tokens of the embedding model, sized for a 512-token model such as
# all-MiniLM-L6-v2: a chunk is a paragraph or two, and neighbours share a sentence or so.
DEFAULT_CHUNK_TOKENS = 256
DEFAULT_OVERLAP_TOKENS = 32
# The splitter measures the same candidate spans many times over; one tokenization each.
_CACHE_SIZE = 1 << 16
_WORD_START = re.compile(r"(?<!\S)\S")


def chunk_document(
    document: Document,
    count_tokens: Callable[[str], int],
    size: int = DEFAULT_CHUNK_TOKENS,
    overlap: int = DEFAULT_OVERLAP_TOKENS,
) -> list[Chunk]:
    """``document`` cut into chunks of at most ``size`` tokens by ``count_tokens`` (the
    embedding model's tokenizer, counting what the model will read), each starting with up
    to ``overlap`` tokens of the end of the previous chunk under the same page and heading.
    A single word longer than the size is the only thing that can exceed it.
    """
    if size < 1:
        raise ValueError("chunk size must be at least 1 token")
    if not 0 <= overlap < size:
        raise ValueError("overlap must be at least 0 and smaller than the chunk size")
    count = lru_cache(maxsize=_CACHE_SIZE)(count_tokens)
    kind = MarkdownSplitter if document.kind == "markdown" else TextSplitter
    splitter = kind.from_callback(count, size - overlap)
    chunks: list[Chunk] = []
    for (page, heading), group in groupby(document.sections, key=lambda s: (s.page, s.heading)):
        sections = list(group)
        # Sections of one group are adjacent in Document.text, so offsets carry over.
        text = SECTION_SEPARATOR.join(s.text for s in sections)
        base = sections[0].start
        previous: tuple[int, int] | None = None  # the last piece's span in ``text``
        for offset, piece in splitter.chunk_indices(text):
            end = offset + len(piece)
            start = offset
            if previous is not None and overlap:
                start = _overlap_start(text, previous, offset, end, count, size, overlap)
            chunks.append(Chunk(text[start:end], page, heading, len(chunks), base + start))
            previous = (offset, end)
    return chunks


def _overlap_start(text: str, previous: tuple[int, int], own_start: int, end: int,
                   count: Callable[[str], int], size: int, overlap: int) -> int:
    """Where the chunk ending at ``end`` starts once it takes in the longest word-aligned
    tail of ``previous`` that fits ``overlap`` tokens and keeps the chunk within ``size``."""
    prev_start, prev_end = previous
    starts = [m.start() for m in _WORD_START.finditer(text, prev_start, prev_end)]
    starts = starts[-overlap:]  # a tail of n words has at least n tokens

    def fits(i: int) -> bool:
        return (count(text[starts[i]:prev_end]) <= overlap
                and count(text[starts[i]:end]) <= size)

    # Shorter tails (later starts) fit whenever a longer one does: find the first that fits.
    first = bisect.bisect_left(range(len(starts)), True, key=fits)
    return starts[first] if first < len(starts) else own_start
