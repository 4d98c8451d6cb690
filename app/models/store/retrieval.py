"""Hybrid retrieval over document collections: FTS5 BM25 plus exact cosine similarity,
fused by reciprocal rank fusion (issue 13).

API (on `Store`)::

    store.search_documents(collection_ids, query_text, query_vector, top_k=5,
                           threshold=DEFAULT_THRESHOLD)
        -> list[RetrievedChunk]  # best first; [] is the honest "nothing relevant found"

- BM25: the query's words, each quoted (so quotes, ``*``, ``^``, parentheses, AND/OR/NOT,
  NEAR and ``column:`` filters are plain words) and joined by OR, matched against chunks_fts
  and ranked by ``bm25()``. ``bm25()`` costs about 1.4 µs per matching chunk, so a word found
  in most chunks would cost 100+ ms at 100,000 chunks while adding almost nothing to the
  ranking (its IDF is near zero; FTS5 clamps it to 1e-6 past half the chunks). So common
  English words are left out unless they are all there is, words in more than half of all
  chunks are dropped (unless there is no query vector and nothing else), and the rest are
  taken rarest first while the chunks they match stay within ``BM25_BUDGET`` (the rarest word
  is always kept). Counting a word's chunks is a
  doclist scan without scoring (up to a few ms for a common word), so counts are cached until
  the chunks change.
- Vectors: exact cosine over the collection's float32 vectors with numpy. The matrix is read
  once per collection and kept in memory; each query reads the collection's ``generation``
  (one indexed row) and reloads only when the chunks changed, in this process or another.
  Exact search met the 50 ms median at 100,000 chunks of 384 dims (bench/rag_query.py), so
  there is no approximate index or sqlite-vec to keep in step.
- Fusion: each candidate scores ``weight / (RRF_K + rank)`` summed over the two rankings it is
  in (reciprocal rank fusion). The vector ranking weighs 1; the BM25 ranking weighs what share
  of the chunks its words leave out: words found in a third of the library say little about
  which passage answers, words found in a handful say a lot. ``RRF_K`` is small because only
  the first few places are ever shown: with the usual 60, anything both rankings list at all
  outranks the vectors' clear first choice. bench/rag.py measured the choice (hybrid against
  BM25 alone and vectors alone on 113 labelled questions).
- The ``threshold`` is on cosine and gates the whole answer: when no passage comes within it
  of the question's meaning, the result is empty (the honest "nothing relevant found");
  otherwise the fused ranking stands as it is. Without a query vector (no embedding model at
  hand) the search is BM25 alone, ungated.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from app.models.document_records import RetrievedChunk
from app.models.store.database import Database

__all__ = ["DEFAULT_THRESHOLD", "RRF_K", "RetrievalStore", "docs_fts_query", "docs_fts_words",
           "rrf"]

RRF_K = 2
# all-MiniLM-L6-v2's cosine between a question and the passage that answers it fell to 0.17 on
# bench/rag.py's questions, while questions about nothing in the library reached 0.12-0.25:
# the gate is a trade-off, a setting, and this default lets few answers go.
DEFAULT_THRESHOLD = 0.2
MAX_QUERY_TERMS = 16
BM25_BUDGET = 10_000  # chunks scored by bm25() per query, beyond the rarest word's
_STOPWORDS = frozenset(
    "a an and are as at be but by for from has have he her his i if in into is it its of on or "
    "our she so that the their them then there these they this to was we were what when where "
    "which who will with you your".split()
)
_WORD = re.compile(r"\w+")

_GENERATIONS_SQL = text("SELECT id, generation FROM collections WHERE id IN :ids").bindparams(
    bindparam("ids", expanding=True))
_VECTORS_SQL = text("SELECT id, vector FROM chunks WHERE collection_id = :cid "
                    "AND dimensions = :dims ORDER BY id")
# Every change to the set of chunks changes one of these: inserts raise the (AUTOINCREMENT)
# largest id, deletions alone lower the count.
_CHUNK_STATE_SQL = text("SELECT (SELECT coalesce(sum(chunk_count), 0) FROM documents), "
                        "(SELECT coalesce(max(id), 0) FROM chunks)")
_DF_CACHE_SIZE = 10_000
_DF_SQL = text("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH :word")
_BM25_SQL = text(
    "SELECT c.id FROM chunks_fts JOIN chunks AS c ON c.id = chunks_fts.rowid "
    "WHERE chunks_fts MATCH :query AND c.collection_id IN :ids ORDER BY rank LIMIT :limit"
).bindparams(bindparam("ids", expanding=True))
_DETAILS_SQL = text(
    "SELECT c.id, c.text, d.path, c.page, c.heading, c.start FROM chunks AS c "
    "JOIN documents AS d ON d.id = c.document_id WHERE c.id IN :ids"
).bindparams(bindparam("ids", expanding=True))


def docs_fts_words(raw: str) -> list[str]:
    """The words of ``raw`` (untrusted) as quoted FTS5 strings, common English ones left out
    unless they are all there is.

    Only runs of letters/digits are kept and each is quoted, so nothing in ``raw`` can act as
    FTS5 syntax."""
    words = list(dict.fromkeys(w.lower() for w in _WORD.findall(raw)))
    meaningful = [w for w in words if w not in _STOPWORDS] or words
    return ['"' + w.replace('"', '""') + '"' for w in meaningful[:MAX_QUERY_TERMS]]


def docs_fts_query(raw: str) -> str | None:
    """An FTS5 query matching any of the words in ``raw``, or None if it has none."""
    return " OR ".join(docs_fts_words(raw)) or None


def rrf(rankings: Sequence[Sequence[int]], k: int = RRF_K,
        weights: Sequence[float] | None = None) -> dict[int, float]:
    """Reciprocal rank fusion: id -> sum over rankings of weight / (k + rank), ranks from 1."""
    scores: dict[int, float] = {}
    for n, ranking in enumerate(rankings):
        weight = 1.0 if weights is None else weights[n]
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return scores


@dataclass(frozen=True)
class _Matrix:
    generation: int
    ids: np.ndarray  # int64, ascending
    unit: np.ndarray  # float32 (n, dims), rows scaled to length 1


class RetrievalStore(Database):
    """Store mixin: hybrid search over document collections, with the vector cache."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self._matrices: dict[tuple[int, int], _Matrix] = {}
        self._matrix_lock = threading.Lock()
        # word -> chunks it is in, for the chunk state it was counted in (counting a common
        # word is the dearest part of a query, and common words recur).
        self._df_state: tuple[int, int] = (-1, -1)
        self._df: dict[str, int] = {}

    def search_documents(self, collection_ids: Sequence[int], query_text: str,
                         query_vector: Sequence[float] | np.ndarray | None, *, top_k: int = 5,
                         threshold: float = DEFAULT_THRESHOLD, pool: int = 50
                         ) -> list[RetrievedChunk]:
        """The ``top_k`` best passages of these collections for the query, best first.

        ``pool`` candidates are taken from each ranking before fusion."""
        ids = sorted(set(collection_ids))
        if not ids or top_k <= 0:
            return []
        pool = max(pool, top_k)
        query = None if query_vector is None else np.asarray(query_vector, dtype=np.float32)
        with self._reading() as conn:
            bm25_ids, bm25_weight = self._bm25(conn, ids, query_text, pool,
                                               hybrid=query is not None)
            matrices = self._current_matrices(conn, ids, query) if query is not None else []
        cosines: dict[int, float] = {}
        vector_ids: list[int] = []
        if query is not None:
            vector_ids, cosines = _nearest(matrices, query, pool, bm25_ids)
        fused = rrf([bm25_ids, vector_ids],
                    weights=[bm25_weight if query is not None else 1.0, 1.0])
        if query is not None and max(cosines.values(), default=-1.0) < threshold:
            return []  # nothing comes near the question's meaning
        best = sorted(fused, key=lambda i: (-fused[i], -cosines.get(i, 0.0), i))[:top_k]
        if not best:
            return []
        with self._reading() as conn:
            details = {row[0]: row for row in conn.execute(_DETAILS_SQL, {"ids": best})}
        bm25_rank = {i: r for r, i in enumerate(bm25_ids, start=1)}
        vector_rank = {i: r for r, i in enumerate(vector_ids, start=1)}
        return [
            RetrievedChunk(i, details[i][1], details[i][2], details[i][3], details[i][4],
                           details[i][5], cosines.get(i), bm25_rank.get(i),
                           vector_rank.get(i), fused[i])
            for i in best if i in details
        ]

    def _bm25(self, conn: Connection, ids: list[int], query_text: str, limit: int, *,
              hybrid: bool) -> tuple[list[int], float]:
        """The BM25 ranking and its weight in the fusion (the share of chunks its words leave
        out)."""
        try:
            match, weight = self._bm25_match(conn, docs_fts_words(query_text), hybrid)
            if match is None:
                return [], 0.0
            rows = conn.execute(_BM25_SQL, {"query": match, "ids": ids, "limit": limit}).all()
        except OperationalError as exc:
            # docs_fts_query makes this unreachable; a question must never crash the app.
            if "fts5" not in str(exc).lower():
                raise
            return [], 0.0
        return [row[0] for row in rows], weight

    def _bm25_match(self, conn: Connection, words: list[str], hybrid: bool
                    ) -> tuple[str | None, float]:
        """The OR of the words worth scoring (see the module's note on BM25_BUDGET), and the
        share of all chunks they leave out."""
        if not words:
            return None, 0.0
        total, last_id = conn.execute(_CHUNK_STATE_SQL).one()
        counted = sorted((self._chunks_with(conn, w, (total, last_id)), w) for w in words)
        kept: list[str] = []
        scored = 0
        for df, word in counted:
            # Beside vectors, a word in most chunks would only add a ranking by noise; alone,
            # its matches are still better than nothing.
            if df == 0 or (2 * df > total and (hybrid or kept)):
                continue
            if kept and scored + df > BM25_BUDGET:
                break
            kept.append(word)
            scored += df
        # ``scored`` counts a chunk once per word it holds: the share left out is at least this.
        return " OR ".join(kept) or None, max(0.0, 1.0 - scored / total) if total else 0.0

    def _chunks_with(self, conn: Connection, word: str, state: tuple[int, int]) -> int:
        with self._matrix_lock:
            if state != self._df_state or len(self._df) > _DF_CACHE_SIZE:
                self._df_state, self._df = state, {}
            known = self._df.get(word)
        if known is None:
            known = int(conn.execute(_DF_SQL, {"word": word}).scalar_one())
            with self._matrix_lock:
                if state == self._df_state:
                    self._df[word] = known
        return known

    def _current_matrices(self, conn: Connection, ids: list[int],
                          query: np.ndarray) -> list[_Matrix]:
        dims = int(query.shape[0])
        generations = dict(conn.execute(_GENERATIONS_SQL, {"ids": ids}).all())
        matrices = []
        with self._matrix_lock:
            for cid, generation in generations.items():
                cached = self._matrices.get((cid, dims))
                if cached is None or cached.generation != generation:
                    cached = _load_matrix(conn, cid, dims, generation)
                    self._matrices[(cid, dims)] = cached
                matrices.append(cached)
            # Collections deleted since: let their matrices go.
            for key in [k for k in self._matrices if k[0] in ids and k[0] not in generations]:
                del self._matrices[key]
        return matrices


