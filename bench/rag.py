"""Retrieval quality of document search (issue 13): BM25 alone, vectors alone and hybrid.

The texts bundled in resources/samples/ (alice.txt, public domain, and hearth_facts.md, short
factual passages written for Hearth) are read and chunked as Hearth does (`read_document`,
`chunk_document` counting the embedding model's tokens, the default chunk size and overlap),
embedded with the real starter embedding model (all-MiniLM-L6-v2 as GGUF, loaded through the
`ModelPool` as a model of kind "embeddings") and stored in a temporary Store. Each question of
bench/data/rag_questions.json (how it was made is in the file) is then ranked three ways by
`Store.search_documents`:

- bm25: ``query_vector=None`` (FTS5 BM25 alone, no threshold);
- vectors: an empty query text (no BM25 words) and ``threshold=-1`` (cosine ranking alone);
- hybrid: the question's text and vector, fused by the Store (RRF, pool 50), ranked with the
  relevance gate off as the other two are; the gate's cost is printed on its own row.

A question's relevant chunks are those containing one of its answer spans (a span can fall in
two chunks where they overlap: it is one passage, so the first one found counts).
recall@5 is the share of questions whose passage is in the top 5; nDCG@10 has one relevant
passage per question, so it is the mean of 1 / log2(1 + rank) over the top 10.

    .venv/bin/python bench/rag.py

Last line: ``rag_hybrid_vs_best: X (floor 1.0) ok|BELOW`` where X is the smaller of hybrid's
recall@5 and nDCG@10 each divided by the better single method's. About 15 s on 2 CPU cores
(the first run also converts the embedding model into ~/.cache/hearth-bench/models).

What it found (November 2026, 68 chunks, 113 questions). With the Store's first fusion (equal
weights, RRF k=60, the cosine threshold on every candidate) hybrid was BELOW: 0.956 / 0.930
against vectors' 0.982 / 0.961, because any chunk both rankings listed outranked the vectors'
clear first choice (the OR query matches a third of the chunks), and the threshold dropped
answers whose cosine is low (the answer to "What is the rule of 72?" has 0.16). Now BM25 weighs
the share of chunks its words leave out, RRF's k is 2 (only the first places are shown), and
the threshold gates the whole answer instead of each candidate: hybrid 0.991 / 0.964, over both.
The gate costs what the last row shows: MiniLM's cosines for real answers (down to 0.17) and for
questions about nothing in the library (0.12-0.25) overlap, so a default of 0.2 lets 2 of 113
answers go; it is a setting.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import _common  # noqa: F401  (puts the repository on sys.path)
from _common import ROOT, verdict

from app.engine.documents import chunk_document, read_document
from app.engine.serving.pool import ModelPool
from app.engine.starter_embedding import starter_embedding_model
from app.engine.types import LoadSettings
from app.models.store import Store
from app.models.store.retrieval import DEFAULT_THRESHOLD

SAMPLES = ROOT / "resources" / "samples"
TEXTS = ("hearth_facts.md", "alice.txt")
QUESTIONS = ROOT / "bench" / "data" / "rag_questions.json"
CACHE = Path(os.environ.get("HEARTH_BENCH_CACHE", Path.home() / ".cache" / "hearth-bench"))
FLOOR = 1.0
EMBED_BATCH = 32


@dataclass(frozen=True)
class Question:
    text: str
    kind: str
    relevant: frozenset[int]  # chunk ids that contain an answer span


@dataclass(frozen=True)
class Scores:
    recall5: float
    ndcg10: float


def _first_relevant_rank(ranking: Sequence[int], relevant: frozenset[int]) -> int | None:
    return next((r for r, cid in enumerate(ranking, start=1) if cid in relevant), None)


def score(rankings: Sequence[Sequence[int]], questions: Sequence[Question]) -> Scores:
    """recall@5 and nDCG@10 of these rankings (one per question, best first)."""
    hits5 = 0
    dcg = 0.0
    for ranking, question in zip(rankings, questions, strict=True):
        rank = _first_relevant_rank(ranking[:10], question.relevant)
        if rank is not None:
            hits5 += rank <= 5
            dcg += 1.0 / math.log2(1 + rank)
    return Scores(hits5 / len(questions), dcg / len(questions))


def _index(store: Store, collection_id: int, embed: Callable[[list[str]], list[list[float]]],
           count_tokens: Callable[[str], int]) -> None:
    """Chunk, embed and store the sample texts."""
    for name in TEXTS:
        document = read_document(SAMPLES / name)
        chunks = chunk_document(document, count_tokens)
        vectors: list[list[float]] = []
        for at in range(0, len(chunks), EMBED_BATCH):
            vectors.extend(embed([c.text for c in chunks[at:at + EMBED_BATCH]]))
        store.replace_document(collection_id, document.path, chunks, vectors,
                               content_hash=None, mtime=0.0, size=len(document.text))


def _chunk_texts(store: Store, collection_id: int, vector: list[float]) -> dict[int, str]:
    """Every stored chunk's text, read through the search itself (a vector-only search with no
    threshold and a pool as big as the collection returns all of them)."""
    total = sum(d.chunk_count for d in store.list_documents(collection_id))
    hits = store.search_documents([collection_id], "", vector, top_k=total, threshold=-2.0,
                                  pool=total)
    return {h.chunk_id: h.text for h in hits}


def _questions(chunks: dict[int, str]) -> list[Question]:
    data = json.loads(QUESTIONS.read_text(encoding="utf-8"))
    questions = []
    for item in data["questions"]:
        relevant = frozenset(cid for cid, text in chunks.items()
                             if any(span in text for span in item["answers"]))
        if not relevant:
            raise SystemExit(f"question {item['id']}: no chunk holds its answer; the chunking "
                             "cut every answer span: shorten the span in the data file")
        questions.append(Question(item["question"], item["kind"], relevant))
    return questions


def main() -> int:
    started = time.perf_counter()
    model_path = starter_embedding_model(CACHE / "models")
    pool = ModelPool()
    model = pool.load("minilm", model_path, LoadSettings(n_ctx=512), kind="embeddings")
    try:
        with tempfile.TemporaryDirectory() as folder, Store.open(Path(folder) / "h.db") as store:
            collection = store.create_collection("bench", str(model_path), 256, 32)
            cid = collection.id
            indexed = time.perf_counter()
            _index(store, cid, lambda texts: model.embed(texts).vectors, model.count_tokens)
            indexed = time.perf_counter() - indexed
            data = json.loads(QUESTIONS.read_text(encoding="utf-8"))["questions"]
            vectors = model.embed([q["question"] for q in data]).vectors
            chunks = _chunk_texts(store, cid, vectors[0])
            questions = _questions(chunks)
            print(f"{len(chunks)} chunks from {len(TEXTS)} texts indexed in {indexed:.1f} s; "
                  f"{len(questions)} questions")

            def ranked(text: str, vector: list[float] | None, **kw: float) -> list[int]:
                return [h.chunk_id for h in store.search_documents([cid], text, vector,
                                                                   top_k=10, **kw)]

            runs = {
                "bm25": [ranked(q.text, None) for q in questions],
                "vectors": [ranked("", v, threshold=-1.0) for v in vectors],
                "hybrid": [ranked(q.text, v, threshold=-1.0)
                           for q, v in zip(questions, vectors, strict=True)],
                "hybrid, gated (chat)": [ranked(q.text, v)
                                         for q, v in zip(questions, vectors, strict=True)],
            }
            _report(runs, questions)
    finally:
        pool.unload("minilm")
    print(f"took {time.perf_counter() - started:.1f} s")
    scores = {name: score(r, questions) for name, r in runs.items()}
    best_recall = max(scores["bm25"].recall5, scores["vectors"].recall5)
    best_ndcg = max(scores["bm25"].ndcg10, scores["vectors"].ndcg10)
    ratio = min(scores["hybrid"].recall5 / best_recall, scores["hybrid"].ndcg10 / best_ndcg)
    return verdict("rag_hybrid_vs_best", ratio, FLOOR, higher_is_better=True)


def _report(runs: dict[str, list[list[int]]], questions: list[Question]) -> None:
    kinds = sorted({q.kind for q in questions})
    header = f"{'method':<22}{'recall@5':>10}{'nDCG@10':>10}" + "".join(
        f"{'r@5 ' + k:>14}" for k in kinds)
    print(header)
    for name, rankings in runs.items():
        overall = score(rankings, questions)
        row = f"{name:<22}{overall.recall5:>10.3f}{overall.ndcg10:>10.3f}"
        for kind in kinds:
            picked = [(r, q) for r, q in zip(rankings, questions, strict=True) if q.kind == kind]
            sub = score([r for r, _ in picked], [q for _, q in picked])
            row += f"{sub.recall5:>14.3f}"
        print(row)
    print(f"(plain rankings; the last row is what a chat gets, with the Store's default relevance "
          f"gate, cosine {DEFAULT_THRESHOLD}: an empty answer where nothing comes near)")


if __name__ == "__main__":
    sys.exit(main())
