"""`hearth chat MODEL --docs COLLECTION`: the collections by name, and the document context's mode
and citations printed beside the reply (issue 13; the context itself is
app.services.documents.ChatDocuments, shared with the window)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from app.cli.shared import CliError

if TYPE_CHECKING:
    from app.engine.serving.pool import ModelPool
    from app.models.store import Store
    from app.services.documents import ChatDocuments, DocumentContext


def open_chat_documents(store: Store, names: list[str], pool: ModelPool,
                        chat_model: str) -> ChatDocuments:
    from app.services.documents import ChatDocuments, DocumentsUnavailable

    collections = []
    for name in names:
        found = store.find_collection(name)
        if found is None:
            raise CliError(f"There is no collection {name!r}. `hearth docs list` shows "
                           "them; `hearth docs add` makes one.")
        collections.append(found)
    try:
        return ChatDocuments(store, collections, pool, chat_model)
    except DocumentsUnavailable as exc:
        raise CliError(str(exc)) from exc


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
