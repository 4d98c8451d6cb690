"""A chat's documents, for the window and `hearth chat --docs` alike: the collections it answers
from, their embedding models loaded in the serving pool, and the chat model's tokenizer, so each
question gets its document context (issue 13).

The question is stored as typed; only the copy sent to the model carries the documents, fenced as
untrusted quoted material. The context left is counted with the chat model's own tokenizer (its
vocabulary loaded alone: the model itself lives on the engine host's thread), less the reply's
room and a little per message for the chat template's markers.

Retrieval's top-k and relevance threshold are the user's settings (`retrieval_settings`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from app.engine.gguf.info import GGUFError
from app.engine.inference.runtime import LoadError
from app.engine.inference.vocab_tokenizer import VocabTokenizer
from app.services.documents.context import (
    DEFAULT_THRESHOLD,
    DEFAULT_TOP_K,
    DocumentContext,
    build_context,
)
from app.services.documents.embedder import load_collection_model

if TYPE_CHECKING:
    from app.engine.serving.embedding_model import EmbeddingModel
    from app.engine.serving.pool import ModelPool
    from app.engine.types import ChatMessage
    from app.models.document_records import CollectionRecord
    from app.models.store import Store

__all__ = ["ChatDocuments", "DocumentsUnavailable", "RetrievalSettings", "retrieval_settings",
           "save_retrieval_settings"]

_TEMPLATE_TOKENS = 16  # per message: role markers and separators the template adds
TOP_K_SETTING = "documents.top_k"
THRESHOLD_SETTING = "documents.threshold"
MAX_TOP_K = 50


class DocumentsUnavailable(Exception):
    """The chat's documents cannot be used (a collection's embedding model or the chat model's
    vocabulary cannot be loaded); the message is for the user."""


@dataclass(frozen=True)
class RetrievalSettings:
    top_k: int = DEFAULT_TOP_K
    threshold: float = DEFAULT_THRESHOLD  # cosine the best passage must reach


def retrieval_settings(store: Store) -> RetrievalSettings:
    """The user's top-k and threshold; damaged values fall back to the defaults."""
    top_k = store.get_setting(TOP_K_SETTING, DEFAULT_TOP_K)
    threshold = store.get_setting(THRESHOLD_SETTING, DEFAULT_THRESHOLD)
    if not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= MAX_TOP_K:
        top_k = DEFAULT_TOP_K
    if not isinstance(threshold, int | float) or isinstance(threshold, bool) \
            or not -1.0 <= threshold <= 1.0:
        threshold = DEFAULT_THRESHOLD
    return RetrievalSettings(top_k, float(threshold))


def save_retrieval_settings(store: Store, settings: RetrievalSettings) -> None:
    if not 1 <= settings.top_k <= MAX_TOP_K or not -1.0 <= settings.threshold <= 1.0:
        raise ValueError(f"top-k must be 1–{MAX_TOP_K} and the threshold between -1 and 1")
    store.set_setting(TOP_K_SETTING, settings.top_k)
    store.set_setting(THRESHOLD_SETTING, settings.threshold)


class ChatDocuments:
    """Built once per chat model and set of collections; `context` per question. Blocking (it
    loads models and embeds): front ends call it off their GUI thread."""

    def __init__(self, store: Store, collections: Sequence[CollectionRecord], pool: ModelPool,
                 chat_model: str) -> None:
        self.store = store
        self.collections = list(collections)
        self.chat_model = chat_model
        self.models: dict[str, EmbeddingModel] = {}
        for collection in self.collections:
            if collection.embedding_model in self.models:
                continue
            try:
                self.models[collection.embedding_model] = load_collection_model(pool, collection)
            except (LoadError, GGUFError, OSError) as exc:
                raise DocumentsUnavailable(
                    f"Could not load the embedding model of “{collection.name}”: {exc}") from exc
        try:
            self.tokenizer = VocabTokenizer(chat_model)
        except LoadError as exc:
            raise DocumentsUnavailable(str(exc)) from exc
        # Each question counts the whole history again: earlier messages come from the cache.
        self.count_tokens = functools.lru_cache(maxsize=2048)(self.tokenizer.count_tokens)

    def close(self) -> None:
        self.tokenizer.close()

    def context(self, history: Sequence[ChatMessage], n_ctx: int, max_tokens: int,
                settings: RetrievalSettings | None = None,
                ) -> tuple[list[ChatMessage], DocumentContext]:
        """``history`` with the document context put before its last (user) message."""
        settings = settings or retrieval_settings(self.store)
        question = history[-1].content
        used = sum(self.count_tokens(m.content) + _TEMPLATE_TOKENS for m in history)
        reply = max_tokens if max_tokens and max_tokens > 0 else n_ctx // 4
        # The question is said again after the documents, with a "Question: " label.
        left = max(0, n_ctx - reply - used - self.count_tokens(question) - _TEMPLATE_TOKENS)
        found = build_context(self.store, self.collections, question,
                              embedder_for=lambda c: self.models[c.embedding_model],
                              context_left=left, count_tokens=self.count_tokens,
                              top_k=settings.top_k, threshold=settings.threshold)
        content = f"{found.prompt_text}\n\nQuestion: {question}"
        return [*history[:-1], replace(history[-1], content=content)], found
