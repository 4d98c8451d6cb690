"""Document collections in the Store and hybrid retrieval over them (issue 13), on a real
SQLite file and, for meaning, the real embedding model (all-MiniLM-L6-v2 as GGUF)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from app.engine.documents import Chunk
from app.engine.inference.embedding_runtime import EmbeddingRuntime
from app.engine.types import LoadSettings
from app.models.migrations import migrate_to
from app.models.store import CollectionExists, Store

PASSAGES = [
    "A kitten is curled up asleep on the rug by the fire.",
    "Stock markets fell sharply after the central bank raised interest rates.",
    "The recipe needs two cups of flour, three eggs and a pinch of salt.",
    "Volcanoes erupt when magma rises through cracks in the crust.",
    "The goalkeeper saved a penalty in the final minute of the match.",
    "Photosynthesis turns sunlight, water and carbon dioxide into sugar.",
    "The train to Edinburgh leaves from platform nine at noon.",
    "Regular backups protect your files against a failing hard drive.",
    "The violinist tuned her instrument before the concert began.",
    "Glaciers carve deep valleys as they move slowly downhill.",
]


@pytest.fixture(scope="module")
def embedder(embedding_model: Path) -> Iterator[EmbeddingRuntime]:
    with EmbeddingRuntime(embedding_model, LoadSettings()) as runtime:
        yield runtime


def _embed(runtime: EmbeddingRuntime, texts: list[str]) -> np.ndarray:
    return np.array(runtime.embed(texts).vectors, dtype=np.float32)


def _collection(store: Store, name: str = "notes") -> int:
    return store.create_collection(name, "all-MiniLM-L6-v2.gguf", 256, 32).id


def _index(store: Store, cid: int, path: str, texts: list[str], vectors: np.ndarray) -> None:
    chunks = [Chunk(t, page=i + 1, heading=f"Section {i}", index=i, start=i * 100)
              for i, t in enumerate(texts)]
    store.replace_document(cid, path, chunks, vectors, content_hash="h-" + path, mtime=1.0,
                           size=len(texts))


def _fts_hits(db_path: Path, word: str) -> int:
    with sqlite3.connect(db_path) as conn:
        conn.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('integrity-check')")
        count = conn.execute("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?",
                             (word,)).fetchone()[0]
    conn.close()
    return count


def test_a_question_finds_the_passage_that_means_it(hearth_store: Store,
                                                    embedder: EmbeddingRuntime) -> None:
    cid = _collection(hearth_store)
    _index(hearth_store, cid, "/docs/animals.md", PASSAGES, _embed(embedder, PASSAGES))
    query = "a cat sits on the mat"
    hits = hearth_store.search_documents([cid], query, _embed(embedder, [query])[0], top_k=3,
                                         threshold=0.3)
    assert hits and hits[0].text == PASSAGES[0]
    first = hits[0]
    assert (first.document_path, first.page, first.heading) == ("/docs/animals.md", 1,
                                                                 "Section 0")
    assert first.vector_rank == 1 and first.bm25_rank is None  # no shared word: meaning only
    assert first.cosine >= 0.3
    # Words alone work too (no embedding model at hand): BM25 with the porter stemmer matches
    # "erupting volcano" to "Volcanoes erupt".
    words_only = hearth_store.search_documents([cid], "erupting volcano", None)
    assert words_only[0].text == PASSAGES[3] and words_only[0].bm25_rank == 1


def test_nothing_relevant_is_an_honest_empty_answer(hearth_store: Store,
                                                    embedder: EmbeddingRuntime) -> None:
    cid = _collection(hearth_store)
    _index(hearth_store, cid, "/docs/misc.md", PASSAGES, _embed(embedder, PASSAGES))
    query = "How do I file my quarterly VAT return?"
    vector = _embed(embedder, [query])[0]
    assert hearth_store.search_documents([cid], query, vector, threshold=0.0)  # some, but weak
    assert hearth_store.search_documents([cid], query, vector, threshold=0.3) == []


def test_fusion_ranks_first_what_both_rankings_like(hearth_store: Store) -> None:
    # BM25 prefers A (the word twice), vectors prefer B (no word at all); C is second in both.
    # "zebra" is in half the chunks, so BM25 weighs 0.5: C scores 0.5/(2+2) + 1/(2+2), first;
    # A (0.5/3 + 1/6) and B (1/3) tie, and B, nearer in meaning, goes first.
    texts = {"A": "zebra zebra grazing", "B": "striped horse of africa",
             "C": "a zebra at the zoo", "D": "savanna animals"}
    vectors = np.array([[0.0, 0.2, 1.0], [1.0, 0.0, 0.0], [0.9, 0.3, 0.0], [0.7, 0.7, 0.0]])
    cid = _collection(hearth_store)
    _index(hearth_store, cid, "/zoo.txt", list(texts.values()), vectors)
    hits = hearth_store.search_documents([cid], "zebra", [1.0, 0.0, 0.0], threshold=-1.0)
    by_text = {v: k for k, v in texts.items()}
    assert [by_text[h.text] for h in hits] == ["C", "B", "A", "D"]
    assert [(h.bm25_rank, h.vector_rank) for h in hits] == [(2, 2), (None, 1), (1, 4),
                                                            (None, 3)]
    assert hits[0].fused == pytest.approx(0.5 / 4 + 1 / 4)
    # The threshold gates the answer as a whole: something comes near the question's meaning,
    # so the ranking stands, word matches included; nothing near, and the answer is empty.
    gated = hearth_store.search_documents([cid], "zebra", [1.0, 0.0, 0.0], threshold=0.5)
    assert [by_text[h.text] for h in gated] == ["C", "B", "A", "D"]
    assert hearth_store.search_documents([cid], "zebra", [0.0, 0.0, -1.0], threshold=0.5) == []


def test_a_word_few_chunks_hold_weighs_more_than_a_common_one(hearth_store: Store) -> None:
    # Eight chunks; the vectors rank E first. "okapi" is in one chunk (BM25 weighs 7/8) and
    # lifts it over E; "the" words in every chunk are dropped beside vectors altogether.
    texts = [f"the plain text number {n}" for n in range(7)] + ["the okapi is shy"]
    vectors = np.array([[1.0, 0.1 * n] for n in range(8)])
    vectors[0] = [1.0, 0.0]
    cid = _collection(hearth_store)
    _index(hearth_store, cid, "/animals.txt", texts, vectors)
    first = hearth_store.search_documents([cid], "okapi", [1.0, 0.0], threshold=-1.0)[0]
    assert first.text == "the okapi is shy" and first.bm25_rank == 1
    common = hearth_store.search_documents([cid], "the", [1.0, 0.0], threshold=-1.0)[0]
    assert common.text == texts[0] and common.bm25_rank is None


def test_a_failed_replace_leaves_the_old_chunks(hearth_store: Store, hearth_home: Path) -> None:
    cid = _collection(hearth_store)
    _index(hearth_store, cid, "/a.txt", ["old alpha text", "old beta text"], np.eye(2))

    def chunks() -> Iterator[Chunk]:
        yield Chunk("new gamma text", None, None, 0, 0)
        raise OSError("killed while reading the file")

    with pytest.raises(OSError):
        hearth_store.replace_document(cid, "/a.txt", chunks(), np.eye(2), content_hash="new",
                                      mtime=2.0, size=9)
    doc = hearth_store.get_document(cid, "/a.txt")
    assert doc is not None and (doc.content_hash, doc.mtime, doc.chunk_count) == ("h-/a.txt",
                                                                                  1.0, 2)
    texts = {h.text for h in hearth_store.search_documents([cid], "text", [1.0, 1.0],
                                                           threshold=-1)}
    assert texts == {"old alpha text", "old beta text"}
    db = hearth_home / "hearth.db"
    assert _fts_hits(db, "gamma") == 0 and _fts_hits(db, "alpha") == 1
    # A whole replace does replace, and the cached vectors follow it.
    _index(hearth_store, cid, "/a.txt", ["new gamma text"], np.array([[0.0, 1.0]]))
    hits = hearth_store.search_documents([cid], "nothing", [0.0, 1.0], threshold=0.9)
    assert [h.text for h in hits] == ["new gamma text"]
    assert _fts_hits(db, "alpha") == 0


@pytest.mark.parametrize("query", [
    '"', '""', "cat\"", 'NEAR(cat mat, 2)', "text:cat", "cat*", "^cat", "cat OR", "AND",
    "NOT cat", "(cat", "cat)", "'; DROP TABLE chunks; --", "\x00cat", "{text}: cat",
    "cat + mat", "-cat", "*", "c" * 5000, " ".join(["cat"] * 500), "😺 cat",
])
def test_hostile_queries_are_plain_words(hearth_store: Store, hearth_home: Path,
                                         query: str) -> None:
    cid = _collection(hearth_store)
    _index(hearth_store, cid, "/pets.txt", ["the cat sat", "a dog ran", "birds sing"],
           np.eye(3))
    hits = hearth_store.search_documents([cid], query, None)
    if "cat" in query.lower().replace("c" * 5000, ""):
        assert [h.text for h in hits] == ["the cat sat"]
    else:
        assert hits == []
    assert len(hearth_store.search_documents([cid], "sat ran sing", None)) == 3
    # Common words are searched when they are all there is.
    assert [h.text for h in hearth_store.search_documents([cid], "the", None)] == ["the cat sat"]


def test_deleting_removes_chunks_and_their_index(hearth_store: Store, hearth_home: Path) -> None:
    keep, drop = _collection(hearth_store, "keep"), _collection(hearth_store, "drop")
    _index(hearth_store, keep, "/k.txt", ["kept walrus"], np.eye(1))
    _index(hearth_store, drop, "/d.txt", ["dropped walrus", "dropped narwhal"], np.eye(2))
    _index(hearth_store, drop, "/e.txt", ["other seal"], np.eye(1))
    db = hearth_home / "hearth.db"
    assert hearth_store.remove_document(drop, "/e.txt")
    assert _fts_hits(db, "seal") == 0
    assert hearth_store.delete_collection(drop)
    assert _fts_hits(db, "walrus") == 1 and _fts_hits(db, "narwhal") == 0
    assert [c.name for c in hearth_store.list_collections()] == ["keep"]
    assert [h.text for h in hearth_store.search_documents([keep, drop], "walrus", [1.0])] == [
        "kept walrus"]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM chunks").fetchone() == (1,)
    conn.close()


def test_incremental_indexing_state_and_failures(hearth_store: Store) -> None:
    cid = _collection(hearth_store)
    with pytest.raises(CollectionExists):
        _collection(hearth_store)
    _index(hearth_store, cid, "/same.txt", ["same"], np.eye(1))
    _index(hearth_store, cid, "/edited.txt", ["edited"], np.eye(1))
    hearth_store.mark_document_failed(cid, "/secret.pdf", "The PDF is encrypted", mtime=1.0,
                                      size=5)
    on_disk = {"/same.txt": (1.0, 1), "/edited.txt": (3.0, 1), "/secret.pdf": (1.0, 5),
               "/new.md": (1.0, 2)}
    assert hearth_store.documents_to_index(cid, on_disk) == ["/edited.txt", "/secret.pdf",
                                                             "/new.md"]
    [failed] = hearth_store.failed_documents(cid)
    assert (failed.path, failed.status, failed.error) == ("/secret.pdf", "failed",
                                                          "The PDF is encrypted")
    # Only touched, same hash: recorded without re-embedding, and no longer listed.
    assert hearth_store.touch_document(cid, "/edited.txt", 3.0, 1)
    assert hearth_store.documents_to_index(cid, on_disk) == ["/secret.pdf", "/new.md"]
    # A document that becomes unreadable loses its chunks: they no longer describe the file.
    hearth_store.mark_document_failed(cid, "/same.txt", "Truncated file", mtime=4.0, size=0)
    assert [h.text for h in hearth_store.search_documents([cid], "same", [1.0])] == ["edited"]
    assert hearth_store.get_document(cid, "/same.txt").chunk_count == 0  # type: ignore[union-attr]


def test_chats_use_several_collections(hearth_store: Store) -> None:
    chat = hearth_store.create_chat("Research")
    a, b = _collection(hearth_store, "papers"), _collection(hearth_store, "manuals")
    assert hearth_store.attach_collection(chat.id, a) and hearth_store.attach_collection(chat.id, b)
    assert hearth_store.attach_collection(chat.id, a)  # twice is harmless
    assert not hearth_store.attach_collection(chat.id, 999)
    assert [c.name for c in hearth_store.chat_collections(chat.id)] == ["manuals", "papers"]
    assert hearth_store.detach_collection(chat.id, b)
    hearth_store.delete_collection(a)
    assert hearth_store.chat_collections(chat.id) == []
    assert hearth_store.get_chat(chat.id) is not None


def test_another_process_changing_a_collection_refreshes_the_cache(hearth_store: Store,
                                                                   hearth_home: Path) -> None:
    cid = _collection(hearth_store)
    _index(hearth_store, cid, "/a.txt", ["first version"], np.array([[1.0, 0.0]]))
    assert [h.text for h in hearth_store.search_documents([cid], "", [1.0, 0.0])] == [
        "first version"]
    with Store.open(hearth_home / "hearth.db") as other:
        _index(other, cid, "/a.txt", ["second version"], np.array([[0.0, 1.0]]))
    hits = hearth_store.search_documents([cid], "", [0.0, 1.0], threshold=0.9)
    assert [h.text for h in hits] == ["second version"]


def test_upgrading_from_0008_keeps_chats_and_going_back_drops_documents(tmp_path: Path) -> None:
    db = tmp_path / "hearth.db"
    migrate_to(db, "0008_chat_tools")
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO chats (title, system_prompt, sampling, overflow_policy, "
                     "created_at, updated_at) VALUES ('Old chat', '', '{}', 'stop', "
                     "'2026-01-01 00:00:00', '2026-01-01 00:00:00')")
    conn.close()
    with Store.open(db) as store:  # upgrades to head (0009)
        [chat] = store.list_chats()
        assert chat.title == "Old chat"
        cid = _collection(store)
        _index(store, cid, "/a.txt", ["kept text"], np.eye(1))
        assert store.attach_collection(chat.id, cid)
    migrate_to(db, "0008_chat_tools", down=True)
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert conn.execute("SELECT title FROM chats").fetchall() == [("Old chat",)]
    conn.close()
    assert not tables & {"collections", "documents", "chunks", "chunks_fts", "chat_collections"}


def test_chunks_near_gives_a_cited_chunk_with_its_neighbours_from_the_right_file(
        hearth_store: Store) -> None:
    from app.engine.documents.chunking import chunk_document
    from app.engine.documents.types import Document, Section

    text = " ".join(f"Sentence number {n} of the long report." for n in range(60))
    chunks = chunk_document(Document("/r.txt", "text", [Section(text, None, None, 0)]),
                            lambda t: len(t.split()), size=40, overlap=8)
    assert len(chunks) > 5
    assert all(text[c.start:c.start + len(c.text)] == c.text for c in chunks)
    cid = _collection(hearth_store)
    hearth_store.replace_document(cid, "/r.txt", chunks, np.ones((len(chunks), 2)),
                                  content_hash="r", mtime=1.0, size=len(text))
    _index(hearth_store, cid, "/other.txt", ["elsewhere"], np.eye(1))

    near = hearth_store.chunks_near("/r.txt", chunks[3].start)
    assert [c.position for c in near] == [2, 3, 4]
    assert [(c.start, c.text) for c in near] == [(c.start, c.text) for c in chunks[2:5]]
    # An offset inside a chunk finds the chunk it falls in; the first has no left neighbour.
    assert [c.position for c in hearth_store.chunks_near("/r.txt", chunks[1].start - 1)] == [
        0, 1]
    assert [c.position for c in hearth_store.chunks_near("/r.txt", 0, around=2)] == [0, 1, 2]
    assert hearth_store.chunks_near("/gone.txt", 0) == []
    hearth_store.remove_document(cid, "/r.txt")
    assert hearth_store.chunks_near("/r.txt", chunks[3].start) == []
