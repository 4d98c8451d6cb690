"""Perplexity and speed of a GGUF model, for the quantization quality report.

Perplexity is computed exactly as llama.cpp's `llama-perplexity` does, so Hearth's numbers can be
compared with the ones people publish: the text is tokenized once (with BOS) and cut into
non-overlapping windows of n_ctx tokens; each window is decoded from an empty KV cache with its
first token replaced by BOS, and only the second half of the window is scored, so every scored
token has at least n_ctx/2 tokens of context.

Qt-free; one `EvalModel` belongs to one thread (in Hearth, a worker child process).
"""

from __future__ import annotations

import ctypes
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import llama_cpp
import numpy as np

from app.engine.gguf.info import read_model_info
from app.engine.inference import llama_log
from app.engine.inference.runtime import (
    GenerationError,
    LoadError,
    close_llama,
    decode_one,
    default_threads,
    explain_failure,
    open_llama,
    tokenize,
)
from app.engine.quantize.samples import sample_text

_CTX_ROUND = 256  # llama.cpp rounds n_ctx up to a multiple of this
_SCORE_ROWS = 32  # logits rows per numpy pass: bounds the temporary to 32 × n_vocab floats


@dataclass(frozen=True)
class PerplexityResult:
    perplexity: float
    stderr: float  # llama-perplexity's ± estimate of the PPL
    n_ctx: int
    n_chunks: int
    n_scored: int  # tokens scored in total


@dataclass(frozen=True)
class SpeedResult:
    prompt_tps: float  # prompt processing tokens/s (one batch of n_prompt tokens)
    gen_tps: float  # generation tokens/s (n_gen single-token decodes)
    n_prompt: int
    n_gen: int


