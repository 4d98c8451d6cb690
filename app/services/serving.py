"""Which models the API serves, under which ids, and with which load settings.

The API's model ids are the library's models (plus ``starter`` when its package is installed)
and any file a front end adds by path (``hearth serve --model file.gguf``). An id resolves to
the file, the load settings the user saved for it (as the window's load dialog does) and its
kind: GGUFs of an embedding architecture (BERT and its kin) serve /v1/embeddings only.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from app.engine.gguf.info import read_model_info
from app.engine.starter import starter_available
from app.engine.types import LoadSettings, ModelInfo
from app.models.store import Store
from app.services.library import ensure_starter, starter_record
from app.services.load_settings import saved_load_settings

ModelKind = Literal["llm", "embeddings"]
STARTER_ID = "starter"
EMBEDDING_ARCHITECTURES = frozenset({
    "bert", "nomic-bert", "nomic-bert-moe", "jina-bert-v2", "jina-bert-v3", "modern-bert",
    "neo-bert", "t5encoder", "gte", "xlm-roberta",
})


def model_kind(architecture: str) -> ModelKind:
    return "embeddings" if architecture.lower() in EMBEDDING_ARCHITECTURES else "llm"


@dataclass(frozen=True)
class ServableModel:
    id: str
    path: str  # "" for the starter before it has been assembled
    kind: ModelKind
    architecture: str
    quantization: str  # "Q4_K_M", "F16", ...
    max_context: int  # what the model was trained for (0: unknown)
    name: str


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-") or "model"


def _servable(model_id: str, info: ModelInfo) -> ServableModel:
    return ServableModel(id=model_id, path=info.path, kind=model_kind(info.architecture),
                         architecture=info.architecture, quantization=info.file_type,
                         max_context=info.context_length, name=info.name)


class ModelCatalog:
    """The servable models; thread-safe (the server asks from its worker threads)."""

    def __init__(self, store: Store, models_dir: Path | None = None) -> None:
        self._store = store
        self._models_dir = models_dir
        self._extra: dict[str, ServableModel] = {}
        self._lock = threading.Lock()

    def models(self) -> list[ServableModel]:
        """Every servable model, the starter first, then the library by path."""
        found: dict[str, ServableModel] = {}
        starter = starter_record(self._store)
        if starter is not None:
            found[STARTER_ID] = _servable(STARTER_ID, starter.info)
        elif starter_available():
            found[STARTER_ID] = ServableModel(STARTER_ID, "", "llm", "gemma3", "Q4_K_M", 32768,
                                              "Gemma 3 270M (assembled on first use)")
        taken_paths = {m.path for m in found.values()}
        for record in self._store.list_model_files():
            if record.path in taken_paths or record.source == "starter":
                continue
            model_id = self._free_id(found, Path(record.path))
            found[model_id] = _servable(model_id, record.info)
            taken_paths.add(record.path)
        with self._lock:
            for model_id, model in self._extra.items():
                if model.path not in taken_paths:
                    found.setdefault(model_id, model)
        return list(found.values())

    def find(self, model_id: str) -> ServableModel | None:
        """The model with this id; also accepts the library's display name or the file path."""
        models = self.models()
        for model in models:
            if model.id == model_id:
                return model
        lowered = model_id.lower()
        for model in models:
            if model.name.lower() == lowered or (model.path and model.path == model_id):
                return model
        return None

    def add_path(self, path: str | Path) -> ServableModel:
        """Serve a file that may not be in the library (its id is its file name)."""
        path = str(Path(path).expanduser().absolute())
        for model in self.models():
            if model.path == path:
                return model
        info = read_model_info(path)
        taken = {m.id: m for m in self.models()}
        with self._lock:
            model_id = self._free_id(taken | self._extra, Path(path))
            model = _servable(model_id, info)
            self._extra[model_id] = model
        return model

    def prepare(self, model: ServableModel) -> ServableModel:
        """The model with a file on disk: assembles the starter on its first use."""
        if model.id == STARTER_ID and not model.path:
            record = ensure_starter(self._store, self._models_dir)
            return _servable(STARTER_ID, record.info)
        return model

    def load_settings(self, model: ServableModel) -> LoadSettings:
        """The settings saved for this file in the window's load dialog, else the defaults."""
        return saved_load_settings(self._store, model.path, model.max_context)

    @staticmethod
    def _free_id(taken: dict[str, object], path: Path) -> str:
        stem = _slug(path.name.removesuffix(".gguf").removesuffix(".GGUF"))
        for candidate in (stem, f"{_slug(path.parent.name)}/{stem}"):
            if candidate not in taken and candidate != STARTER_ID:
                return candidate
        n = 2
        while f"{stem}-{n}" in taken:
            n += 1
        return f"{stem}-{n}"
