"""A sampled token's log-probability and the likeliest alternatives, from its logits row."""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

import llama_cpp
import numpy as np

from app.engine.serving.jobs import TokenLogprob, TopLogprob

MAX_TOP = 20  # OpenAI's limit for top_logprobs


def token_logprobs(ctx: Any, index: int, token: int, n_vocab: int, top: int,
                   piece: Callable[[int], bytes]) -> TokenLogprob:
    """Log-softmax of the model's raw logits at batch row ``index`` (before sampling filters)."""
    row = llama_cpp.llama_get_logits_ith(ctx, index)
    logits = np.ctypeslib.as_array(ctypes.cast(row, ctypes.POINTER(ctypes.c_float)),
                                   shape=(n_vocab,)).astype(np.float64)
    peak = logits.max()
    log_total = peak + np.log(np.exp(logits - peak).sum())
    alternatives: tuple[TopLogprob, ...] = ()
    k = max(0, min(top, MAX_TOP))
    if k:
        best = np.argpartition(-logits, k - 1)[:k]
        best = best[np.argsort(-logits[best])]
        alternatives = tuple(_top(int(t), float(logits[t] - log_total), piece) for t in best)
    chosen = piece(token)
    return TokenLogprob(chosen.decode("utf-8", errors="replace"),
                        float(logits[token] - log_total), tuple(chosen), alternatives)


def _top(token: int, logprob: float, piece: Callable[[int], bytes]) -> TopLogprob:
    raw = piece(token)
    return TopLogprob(raw.decode("utf-8", errors="replace"), logprob, tuple(raw))
