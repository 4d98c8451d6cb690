"""The models loaded for serving, by key: load once, unload on request or after an idle TTL.

Loading is single-flight per key: callers asking for a model that is being loaded wait for that
load rather than starting a second copy. A key asking for a file already loaded with the same
settings under another key (the window's chat and an API request for one model) becomes an alias
of that model: one copy. A model that does not fit first makes room by
unloading idle just-in-time models, least recently used first; if it still does not fit, the
load is refused with the estimate. Just-in-time models unload after their idle TTL.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psutil

from app.engine.gguf.info import GGUFError, read_model_info
from app.engine.inference.runtime import LoadError
from app.engine.serving.loaded_model import ContextOverflow, LoadedModel, load_llm
from app.engine.sizing.hardware import offload_gpus
from app.engine.sizing.memory_estimate import estimate_memory
from app.engine.types import LoadSettings, ModelInfo
from app.engine.units import human_bytes
from app.engine.vision.not_a_model import refuse_projector

__all__ = ["ContextOverflow", "DoesNotFit", "LoadError", "ModelPool", "ServedModel"]

Kind = Literal["llm", "embeddings"]
DEFAULT_TTL_S = 3600.0
REAP_EVERY_S = 5.0


class DoesNotFit(LoadError):
    """Not enough memory even after unloading idle just-in-time models."""


@dataclass(frozen=True)
class ServedModel:
    key: str
    path: str
    kind: str
    info: ModelInfo
    n_ctx: int
    parallel: int
    memory_bytes: int
    busy_slots: int
    jit: bool
    ttl_s: float | None
    idle_s: float
    aliases: tuple[str, ...] = ()  # other keys that name this model (see `ModelPool.load`)
    projector_path: str | None = None  # the vision projector it was loaded with


class ModelPool:
    def __init__(self, ram_available: Callable[[], int] | None = None) -> None:
        """``ram_available`` (bytes free now) is for tests; psutil's figure by default."""
        self._ram_available = ram_available or (lambda: psutil.virtual_memory().available)
        self._lock = threading.Lock()
        self._models: dict[str, LoadedModel] = {}
        self._aliases: dict[str, str] = {}  # another key for a loaded model → its own key
        self._loading: dict[str, Future[LoadedModel]] = {}
        self._stop = threading.Event()
        self._reaper = threading.Thread(target=self._reap, name="hearth-model-ttl", daemon=True)
        self._reaper.start()

    # -- any thread ----------------------------------------------------------------------------
    def load(self, key: str, path: str | Path, settings: LoadSettings, *, kind: Kind = "llm",
             jit: bool = False, ttl_s: float | None = None,
             progress: Callable[[float], bool] | None = None,
             cancelled: Callable[[], bool] | None = None,
             projector: str | Path | None = None) -> LoadedModel:
        """The model under ``key``, loading it first if needed (see the module doc).

        ``progress`` returning False aborts loading the weights; ``cancelled`` is polled while
        the chat template is checked; ``projector``: a vision projector (mmproj) to load with
        it."""
        mmproj = str(projector) if projector is not None else None
        with self._lock:
            model = self._find(key)
            if model is None:
                model = next((m for m in self._models.values()
                              if m.path == str(path) and m.settings == settings
                              and getattr(m, "projector_path", None) == mmproj), None)
                if model is not None:
                    self._aliases[key] = model.key
            if model is not None:
                model.last_used = time.monotonic()
                return model
            pending = self._loading.get(key)
            mine = pending is None
            if mine:
                pending = self._loading[key] = Future()
        assert pending is not None
        if not mine:
            return pending.result()
        try:
            model = self._load(key, str(path), settings, kind, jit,
                               (ttl_s if ttl_s is not None else DEFAULT_TTL_S) if jit else ttl_s,
                               progress, cancelled, mmproj)
        except BaseException as exc:
            with self._lock:
                del self._loading[key]
            pending.set_exception(exc)
            raise
        with self._lock:
            self._models[key] = model
            del self._loading[key]
        pending.set_result(model)
        return model

    def unload(self, key: str) -> bool:
        """Unload the model under ``key``; an alias is only forgotten (its model stays: the
        window reloading its model with other settings must not unload the API's copy). To
        unload the model an alias names, unload ``get(alias).key``."""
        with self._lock:
            if self._aliases.pop(key, None) is not None:
                return True
            model = self._models.pop(key, None)
            self._aliases = {a: k for a, k in self._aliases.items() if k != key}
        if model is None:
            return False
        model.close()
        return True

    def get(self, key: str) -> LoadedModel | None:
        with self._lock:
            model = self._find(key)
        if model is not None:
            model.last_used = time.monotonic()
        return model

    def models(self) -> list[ServedModel]:
        with self._lock:
            loaded = list(self._models.values())
            aliases = dict(self._aliases)
        return [ServedModel(m.key, m.path, m.kind, m.info, m.n_ctx, m.parallel, m.memory_bytes,
                            m.busy_slots(), m.jit, m.ttl_s, m.idle_s(),
                            tuple(a for a, k in aliases.items() if k == m.key),
                            getattr(m, "projector_path", None)) for m in loaded]

    def shutdown(self) -> None:
        self._stop.set()
        with self._lock:
            models, self._models, self._aliases = list(self._models.values()), {}, {}
        for model in models:
            model.close()

    def _find(self, key: str) -> LoadedModel | None:
        return self._models.get(self._aliases.get(key, key))

    # -- loading -------------------------------------------------------------------------------
    def _load(self, key: str, path: str, settings: LoadSettings, kind: Kind, jit: bool,
              ttl_s: float | None, progress: Callable[[float], bool] | None,
              cancelled: Callable[[], bool] | None, projector: str | None = None
              ) -> LoadedModel:
        try:
            info = read_model_info(path)
        except GGUFError as exc:
            raise LoadError(f"Cannot load {Path(path).name}: {exc}") from exc
        refuse_projector(path, info.architecture)  # before llama.cpp says it in its words
        needed = self._make_room(info, settings, kind, projector_file_bytes(projector))
        if kind == "embeddings":
            from app.engine.serving.embedding_model import load_embeddings

            return load_embeddings(key, path, settings, jit=jit, ttl_s=ttl_s,
                                   memory_bytes=needed)
        return load_llm(key, path, settings, jit=jit, ttl_s=ttl_s, memory_bytes=needed,
                        progress=progress, cancelled=cancelled, projector=projector)

    def _make_room(self, info: ModelInfo, settings: LoadSettings, kind: Kind,
                   projector_bytes: int = 0) -> int:
        """The estimated RAM the model needs (its vision projector's too), after unloading
        idle JIT models if it must."""
        gpus = offload_gpus() if settings.n_gpu_layers else []
        sequences = settings.parallel + 1 if kind == "llm" else 1
        while True:
            estimate = estimate_memory(info, settings, gpus, ram_available=self._ram_available(),
                                       sequences=sequences, projector_bytes=projector_bytes)
            if estimate.verdict != "does not fit":
                return estimate.ram_bytes
            victim = self._idle_jit_victim()
            if victim is None:
                raise DoesNotFit(
                    f"{Path(info.path).name} needs about {human_bytes(estimate.ram_bytes)} of "
                    f"memory with a {estimate.n_ctx}-token context for {sequences} sequences, "
                    f"but {human_bytes(estimate.ram_available)} is free. Unload a model, or load "
                    "this one with a shorter context or fewer parallel sequences.")
            self.unload(victim)

    def _idle_jit_victim(self) -> str | None:
        with self._lock:
            idle = [m for m in self._models.values() if m.jit and m.busy_slots() == 0]
        return min(idle, key=lambda m: m.last_used).key if idle else None

    def _reap(self) -> None:
        while not self._stop.wait(REAP_EVERY_S):
            self.unload_expired()

    def unload_expired(self) -> list[str]:
        """Unload the just-in-time models idle past their TTL; their keys."""
        with self._lock:
            expired = [m.key for m in self._models.values()
                       if m.jit and m.ttl_s is not None and m.idle_s() >= m.ttl_s]
        return [key for key in expired if self.unload(key)]


def projector_file_bytes(path: str | None) -> int:
    """A vision projector's file size: a fair estimate of its weights (see memory_estimate)."""
    if path is None:
        return 0
    try:
        return os.stat(path).st_size
    except OSError:
        return 0
