"""Token-aware chunks measured by the real embedding model's tokenizer (all-MiniLM-L6-v2):
within the size, overlapping, one page and heading each, positioned in the document."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from document_files import write_pdf

from app.engine.documents import (
    DEFAULT_CHUNK_TOKENS,
    DEFAULT_OVERLAP_TOKENS,
    Chunk,
    Document,
    Section,
    chunk_document,
    read_document,
)
from app.engine.inference.embedding_runtime import EmbeddingRuntime
from app.engine.types import LoadSettings

_WORDS = ("lantern harbour ledger quantize meadow copper signal orchard beacon tokenizer "
          "granite willow voltage parchment compass embedding").split()


@pytest.fixture(scope="module")
def count_tokens(embedding_model: Path) -> Iterator[Callable[[str], int]]:
    # What the embedding model reads, [CLS] and [SEP] included: a chunk must fit whole.
    with EmbeddingRuntime(embedding_model, LoadSettings(n_threads=1)) as rt:
        yield lambda text: len(rt.tokenize(text))


def _prose(seed: int, paragraphs: int) -> str:
    rng = random.Random(seed)
    return "\n\n".join(
        " ".join(rng.choice(_WORDS) for _ in range(rng.randint(15, 90))) + "."
        for _ in range(paragraphs))


def _check_positions(doc: Document, chunks: list[Chunk]) -> None:
    text = doc.text
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        assert text[c.start:c.start + len(c.text)] == c.text


def test_chunks_fit_the_embedding_model_and_overlap(tmp_path: Path,
                                                    count_tokens: Callable[[str], int]) -> None:
    path = tmp_path / "long.md"
    path.write_text(f"# Alpha\n\n{_prose(1, 40)}\n\n## Beta\n\n{_prose(2, 40)}\n\n"
                    f"# Gamma\n\nShort closing words.\n")
    doc = read_document(path)
    chunks = chunk_document(doc, count_tokens)
    assert (DEFAULT_CHUNK_TOKENS, DEFAULT_OVERLAP_TOKENS) == (256, 32)
    assert all(count_tokens(c.text) <= DEFAULT_CHUNK_TOKENS for c in chunks)
    # Filled, not one paragraph each: the splitter packs paragraphs up to the size.
    alpha = [c for c in chunks if c.heading == "Alpha"]
    assert len(alpha) >= 4
    assert max(count_tokens(c.text) for c in alpha) > DEFAULT_CHUNK_TOKENS * 0.7
    # Neighbours under one heading share text: each starts with the previous one's last words,
    # up to the overlap in tokens.
    for a, b in zip(alpha, alpha[1:], strict=False):
        shared = doc.text[b.start:a.start + len(a.text)]
        assert shared and a.text.endswith(shared) and b.text.startswith(shared)
        assert DEFAULT_OVERLAP_TOKENS // 2 < count_tokens(shared) <= DEFAULT_OVERLAP_TOKENS
    # Nothing is lost: every paragraph of the document lies inside some chunk.
    for para in doc.text.split("\n\n"):
        assert any(para in c.text for c in chunks)
    # Chunks never cross a heading.
    assert [c.heading for c in chunks][-1] == "Gamma"
    assert chunks[-1].text == "Short closing words."
    assert {c.heading for c in chunks} == {"Alpha", "Alpha > Beta", "Gamma"}
    _check_positions(doc, chunks)


def test_smaller_size_and_overlap_are_honoured(count_tokens: Callable[[str], int]) -> None:
    text = _prose(3, 10)
    doc = Document("x.txt", "text", [Section(text, None, None, 0)])
    chunks = chunk_document(doc, count_tokens, size=64, overlap=16)
    assert len(chunks) > len(chunk_document(doc, count_tokens)) * 2
    assert all(count_tokens(c.text) <= 64 for c in chunks)
    overlaps = [a.start + len(a.text) - b.start for a, b in zip(chunks, chunks[1:], strict=False)]
    assert any(o > 0 for o in overlaps)
    _check_positions(doc, chunks)


def test_pdf_chunks_keep_their_page(tmp_path: Path, count_tokens: Callable[[str], int]) -> None:
    pages = [_prose(10 + n, 6).replace("lantern", f"pagemark{n}") for n in range(1, 4)]
    doc = read_document(write_pdf(tmp_path / "book.pdf", pages, table_on_page=3))
    chunks = chunk_document(doc, count_tokens, size=96, overlap=16)
    assert {c.page for c in chunks} == {1, 2, 3}
    for c in chunks:
        others = {f"pagemark{n}" for n in range(1, 4)} - {f"pagemark{c.page}"}
        assert not any(mark in c.text for mark in others)  # never across pages
    assert any("MiniLM | 22 MB | Apache-2.0" in c.text for c in chunks if c.page == 3)
    assert all(count_tokens(c.text) <= 96 for c in chunks)
    _check_positions(doc, chunks)


def test_bad_sizes_are_refused(count_tokens: Callable[[str], int]) -> None:
    doc = Document("x.txt", "text", [Section("words", None, None, 0)])
    with pytest.raises(ValueError):
        chunk_document(doc, count_tokens, size=32, overlap=32)
    with pytest.raises(ValueError):
        chunk_document(doc, count_tokens, size=0, overlap=0)


def test_a_megabyte_chunks_quickly(count_tokens: Callable[[str], int]) -> None:
    text = _prose(7, 4000)
    while len(text) < 1_000_000:
        text += "\n\n" + text
    text = text[:1_000_000]
    doc = Document("big.txt", "text", [Section(text, None, None, 0)])
    started = time.perf_counter()
    chunks = chunk_document(doc, count_tokens)
    elapsed = time.perf_counter() - started
    assert len(chunks) > 500
    assert elapsed < 10, f"1 MB took {elapsed:.1f} s"  # about 0.25 s here