class EvalModel:
    """One llama.cpp model and a context sized for scoring whole windows."""

    def __init__(
        self,
        path: str | Path,
        *,
        n_ctx: int = 512,
        n_threads: int | None = None,
        n_gpu_layers: int = 0,
        flash_attn: bool | None = None,
    ) -> None:
        llama_log.install()
        self.path = str(path)
        if n_ctx < 2:
            raise ValueError(f"n_ctx must be at least 2, not {n_ctx}")
        read_model_info(self.path)  # GGUFError with a readable message for a bad file
        self._model = None
        self._ctx = None
        self._batch: llama_cpp.llama_batch | None = None

        mparams = llama_cpp.llama_model_default_params()
        mparams.n_gpu_layers = n_gpu_layers

        # Round up here as llama.cpp would, so one batch holds one whole window.
        n_ctx = -(-n_ctx // _CTX_ROUND) * _CTX_ROUND
        threads = n_threads or default_threads()
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = n_ctx
        cparams.n_batch = n_ctx
        cparams.n_ubatch = n_ctx
        cparams.n_threads = threads
        cparams.n_threads_batch = threads
        # None leaves llama.cpp's "auto" (what llama-perplexity uses); it changes logits slightly
        # (~0.5% in PPL for a Q4_K_M model on CPU), so compare runs only with the same setting.
        if flash_attn is not None:
            cparams.flash_attn_type = (
                llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash_attn
                else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
            )
        cparams.no_perf = True
        # Only the second half of a window needs logits; the cap keeps the output buffer at
        # n_ctx/2 rows instead of n_ctx (256 MiB instead of 512 MiB for a 262k vocabulary).
        cparams.n_outputs_max = n_ctx - n_ctx // 2
        self._model, self._ctx = open_llama(self.path, mparams, cparams)
        self.n_ctx: int = llama_cpp.llama_n_ctx(self._ctx)
        if self.n_ctx != n_ctx:
            self.close()
            raise LoadError(f"llama.cpp gave a context of {self.n_ctx} tokens instead of {n_ctx}")
        self.n_batch = llama_cpp.llama_n_batch(self._ctx)
        self._vocab = llama_cpp.llama_model_get_vocab(self._model)
        self.n_vocab: int = llama_cpp.llama_vocab_n_tokens(self._vocab)
        self._memory = llama_cpp.llama_get_memory(self._ctx)
        self._batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)

    def __enter__(self) -> EvalModel:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._batch is not None:
            llama_cpp.llama_batch_free(self._batch)
            self._batch = None
        close_llama(self._model, self._ctx)
        self._model = self._ctx = None

    def tokenize(self, text: str) -> list[int]:
        """Tokens of `text` with the model's BOS (add_special=True), as llama-perplexity does."""
        return tokenize(self._vocab, text, add_special=True, parse_special=False)

    # -- internals used by perplexity() and measure_speed() ------------------------------------
    @property
    def add_bos(self) -> bool:
        return bool(llama_cpp.llama_vocab_get_add_bos(self._vocab))

    @property
    def bos(self) -> int:
        return int(llama_cpp.llama_vocab_bos(self._vocab))

    def clear(self) -> None:
        llama_cpp.llama_memory_clear(self._memory, True)

    def decode(self, tokens: Sequence[int], pos0: int, first_output: int) -> int:
        """Decode one batch at positions pos0…; request logits for positions >= first_output.

        Returns how many logits rows the batch produced.
        """
        n = len(tokens)
        batch = self._batch
        if batch is None or n > self.n_batch:
            raise GenerationError("internal error: batch too large or model closed")
        n_outputs = 0
        for k, token in enumerate(tokens):
            pos = pos0 + k
            out = pos >= first_output
            batch.token[k] = token
            batch.pos[k] = pos
            batch.n_seq_id[k] = 1
            batch.seq_id[k][0] = 0
            batch.logits[k] = out
            n_outputs += out
        batch.n_tokens = n
        rc = llama_cpp.llama_decode(self._ctx, batch)
        if rc != 0:
            self.clear()
            raise GenerationError(explain_failure(f"decode (code {rc})", self.path))
        return n_outputs

    def decode_one(self, token: int) -> None:
        try:
            decode_one(self._ctx, token, self.path)
        except GenerationError:
            self.clear()
            raise

    def logits(self, n_rows: int) -> np.ndarray:
        """The last decode's logits, rows × n_vocab, viewed in place (valid until next decode)."""
        ptr = llama_cpp.llama_get_logits(self._ctx)
        return np.ctypeslib.as_array(
            ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), shape=(n_rows, self.n_vocab)
        )

    def synchronize(self) -> None:
        llama_cpp.llama_synchronize(self._ctx)


