"""llama.cpp sampler chains: one per reply (and per sequence when serving), each with its own
seed and penalty history."""

from __future__ import annotations

from typing import Any

import llama_cpp

from app.engine.types import Sampling

PENALTY_LAST_N = 64  # tokens the repeat / presence / frequency penalties look back over


def make_chain(s: Sampling, n_vocab: int, *, presence_penalty: float = 0.0,
               frequency_penalty: float = 0.0, logit_bias: dict[int, float] | None = None) -> Any:
    """The chain for ``s``: logit bias, penalties, then greedy or top-k → top-p → min-p →
    temperature → a seeded draw. The caller frees it with ``llama_sampler_free``."""
    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    add = llama_cpp.llama_sampler_chain_add
    biases = [(t, b) for t, b in (logit_bias or {}).items() if 0 <= t < n_vocab]
    if biases:
        array = (llama_cpp.llama_logit_bias * len(biases))(
            *(llama_cpp.llama_logit_bias(token, bias) for token, bias in biases))
        add(chain, llama_cpp.llama_sampler_init_logit_bias(n_vocab, len(biases), array))
    repeat = s.repeat_penalty if s.repeat_penalty and s.repeat_penalty > 0 else 1.0
    if repeat != 1.0 or presence_penalty or frequency_penalty:
        add(chain, llama_cpp.llama_sampler_init_penalties(
            n_vocab, PENALTY_LAST_N, repeat, frequency_penalty, presence_penalty))
    if s.temperature <= 0:
        add(chain, llama_cpp.llama_sampler_init_greedy())
        return chain
    if s.top_k > 0:
        add(chain, llama_cpp.llama_sampler_init_top_k(s.top_k))
    if 0 < s.top_p < 1:
        add(chain, llama_cpp.llama_sampler_init_top_p(s.top_p, 1))
    if s.min_p > 0:
        add(chain, llama_cpp.llama_sampler_init_min_p(s.min_p, 1))
    add(chain, llama_cpp.llama_sampler_init_temp(s.temperature))
    seed = s.seed if s.seed >= 0 else llama_cpp.LLAMA_DEFAULT_SEED
    add(chain, llama_cpp.llama_sampler_init_dist(seed))
    return chain