def _load_matrix(conn: Connection, collection_id: int, dims: int, generation: int) -> _Matrix:
    rows = conn.execute(_VECTORS_SQL, {"cid": collection_id, "dims": dims}).all()
    ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
    unit = np.frombuffer(b"".join(row[1] for row in rows), dtype="<f4").reshape(len(rows), dims)
    norms = np.linalg.norm(unit, axis=1, keepdims=True)
    unit = (unit / np.where(norms == 0, 1.0, norms)).astype(np.float32)
    return _Matrix(generation, ids, unit)


def _nearest(matrices: list[_Matrix], query: np.ndarray, pool: int,
             also: list[int]) -> tuple[list[int], dict[int, float]]:
    """The ``pool`` nearest chunk ids by cosine, and the cosine of those and of ``also``."""
    norm = float(np.linalg.norm(query))
    if norm == 0 or not np.isfinite(norm):
        return [], {}
    unit = query / norm
    found: list[tuple[float, int]] = []
    cosines: dict[int, float] = {}
    wanted = np.asarray(also, dtype=np.int64)
    for matrix in matrices:
        if not len(matrix.ids):
            continue
        sims = matrix.unit @ unit
        take = min(pool, len(sims))
        top = np.argpartition(-sims, take - 1)[:take]
        found.extend((float(sims[i]), int(matrix.ids[i])) for i in top)
        at = np.searchsorted(matrix.ids, wanted)
        hit = (at < len(matrix.ids)) & (matrix.ids[np.minimum(at, len(matrix.ids) - 1)] == wanted)
        cosines.update(zip(wanted[hit].tolist(), sims[at[hit]].tolist(), strict=True))
    found.sort(key=lambda pair: (-pair[0], pair[1]))
    nearest = found[:pool]
    cosines.update((cid, sim) for sim, cid in nearest)
    return [cid for _, cid in nearest], cosines