def _nll(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """-log softmax(logits)[target] per row, in float64 like llama-perplexity's sum."""
    out = np.empty(len(targets), dtype=np.float64)
    for r0 in range(0, len(targets), _SCORE_ROWS):
        rows = logits[r0:r0 + _SCORE_ROWS]
        top = rows.max(axis=1)
        sums = np.exp(rows - top[:, None]).sum(axis=1, dtype=np.float64)
        picked = rows[np.arange(len(rows)), targets[r0:r0 + _SCORE_ROWS]]
        out[r0:r0 + len(rows)] = top + np.log(sums) - picked
    return out


def perplexity(
    model: EvalModel,
    text: str,
    *,
    max_chunks: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PerplexityResult:
    """Perplexity of `model` on `text`, as llama-perplexity computes it.

    `progress(done, n_chunks)` is called after each window.
    """
    n_ctx = model.n_ctx
    tokens = model.tokenize(text)
    if len(tokens) < 2 * n_ctx:
        raise ValueError(
            f"The text is too short to measure perplexity with a context of {n_ctx} tokens: "
            f"it has {len(tokens)} tokens and at least {2 * n_ctx} are needed."
        )
    if max_chunks is not None and max_chunks < 1:
        raise ValueError(f"max_chunks must be at least 1, not {max_chunks}")
    n_chunks = len(tokens) // n_ctx
    if max_chunks is not None:
        n_chunks = min(n_chunks, max_chunks)
    token_arr = np.asarray(tokens, dtype=np.int64)
    first = n_ctx // 2
    n_batch = model.n_batch
    nll = nll2 = 0.0
    count = 0
    for i in range(n_chunks):
        start = i * n_ctx
        window = list(tokens[start:start + n_ctx])
        if model.add_bos:
            window[0] = model.bos
        model.clear()
        for b0 in range(0, n_ctx, n_batch):
            b1 = min(b0 + n_batch, n_ctx)
            n_out = model.decode(window[b0:b1], b0, first)
            # Output rows are positions max(first, b0)…b1-1; the last position of the window
            # has no next token to predict.
            p0, p1 = max(first, b0), min(b1, n_ctx - 1)
            if n_out == 0 or p1 <= p0:
                continue
            logits = model.logits(n_out)[: p1 - p0]
            v = _nll(logits, token_arr[start + p0 + 1:start + p1 + 1])
            nll += float(v.sum())
            nll2 += float((v * v).sum())
            count += len(v)
        if progress is not None:
            progress(i + 1, n_chunks)

    mean = nll / count
    ppl = math.exp(mean)
    var = nll2 / count - mean * mean
    # llama-perplexity: ± ppl · sqrt(var / (count - 1)), the standard error of the mean NLL
    # carried through exp().
    stderr = ppl * math.sqrt(var / (count - 1)) if var > 0 and count > 1 else 0.0
    return PerplexityResult(
        perplexity=ppl, stderr=stderr, n_ctx=n_ctx, n_chunks=n_chunks, n_scored=count
    )


def speed_prompt(model: EvalModel, n_prompt: int = 256, text: str | None = None) -> list[int]:
    """``n_prompt`` tokens of ``text`` (the default sample), repeated if it is shorter, for
    `measure_speed`; tokenize once and pass the result to every run."""
    tokens = model.tokenize(sample_text() if text is None else text)
    if not tokens:
        raise ValueError("The text for measuring speed has no tokens")
    while len(tokens) < n_prompt:
        tokens += tokens
    return tokens[:n_prompt]


def measure_speed(
    model: EvalModel,
    *,
    n_prompt: int = 256,
    n_gen: int = 32,
    prompt: Sequence[int] | None = None,
) -> SpeedResult:
    """Prompt-processing and generation speed of `model`, in tokens per second.

    ``prompt`` (from `speed_prompt`) saves re-reading and re-tokenizing the sample text on
    every call; when given, its first ``n_prompt`` tokens are used.
    """
    if n_prompt < 1 or n_gen < 1:
        raise ValueError("n_prompt and n_gen must be at least 1")
    if n_prompt > model.n_batch or n_prompt + n_gen > model.n_ctx:
        raise ValueError(
            f"n_prompt ({n_prompt}) + n_gen ({n_gen}) must fit in the context of {model.n_ctx} "
            "tokens"
        )
    if prompt is None:
        prompt = speed_prompt(model, n_prompt)
    elif len(prompt) < n_prompt:
        raise ValueError(f"The prompt has {len(prompt)} tokens; {n_prompt} are needed")
    prompt = list(prompt[:n_prompt])

    # A throwaway decode first, so one-time setup (buffers, graph allocation) is not timed.
    model.clear()
    model.decode(prompt[:1], 0, 0)
    model.synchronize()

    model.clear()
    t0 = time.perf_counter()
    model.decode(prompt, 0, n_prompt - 1)
    model.synchronize()
    t_prompt = time.perf_counter() - t0

    # Generation feeds back the argmax, like greedy decoding; the argmax is part of the cost of
    # producing a token, so it is timed too.
    token = int(np.argmax(model.logits(1)[0]))
    t0 = time.perf_counter()
    for _ in range(n_gen):
        model.decode_one(token)
        token = int(np.argmax(model.logits(1)[0]))
    t_gen = time.perf_counter() - t0
    model.clear()
    return SpeedResult(
        prompt_tps=n_prompt / t_prompt, gen_tps=n_gen / t_gen, n_prompt=n_prompt, n_gen=n_gen
    )
