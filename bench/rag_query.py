"""Query latency of hybrid document retrieval (issue 13): 100,000 stored chunks.

Synthetic chunks (Zipf-distributed words from a made-up vocabulary, ~60 words each) with random
384-dimension unit vectors are stored through the Store in 100 documents; then the median of
`Store.search_documents` (FTS5 BM25 + exact numpy cosine + RRF) over many queries. The vector
matrix is cached per collection, so the first query (which reads it) is reported on its own.

    .venv/bin/python bench/rag_query.py [--chunks 100000] [--queries 200]

Last line: ``rag_query_ms: X (floor 50) ok|BELOW`` (lower is better; the floor is a ceiling).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401  (puts the repository on sys.path)
import numpy as np
from _common import median, verdict

from app.engine.documents import Chunk
from app.models.store import Store

DIMS = 384
WORDS_PER_CHUNK = 60
CHUNKS_PER_DOCUMENT = 1000
FLOOR_MS = 50.0


def _vocabulary(rng: np.random.Generator, size: int = 20_000) -> np.ndarray:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return np.array(["".join(rng.choice(letters, rng.integers(3, 10))) for _ in range(size)])


def _words(rng: np.random.Generator, vocab: np.ndarray, n: int) -> np.ndarray:
    ranks = np.minimum(rng.zipf(1.2, n), len(vocab)) - 1
    return vocab[ranks]


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    vectors = rng.standard_normal((n, DIMS)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _fill(store: Store, collection_id: int, n_chunks: int, rng: np.random.Generator,
          vocab: np.ndarray) -> None:
    for doc in range(0, n_chunks, CHUNKS_PER_DOCUMENT):
        count = min(CHUNKS_PER_DOCUMENT, n_chunks - doc)
        words = _words(rng, vocab, count * WORDS_PER_CHUNK).reshape(count, WORDS_PER_CHUNK)
        chunks = [Chunk(" ".join(row), i // 10 + 1, None, i, i * 400)
                  for i, row in enumerate(words)]
        store.replace_document(collection_id, f"/bench/doc{doc // CHUNKS_PER_DOCUMENT}.txt",
                               chunks, _unit(rng, count), content_hash=None, mtime=0.0,
                               size=count)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(13)
    vocab = _vocabulary(rng)
    with tempfile.TemporaryDirectory() as folder, Store.open(Path(folder) / "h.db") as store:
        collection = store.create_collection("bench", "synthetic", 256, 32)
        started = time.perf_counter()
        _fill(store, collection.id, args.chunks, rng, vocab)
        print(f"stored {args.chunks} chunks in {time.perf_counter() - started:.1f} s")
        queries = [(" ".join(_words(rng, vocab, int(rng.integers(3, 8)))), vector)
                   for vector in _unit(rng, args.queries + 1)]
        started = time.perf_counter()
        store.search_documents([collection.id], *queries[0], top_k=5, threshold=0.0)
        print(f"first query (reads the vector matrix): "
              f"{(time.perf_counter() - started) * 1000:.1f} ms")
        times = []
        found = 0
        for query_text, vector in queries[1:]:
            started = time.perf_counter()
            hits = store.search_documents([collection.id], query_text, vector, top_k=5,
                                          threshold=0.0)
            times.append((time.perf_counter() - started) * 1000)
            found += len(hits)
        print(f"queries: {len(times)}, results per query: {found / len(times):.1f}, "
              f"p90 {np.percentile(times, 90):.1f} ms, max {max(times):.1f} ms")
        return verdict("rag_query_ms", median(times), FLOOR_MS, higher_is_better=False)


if __name__ == "__main__":
    sys.exit(main())
