"""Documents as a use case (issue 13): indexing files into collections (`Indexer`), choosing a
collection's embedding model (`open_collection`, the starter embedding model by default), and
the chat's document context (`build_context`: whole documents or retrieved passages, with
citations). Qt-free: the window, the CLI and the server drive these the same way."""

from app.services.documents.chat_documents import (
    ChatDocuments,
    DocumentsUnavailable,
    RetrievalSettings,
    retrieval_settings,
    save_retrieval_settings,
)
from app.services.documents.context import (
    DEFAULT_THRESHOLD,
    DEFAULT_TOP_K,
    Citation,
    DocumentContext,
    build_context,
)
from app.services.documents.embedder import (
    collection_name_for,
    ensure_starter_embedding,
    load_collection_model,
    open_collection,
)
from app.services.documents.indexer import (
    Embedder,
    Indexer,
    IndexFailure,
    IndexProgress,
    IndexReport,
    find_documents,
)

__all__ = [
    "DEFAULT_THRESHOLD", "DEFAULT_TOP_K", "ChatDocuments", "Citation", "DocumentContext",
    "DocumentsUnavailable", "Embedder", "RetrievalSettings", "collection_name_for",
    "retrieval_settings",
    "save_retrieval_settings",
    "IndexFailure", "IndexProgress", "IndexReport", "Indexer", "build_context",
    "ensure_starter_embedding", "find_documents", "load_collection_model", "open_collection",
]
