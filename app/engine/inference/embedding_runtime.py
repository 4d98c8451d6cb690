"""A loaded embedding model (BERT, nomic-bert, …) turning texts into L2-normalised vectors.

Driven through llama.cpp's C API like `Runtime`: the context is created with embeddings on and
the model's own pooling (mean, CLS, last), and several texts go through one ``llama_decode``,
each as its own sequence, so a batch of short chunks costs one pass instead of one per chunk.

Texts are untrusted (documents, API requests): they are tokenized as plain text, so "[SEP]" or
"<|endoftext|>" in a document is a few ordinary word pieces, never a control token.

One `EmbeddingRuntime` belongs to one thread (the engine host's).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import llama_cpp
import numpy as np

from app.engine.gguf.info import read_model_info
from app.engine.inference import llama_log
from app.engine.inference.arch_support import architecture_supported, unsupported_message
from app.engine.inference.llama_errors import explain_failure
from app.engine.inference.runtime import (
    GenerationError,
    LoadError,
    close_llama,
    default_threads,
    model_params,
    open_llama,
    tokenize,
)
from app.engine.sizing.memory_estimate import effective_ctx
from app.engine.types import LoadSettings, ModelInfo

__all__ = ["EmbeddingRuntime", "Embeddings", "MAX_SEQUENCES", "TextTooLong"]

# Texts decoded together in one batch; llama.cpp allows up to 256 sequences per context.
MAX_SEQUENCES = 64

_POOLING_NAMES = {
    llama_cpp.LLAMA_POOLING_TYPE_MEAN: "mean",
    llama_cpp.LLAMA_POOLING_TYPE_CLS: "cls",
    llama_cpp.LLAMA_POOLING_TYPE_LAST: "last",
}


class TextTooLong(ValueError):
    """Text ``index`` has more tokens than the embedding model's context holds; nothing was
    embedded. The fields let a front end name the text in its own words."""

    def __init__(self, index: int, tokens: int, n_ctx: int) -> None:
        super().__init__(f"text {index} has {tokens} tokens, more than the {n_ctx} the "
                         "embedding model's context holds")
        self.index = index
        self.tokens = tokens
        self.n_ctx = n_ctx


@dataclass(frozen=True)
class Embeddings:
    vectors: list[list[float]]  # one L2-normalised vector per text, in order
    token_counts: list[int]  # each text's tokens as the model read them (start/end markers too)

    @property
    def total_tokens(self) -> int:
        return sum(self.token_counts)


class EmbeddingRuntime:
    def __init__(
        self,
        path: str | Path,
        settings: LoadSettings,
        progress: Callable[[float], bool] | None = None,
    ) -> None:
        """Load the embedding model at ``path``; `LoadError` (for the user) if it cannot serve
        embeddings. ``progress`` returning False aborts loading the weights."""
        llama_log.install()
        self.path = str(path)
        self.settings = settings
        self.info: ModelInfo = read_model_info(self.path)  # GGUFError for bad files
        self._model = self._ctx = None
        if not architecture_supported(self.info.architecture):
            raise LoadError(f"Cannot load {Path(self.path).name}: "
                            f"{unsupported_message(self.info.architecture)}.")
        self._load(progress)
        try:
            self._check_pooling()
            self._vocab = llama_cpp.llama_model_get_vocab(self._model)
            # llama.cpp pads the context to a multiple of 256; a text longer than the model's
            # trained positions would read past its position embeddings, so the asked size holds.
            self.n_ctx: int = min(llama_cpp.llama_n_ctx(self._ctx), effective_ctx(self.info,
                                                                               settings)[0])
            self._n_batch: int = llama_cpp.llama_n_batch(self._ctx)
            self.dimension: int = llama_cpp.llama_model_n_embd_out(self._model)
            # Encoder-only models (BERT) keep no KV cache; a causal embedding model does, and
            # it must be emptied between batches so one batch never attends to the last.
            self._memory = llama_cpp.llama_get_memory(self._ctx)
        except BaseException:
            self.close()
            raise

    def _load(self, progress: Callable[[float], bool] | None) -> None:
        s = self.settings
        mparams, self._progress_cb = model_params(s, progress)
        cparams = llama_cpp.llama_context_default_params()
        n_ctx, _ = effective_ctx(self.info, s)
        threads = s.n_threads or default_threads()
        cparams.n_ctx = n_ctx
        # A non-causal model sees a whole text in one micro-batch, so the batch must hold the
        # longest text the context allows, whatever the chat-oriented n_batch setting says.
        cparams.n_batch = cparams.n_ubatch = n_ctx
        cparams.n_seq_max = MAX_SEQUENCES
        # Unified: every sequence may use the whole context (split, each would get n_ctx/64).
        cparams.kv_unified = True
        cparams.n_threads = cparams.n_threads_batch = threads
        cparams.embeddings = True
        cparams.pooling_type = llama_cpp.LLAMA_POOLING_TYPE_UNSPECIFIED  # the model's own
        # Off is the chat default, but here "auto" (llama.cpp's own default) whenever it is not
        # forced on: without it the CPU attention computes every pair of tokens in a packed
        # batch, other texts' too, so a batch of 20 chunks took longer than one at a time
        # (bench/index_speed.py); with it masked pairs are skipped. Vectors agree to ~1e-4.
        cparams.flash_attn_type = (
            llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if s.flash_attn
            else llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO
        )
        cparams.no_perf = True
        self._model, self._ctx = open_llama(self.path, mparams, cparams)

    def _check_pooling(self) -> None:
        pooling = llama_cpp.llama_pooling_type(self._ctx)
        self.pooling: str = _POOLING_NAMES.get(pooling, "")
        if not self.pooling:
            raise LoadError(f"{Path(self.path).name} is not an embedding model: it does not "
                            "pool its token vectors into one vector per text.")

    def close(self) -> None:
        close_llama(self._model, self._ctx)
        self._model = self._ctx = None

    def __enter__(self) -> EmbeddingRuntime:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- tokens --------------------------------------------------------------------------------
    def tokenize(self, text: str) -> list[int]:
        """``text`` as the model reads it: plain text between the model's own start and end
        markers ([CLS] … [SEP] for BERT), never parsing control tokens out of it."""
        return tokenize(self._vocab, text, add_special=True, parse_special=False)

    # -- embedding -----------------------------------------------------------------------------
    def embed(self, texts: Sequence[str]) -> Embeddings:
        """One L2-normalised vector of `dimension` floats per text, in order, with each text's
        token count (each text is tokenized once, for both).

        `TextTooLong` (nothing decoded) if a text has more tokens than the context holds.
        """
        if self._ctx is None:
            raise GenerationError("The embedding model is closed")
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not one string")
        tokens = [self.tokenize(text) for text in texts]
        for index, toks in enumerate(tokens):
            if len(toks) > self.n_ctx:
                raise TextTooLong(index, len(toks), self.n_ctx)
        vectors: list[list[float]] = []
        batch = llama_cpp.llama_batch_init(self._n_batch, 0, 1)
        try:
            for group in _groups(tokens, self._n_batch, MAX_SEQUENCES):
                vectors.extend(self._embed_group(batch, group))
        finally:
            llama_cpp.llama_batch_free(batch)
        return Embeddings(vectors, [len(toks) for toks in tokens])

    def _embed_group(self, batch: llama_cpp.llama_batch,
                     group: list[list[int]]) -> list[list[float]]:
        n = 0
        for seq, toks in enumerate(group):
            for pos, token in enumerate(toks):
                batch.token[n] = token
                batch.pos[n] = pos
                batch.n_seq_id[n] = 1
                batch.seq_id[n][0] = seq
                batch.logits[n] = True  # pooling reads every token's output
                n += 1
        batch.n_tokens = n
        if self._memory:
            llama_cpp.llama_memory_clear(self._memory, True)
        rc = llama_cpp.llama_decode(self._ctx, batch)
        if rc != 0:
            raise GenerationError(explain_failure(f"embed (code {rc})", self.path))
        out = []
        for seq in range(len(group)):
            ptr = llama_cpp.llama_get_embeddings_seq(self._ctx, seq)
            if not ptr:
                raise GenerationError(f"llama.cpp returned no embedding for text {seq}")
            vec = np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)),
                                        shape=(self.dimension,)).astype(np.float64)
            norm = float(np.linalg.norm(vec))
            out.append((vec / norm if norm > 0 else vec).tolist())
        return out


def _groups(tokens: list[list[int]], max_tokens: int, max_seqs: int) -> Iterator[list[list[int]]]:
    """Consecutive texts packed into batches of at most ``max_tokens`` tokens and ``max_seqs``
    texts (each text already fits ``max_tokens`` alone)."""
    group: list[list[int]] = []
    used = 0
    for toks in tokens:
        if group and (used + len(toks) > max_tokens or len(group) == max_seqs):
            yield group
            group, used = [], 0
        group.append(toks)
        used += len(toks)
    if group:
        yield group
