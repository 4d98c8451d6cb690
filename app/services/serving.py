"""Which models the API serves, under which ids, and with which load settings.

The API's model ids are the library's models (plus ``starter`` when its package is installed)
and any file a front end adds by path (``hearth serve --model file.gguf``). An id resolves to
the file, the load settings the user saved for it (as the window's load dialog does) and its
kind: GGUFs of an embedding architecture (BERT and its kin) serve /v1/embeddings only.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from app.engine.gguf.info import read_model_info
from app.engine.starter import starter_available
from app.engine.types import LoadSettings, ModelInfo
from app.engine.vision.not_a_model import is_projector_architecture, refuse_projector
from app.models.store import Store
from app.services.library import ensure_starter
from app.services.load_settings import saved_load_settings
from app.services.projectors import library_projectors, projector_path

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
    """The servable models; thread-safe (the server asks from its worker threads).

    The library's listing is kept between lookups: a request by id, name or path reads the
    Store only when the name is unknown (at most once per `MISS_RELIST_S`, so a flood of
    unknown ids cannot keep the Store busy) or the listing is older than `MAX_AGE_S`. Full
    listings (`models`) always read it afresh, as does `refresh` after a front end changes the
    library.
    """

    MISS_RELIST_S = 1.0
    MAX_AGE_S = 30.0
    MAX_ALIASES = 256

    def __init__(self, store: Store, models_dir: Path | None = None) -> None:
        self._store = store
        self._models_dir = models_dir
        self._extra: dict[str, ServableModel] = {}  # files added by path, outside the library
        self._lock = threading.Lock()
        self._listed: dict[str, ServableModel] = {}  # by id, in listing order
        self._by_name: dict[str, ServableModel] = {}  # lowercased display name, and path
        self._aliases: dict[str, str] = {}  # a name or path a request used → the id it found
        self._listed_at: float | None = None  # monotonic time of the last listing
        self._missed_at = float("-inf")  # ... and of the last one a lookup asked for

    def models(self) -> list[ServableModel]:
        """Every servable model, the starter first, then the library by path (read afresh)."""
        return list(self.refresh().values())

    def refresh(self) -> dict[str, ServableModel]:
        """Re-read the library (one Store listing); the servable models by id."""
        records = self._store.list_model_files()
        found: dict[str, ServableModel] = {}
        starter = next((r for r in records
                        if r.source == "starter" and Path(r.path).is_file()), None)
        if starter is not None:
            found[STARTER_ID] = _servable(STARTER_ID, starter.info)
        elif starter_available():
            found[STARTER_ID] = ServableModel(STARTER_ID, "", "llm", "gemma3", "Q4_K_M", 32768,
                                              "Gemma 3 270M (assembled on first use)")
        taken_paths = {m.path for m in found.values()}
        for record in records:
            if record.path in taken_paths or record.source == "starter" \
                    or is_projector_architecture(record.info.architecture):
                continue  # a projector is served with its model, never as one
            model_id = self._free_id(found, Path(record.path))
            found[model_id] = _servable(model_id, record.info)
            taken_paths.add(record.path)
        with self._lock:
            for model_id, model in self._extra.items():
                if model.path not in taken_paths:
                    found.setdefault(model_id, model)
            self._listed, self._listed_at = found, time.monotonic()
            self._by_name = {}
            for model in reversed(found.values()):  # the first of equal names wins
                self._by_name[model.name.lower()] = model
                if model.path:
                    self._by_name[model.path] = model
            self._aliases = {name: key for name, key in self._aliases.items() if key in found}
        return found

    def get(self, model_id: str) -> ServableModel | None:
        """The model with exactly this id, without building any other entry."""
        return self._lookup(model_id, exact=True)

    def find(self, model_id: str) -> ServableModel | None:
        """The model with this id; also accepts the library's display name or the file path,
        which then stay an alias of the id (`alias`) so later requests skip the search."""
        model = self._lookup(model_id, exact=False)
        if model is not None and model.id != model_id:
            with self._lock:
                if len(self._aliases) >= self.MAX_ALIASES:  # names are any-case: keep it bounded
                    self._aliases.clear()
                self._aliases[model_id] = model.id
        return model

    def alias(self, name: str) -> str | None:
        """The id a display name or path resolved to before (no Store read: any thread)."""
        with self._lock:
            return self._aliases.get(name)

    def add_path(self, path: str | Path) -> ServableModel:
        """Serve a file that may not be in the library (its id is its file name);
        `ProjectorNotAModel` (a `LoadError`) for a vision projector."""
        path = str(Path(path).expanduser().absolute())
        known = self._cached(path, exact=False)
        if known is not None and known.path == path:
            return known
        self.refresh()  # not known yet: maybe just added to the library
        known = self._cached(path, exact=False)
        if known is not None and known.path == path:
            return known
        info = read_model_info(path)
        refuse_projector(path, info.architecture)
        with self._lock:
            model_id = self._free_id(self._listed | self._extra, Path(path))
            model = _servable(model_id, info)
            self._extra[model_id] = model
            self._listed = self._listed | {model_id: model}
            self._by_name.setdefault(path, model)
            self._by_name.setdefault(model.name.lower(), model)
        return model

    def _lookup(self, model_id: str, *, exact: bool) -> ServableModel | None:
        now = time.monotonic()
        with self._lock:
            stale = self._listed_at is None or now - self._listed_at > self.MAX_AGE_S
            model = None if stale else self._cached_locked(model_id, exact)
            relist = stale or (model is None and now - self._missed_at >= self.MISS_RELIST_S)
            if relist:
                self._missed_at = now
        if model is None and relist:
            self.refresh()
            model = self._cached(model_id, exact)
        return model

    def _cached(self, model_id: str, exact: bool) -> ServableModel | None:
        with self._lock:
            return self._cached_locked(model_id, exact)

    def _cached_locked(self, model_id: str, exact: bool) -> ServableModel | None:
        model = self._listed.get(model_id)
        if model is not None or exact:
            return model
        aliased = self._aliases.get(model_id)
        if aliased is not None and aliased in self._listed:
            return self._listed[aliased]
        return self._by_name.get(model_id) or self._by_name.get(model_id.lower())

    def prepare(self, model: ServableModel) -> ServableModel:
        """The model with a file on disk: assembles the starter on its first use."""
        if model.id == STARTER_ID and not model.path:
            record = ensure_starter(self._store, self._models_dir)
            self.refresh()  # the listing now has the starter's file
            return _servable(STARTER_ID, record.info)
        return model

    def projector(self, model: ServableModel) -> Path | None:
        """The vision projector the model loads with: the user's pick in My Models, else the
        one beside it (`app.services.projectors`); None for a text-only model."""
        if not model.path or model.kind != "llm":
            return None
        return projector_path(self._store, model.path)

    def vision(self, models: list[ServableModel]) -> set[str]:
        """The ids of ``models`` that load with a vision projector (one read of the picks)."""
        llms = {m.path: m.id for m in models if m.path and m.kind == "llm"}
        choices = library_projectors(self._store, llms)
        return {llms[path] for path, choice in choices.items() if choice.vision}

    def vision_model_ids(self) -> list[str]:
        """The ids of every servable model that reads images."""
        models = self.models()
        vision = self.vision(models)
        return [m.id for m in models if m.id in vision]

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
