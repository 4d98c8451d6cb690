"""An embedding model loaded for serving: texts in, L2-normalised vectors out, on its own thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from app.engine.inference.embedding_runtime import EmbeddingRuntime, Embeddings
from app.engine.types import LoadSettings


class EmbeddingModel:
    kind = "embeddings"
    parallel = 1

    def __init__(self, key: str, path: str, settings: LoadSettings, *, jit: bool,
                 ttl_s: float | None, memory_bytes: int) -> None:
        self.key = key
        self.jit = jit
        self.ttl_s = ttl_s
        self.memory_bytes = memory_bytes
        self.settings = settings
        self.last_used = time.monotonic()
        self._busy = 0
        self._busy_lock = threading.Lock()
        # One thread owns the llama.cpp objects: it loads them, embeds with them, frees them.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hearth-embed")
        try:
            self._runtime = self._thread.submit(EmbeddingRuntime, path, settings).result()
        except BaseException:
            self._thread.shutdown()
            raise
        self.path = self._runtime.path
        self.info = self._runtime.info
        self.n_ctx = self._runtime.n_ctx
        self.dimension = self._runtime.dimension

    def embed(self, texts: Sequence[str]) -> Embeddings:
        """The texts' vectors and token counts; `TextTooLong` (with the text's index) when one
        has more tokens than the context holds."""
        self.last_used = time.monotonic()
        with self._busy_lock:
            self._busy += 1
        try:
            return self._thread.submit(self._runtime.embed, list(texts)).result()
        finally:
            with self._busy_lock:
                self._busy -= 1
            self.last_used = time.monotonic()

    def count_tokens(self, text: str) -> int:
        """``text``'s tokens as `embed` would read them (start/end markers too), for sizing
        chunks. Tokenizing only reads the vocabulary, so it runs on the caller's thread: the
        chunker calls this thousands of times per document."""
        return len(self._runtime.tokenize(text))

    def busy_slots(self) -> int:
        return self._busy

    def idle_s(self) -> float:
        return 0.0 if self._busy else time.monotonic() - self.last_used

    def close(self) -> None:
        self._thread.submit(self._runtime.close).result()
        self._thread.shutdown()


def load_embeddings(key: str, path: str, settings: LoadSettings, *, jit: bool,
                    ttl_s: float | None, memory_bytes: int) -> EmbeddingModel:
    return EmbeddingModel(key, path, settings, jit=jit, ttl_s=ttl_s, memory_bytes=memory_bytes)
