"""`hearth chat MODEL --docs COLLECTION`: the document context for each question (issue 13).

The question is stored as typed; only the copy sent to the model carries the documents, fenced
as untrusted quoted material. The context left is counted with the chat model's own tokenizer
(its vocabulary loaded alone: the model itself lives on the engine host's thread), less the
reply's room and a little per message for the chat template's markers.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from app.cli.shared import CliError

if TYPE_CHECKING:
    from app.engine.serving.embedding_model import EmbeddingModel
    from app.engine.serving.pool import ModelPool
    from app.engine.types import ChatMessage
    from app.models.document_records import CollectionRecord
    from app.models.store import Store
    from app.services.documents import DocumentContext

_TEMPLATE_TOKENS = 16  # per message: role markers and separators the template adds


class ChatDocs:
    def __init__(self, store: Store, names: list[str], pool: ModelPool,
                 chat_model: str) -> None:
        from app.engine.gguf.info import GGUFError
        from app.engine.inference.vocab_tokenizer import VocabTokenizer
        from app.engine.serving.pool import LoadError
        from app.services.documents import load_collection_model

        self.store = store
        self.collections: list[CollectionRecord] = []
        for name in names:
            found = store.find_collection(name)
            if found is None:
                raise CliError(f"There is no collection {name!r}. `hearth docs list` shows "
                               "them; `hearth docs add` makes one.")
            self.collections.append(found)
        self.models: dict[str, EmbeddingModel] = {}
        for collection in self.collections:
            if collection.embedding_model in self.models:
                continue
            try:
                self.models[collection.embedding_model] = load_collection_model(pool, collection)
            except (LoadError, GGUFError, OSError) as exc:
                raise CliError(f"Could not load the embedding model of {collection.name!r}: "
                               f"{exc}") from exc
        try:
            self.tokenizer = VocabTokenizer(chat_model)
        except LoadError as exc:
            raise CliError(str(exc)) from exc
        self.count_tokens = self.tokenizer.count_tokens

    def close(self) -> None:
        self.tokenizer.close()

    def context(self, history: list[ChatMessage], n_ctx: int,
                max_tokens: int) -> tuple[list[ChatMessage], DocumentContext]:
        """``history`` with the document context put before its last (user) message."""
        from app.services.documents import build_context

        question = history[-1].content
        used = sum(self.count_tokens(m.content) + _TEMPLATE_TOKENS for m in history)
        reply = max_tokens if max_tokens and max_tokens > 0 else n_ctx // 4
        # The question is said again after the documents, with a "Question: " label.
        left = max(0, n_ctx - reply - used - self.count_tokens(question) - _TEMPLATE_TOKENS)
        found = build_context(self.store, self.collections, question,
                              embedder_for=lambda c: self.models[c.embedding_model],
                              context_left=left, count_tokens=self.count_tokens)
        content = f"{found.prompt_text}\n\nQuestion: {question}"
        return [*history[:-1], replace(history[-1], content=content)], found


def print_mode(found: DocumentContext) -> None:
    from app.cli.terminal_text import terminal_safe

    print(f"[documents: {terminal_safe(found.explanation)}]", file=sys.stderr)


def print_citations(found: DocumentContext) -> None:
    from app.cli.terminal_text import terminal_safe

    for c in found.citations:
        page = f", page {c.page}" if c.page is not None else ""
        passage = " ".join(c.text.split())
        passage = passage if len(passage) <= 100 else passage[:99] + "…"
        print(f"[{c.number}] {terminal_safe(Path(c.document_path).name)}{page}: "
              f"{terminal_safe(passage)}", file=sys.stderr)
