"""Grammar-constrained sampling for one sequence, sample first and check after (as llama.cpp's
``common_sampler`` does for llama-server).

Applying a grammar to the whole vocabulary costs a walk of the grammar's stacks per token (262k
of them on the starter model) at every step. Instead the normal chain picks a token first and
only that token is checked; the grammar filters the candidates only when it is refused, and the
chain samples again from what is left, from a copy made before the refused pick entered its
history.
"""

from __future__ import annotations

import ctypes
from collections import deque
from collections.abc import Iterable
from typing import Any

import llama_cpp
import numpy as np

from app.engine.structured.vocab_index import VocabIndex

_TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])
assert _TOKEN_DATA.itemsize == ctypes.sizeof(llama_cpp.llama_token_data)


CANDIDATES = 2048  # likeliest tokens a refused pick is resampled from, when that is exact


class GrammarError(ValueError):
    """llama.cpp refused the grammar text (a parse error, an undefined or left-recursive rule)."""


class GrammarSampler:
    """One sequence's grammar state; `close` frees it. Used on the decode thread only.

    ``top_k``: the chain's top-k (1 when greedy, 0 when off), ``boosted``: tokens the chain may
    raise (logit bias), ``window``: how many recent tokens its penalties look back over. With
    them a refused pick is resampled from the likeliest `CANDIDATES` tokens only, when that
    provably gives the chain the same top-k it would get from the whole vocabulary.
    """

    def __init__(self, vocab: Any, n_vocab: int, grammar: str,
                 index: VocabIndex | None = None, *, top_k: int = 0,
                 boosted: Iterable[int] = (), window: int = 64) -> None:
        self._grammar = llama_cpp.llama_sampler_init_grammar(
            vocab, grammar.encode("utf-8"), b"root")
        if not self._grammar:
            raise GrammarError("llama.cpp could not parse the grammar (see its log for where).")
        self._n_vocab = n_vocab
        self._index = index
        self._banned = index.unsafe if index is not None else np.zeros(n_vocab, dtype=bool)
        if index is not None:
            self._rep_groups = np.flatnonzero(index.representatives >= 0)
            self._rep_tokens = index.representatives[self._rep_groups].astype(np.int64)
        self._top_k = top_k
        self._boosted = [t for t in boosted if 0 <= t < n_vocab]
        self._recent: deque[int] = deque(maxlen=max(window, 1))
        self._ids = np.arange(n_vocab, dtype=np.int32)
        self._data = np.zeros(n_vocab, dtype=_TOKEN_DATA)
        self._array = llama_cpp.llama_token_data_array(
            data=self._data.ctypes.data_as(llama_cpp.llama_token_data_p), size=n_vocab,
            selected=-1, sorted=False)
        self._one = (llama_cpp.llama_token_data * 1)()
        self._one_array = llama_cpp.llama_token_data_array(
            data=ctypes.cast(self._one, llama_cpp.llama_token_data_p), size=1, selected=-1,
            sorted=False)
        self.rejections = 0  # first picks the grammar refused
        self.full_scans = 0  # of those, resampled after checking the whole vocabulary

    def sample(self, chain: Any, ctx: Any, index: int) -> tuple[int | None, Any]:
        """The next token at output row ``index``, allowed by the grammar and accepted into it
        and into the chain, and the chain to use from now on (a copy replaces ``chain``, which
        is freed, when the first pick was refused). Token None: nothing can continue."""
        # A copy from before the pick: llama_sampler_sample accepts the pick into the chain's
        # penalties (and its draw into the RNG), which a refused pick must not leave behind.
        # Measured on the starter: clone + sample 0.85 ms, sample alone 0.83 ms, apply and
        # accept on an array filled from numpy 0.98 ms.
        backup = llama_cpp.llama_sampler_clone(chain)
        token = llama_cpp.llama_sampler_sample(chain, ctx, index)
        if self._allows(token):
            llama_cpp.llama_sampler_free(backup)
        else:
            llama_cpp.llama_sampler_free(chain)
            chain = backup
            self.rejections += 1
            found = self._resample(chain, ctx, index)
            if found is None:
                return None, chain
            token = found
            llama_cpp.llama_sampler_accept(chain, token)
        llama_cpp.llama_sampler_accept(self._grammar, token)
        self._recent.append(token)
        return token, chain

    def close(self) -> None:
        if self._grammar:
            llama_cpp.llama_sampler_free(self._grammar)
            self._grammar = None

    def _resample(self, chain: Any, ctx: Any, index: int) -> int | None:
        """Grammar first, then the chain, as llama.cpp's common sampler does after a refusal."""
        row = llama_cpp.llama_get_logits_ith(ctx, index)
        logits = np.ctypeslib.as_array(ctypes.cast(row, ctypes.POINTER(ctypes.c_float)),
                                       shape=(self._n_vocab,))
        if 0 < self._top_k and CANDIDATES < self._n_vocab:
            token = self._resample_likeliest(chain, logits)
            if token is not None:
                return token
        self.full_scans += 1
        if self._index is None:
            return self._apply_all(chain, self._ids, logits)
        # Only tokens whose first character the grammar takes can pass: find those characters
        # with one token each, then check just their tokens.
        self._fill(self._rep_tokens, logits[self._rep_tokens])
        llama_cpp.llama_sampler_apply(self._grammar, ctypes.byref(self._array))
        passed = np.zeros(len(self._index.representatives), dtype=bool)
        passed[self._rep_groups] = np.isfinite(self._data["logit"][:len(self._rep_tokens)])
        ids = self._index.candidates(passed)
        ids = self._by_pairs(ids, logits)
        return self._apply_all(chain, ids, logits[ids])

    def _by_pairs(self, ids: np.ndarray, logits: np.ndarray) -> np.ndarray:
        """Keep of ``ids`` those whose first two characters the grammar takes (or that have no
        two-character stand-in)."""
        index = self._index
        assert index is not None
        pairs = index.pair[ids]
        seen = np.zeros(len(index.pair_representatives), dtype=bool)
        seen[pairs[pairs >= 0]] = True
        present = np.flatnonzero(seen)
        if not present.size:
            return ids
        reps = index.pair_representatives[present].astype(np.int64)
        self._fill(reps, logits[reps])
        llama_cpp.llama_sampler_apply(self._grammar, ctypes.byref(self._array))
        passed = np.zeros(len(index.pair_representatives) + 1, dtype=bool)
        passed[present] = np.isfinite(self._data["logit"][:len(reps)])
        return ids[(pairs < 0) | passed[pairs]]

    def _resample_likeliest(self, chain: Any, logits: np.ndarray) -> int | None:
        """From the likeliest tokens, plus those the chain's penalties and bias may move. Every
        other token keeps its logit, at most the lowest taken; so when at least top-k allowed
        tokens are taken whose logits the chain leaves alone, the chain's top-k is among them."""
        top = np.argpartition(logits, -CANDIDATES)[-CANDIDATES:]
        moved = np.unique(np.array([*self._recent, *self._boosted], dtype=np.int64))
        ids = np.union1d(top, moved)
        n = self._fill(ids, logits[ids])
        llama_cpp.llama_sampler_apply(self._grammar, ctypes.byref(self._array))
        allowed = np.isfinite(self._data["logit"][:n])
        if np.count_nonzero(allowed & ~np.isin(ids, moved)) < self._top_k:
            return None
        return self._pick(chain)

    def _apply_all(self, chain: Any, ids: np.ndarray, logits: np.ndarray) -> int | None:
        n = self._fill(ids, logits)
        llama_cpp.llama_sampler_apply(self._grammar, ctypes.byref(self._array))
        if not np.isfinite(self._data["logit"][:n]).any():
            return None
        return self._pick(chain)

    def _fill(self, ids: np.ndarray, logits: np.ndarray) -> int:
        n = len(ids)
        data = self._data[:n]
        data["id"] = ids
        data["logit"] = np.where(self._banned[ids], -np.inf, logits)
        data["p"] = 0.0
        array = self._array
        array.size, array.selected, array.sorted = n, -1, False
        return n

    def _pick(self, chain: Any) -> int:
        llama_cpp.llama_sampler_apply(chain, ctypes.byref(self._array))
        return int(self._data["id"][self._array.selected])

    def _allows(self, token: int) -> bool:
        if self._banned[token]:
            return False
        one = self._one[0]
        one.id, one.logit, one.p = token, 0.0, 0.0
        array = self._one_array
        array.size, array.selected, array.sorted = 1, -1, False
        llama_cpp.llama_sampler_apply(self._grammar, ctypes.byref(array))
        return one.logit != -np.inf
