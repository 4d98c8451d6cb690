"""The Store: the only code in Hearth that talks SQL, one facade over its aggregates.

Each aggregate is a mixin in its own module, all sharing the connection set-up in `database`:

- `chats` and `message_tree`: chats, their messages as a tree, and full-text search
- `model_library`: model files, lineage of quantized models, quality reports, memory checks
- `downloads`: the download journal the engine's DownloadManager resumes from
- `settings`: settings and prompt presets
- `documents` and `retrieval`: document collections, their chunks, and hybrid search over them
"""

from __future__ import annotations

from app.models.store.chats import ChatStore, fts_query
from app.models.store.documents import CollectionExists, DocumentStore
from app.models.store.downloads import DownloadStore
from app.models.store.message_tree import MessageTree
from app.models.store.model_library import ModelLibrary
from app.models.store.retrieval import RetrievalStore
from app.models.store.settings import SettingsStore

__all__ = ["CollectionExists", "Store", "fts_query"]


class Store(ChatStore, MessageTree, ModelLibrary, DownloadStore, SettingsStore, DocumentStore,
            RetrievalStore):
    """Chats, messages, model files, downloads, presets, settings and document collections in
    one SQLite database."""
