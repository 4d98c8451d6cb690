"""Which embedding model a collection uses, and loading it for indexing and questions.

A new collection uses the starter embedding model (all-MiniLM-L6-v2, converted to GGUF on first
use into the models folder and added to the library) unless the caller names another GGUF, so
documents work offline on the first run with no setup. The collection records the model's
path: its vectors only compare with vectors from that same model.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from app.engine.documents import DEFAULT_CHUNK_TOKENS, DEFAULT_OVERLAP_TOKENS
from app.engine.gguf.info import read_model_info
from app.engine.paths import data_paths
from app.engine.starter_embedding import starter_embedding_model
from app.engine.types import LoadSettings

if TYPE_CHECKING:
    from app.engine.serving.embedding_model import EmbeddingModel
    from app.engine.serving.pool import ModelPool
    from app.models.document_records import CollectionRecord
    from app.models.records import ModelFileRecord
    from app.models.store import Store

__all__ = ["collection_name_for", "ensure_starter_embedding", "load_collection_model",
           "open_collection"]


def ensure_starter_embedding(store: Store, models_dir: Path | None = None) -> ModelFileRecord:
    """The starter embedding model, converted if needed and registered in the library.

    `StarterEmbeddingError` (for the user) when its package is missing or cannot be converted.
    It is registered as an import, not as "starter": that source names the starter *chat*
    model, which `hearth chat starter` looks up."""
    path = starter_embedding_model((models_dir or data_paths().models).absolute())
    record = store.get_model_file_by_path(path)
    if record is not None:
        return record
    return store.add_model_file(read_model_info(path), "import")


def open_collection(store: Store, name: str, *, embedding_model: str | Path | None = None,
                    chunk_size: int = DEFAULT_CHUNK_TOKENS,
                    chunk_overlap: int = DEFAULT_OVERLAP_TOKENS,
                    models_dir: Path | None = None) -> CollectionRecord:
    """The collection called ``name``, created (with the starter embedding model unless one
    is given) when there is none yet. An existing collection keeps its own settings."""
    found = store.find_collection(name)
    if found is not None:
        return found
    if embedding_model is None:
        embedding_model = ensure_starter_embedding(store, models_dir).path
    return store.create_collection(name, str(Path(embedding_model).absolute()), chunk_size,
                                   chunk_overlap)


def load_collection_model(pool: ModelPool, collection: CollectionRecord) -> EmbeddingModel:
    """The collection's embedding model, loaded in ``pool`` (shared with other users of it).

    `LoadError`/`GGUFError` say why it cannot be loaded (a deleted or non-embedding file)."""
    model = pool.load(f"embeddings:{collection.embedding_model}", collection.embedding_model,
                      LoadSettings(), kind="embeddings")
    return model  # type: ignore[return-value]  # kind="embeddings" gives an EmbeddingModel


def collection_name_for(store: Store, first: str | Path) -> str:
    """A free name for a chat's own collection, after what was added first (a folder's name,
    a file's stem): the chat's title is often not known yet."""
    path = Path(first)
    base = (path.name if path.is_dir() else path.stem) or "Documents"
    taken = {c.name for c in store.list_collections()}
    name, n = base, 2
    while name in taken:
        name, n = f"{base} ({n})", n + 1
    return name
