"""Constrained (JSON schema) vs unconstrained generation speed on the starter, same engine path.

Both runs go through the serving decode loop (`ModelPool` → `LoadedModel.submit`), with the same
raw prompt asking for JSON, the same sampler and seed, and the same token limit; one carries the
grammar of a schema with nested objects and arrays (a list of people with name, age,
address{city, zip} and tags[]). The constrained one may end sooner (the grammar closes the JSON),
so each run's rate is the engine's count from first to last token, not a total. Rounds alternate
and the result is the median of the per-round ratios, so a slow spell of this shared machine
slows both. Floor: constrained ≥ 0.85 × unconstrained (issue 12; llama-server measured 0.66–0.97×,
llama-cpp-python's whole-vocabulary grammar ≈ 0.3×). HEARTH_BENCH_ROUNDS (9) and
HEARTH_BENCH_TOKENS (300) shorten a trial run.
"""

from __future__ import annotations

import os
import threading
import time

from _common import median, starter_model, verdict

from app.engine.inference.runtime import default_threads
from app.engine.serving import decode_loop
from app.engine.serving.jobs import Finished, SequenceJob
from app.engine.serving.pool import ModelPool
from app.engine.structured.grammar_sampling import GrammarSampler
from app.engine.structured.schema_grammar import schema_to_grammar
from app.engine.types import LoadSettings, Sampling

PROMPT = ("Below is a JSON document listing ten people, each with a name, an age, an address "
          "(city and zip code) and a list of tags.\n\n")
SCHEMA = {"type": "object", "properties": {"people": {"type": "array", "minItems": 3,
    "items": {"type": "object", "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "address": {"type": "object", "properties": {
            "city": {"type": "string"}, "zip": {"type": "string"}},
            "required": ["city", "zip"]},
        "tags": {"type": "array", "items": {"type": "string"}}},
        "required": ["name", "age", "address", "tags"]}}}, "required": ["people"]}
SAMPLING = Sampling(temperature=0.9, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.1,
                    seed=1, max_tokens=int(os.environ.get("HEARTH_BENCH_TOKENS", "300")))
ROUNDS = int(os.environ.get("HEARTH_BENCH_ROUNDS", "9"))


class _Counted(GrammarSampler):
    """Counts the first choices the grammar refused (the slow path), for the report."""

    made: list[GrammarSampler] = []

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _Counted.made.append(self)


def _run(model, tokens: list[int], grammar: str | None, seed: int) -> Finished:
    done, end = threading.Event(), []

    def on_event(event) -> None:
        if not hasattr(event, "text") or isinstance(event, Finished):
            end.append(event)
            done.set()

    sampling = Sampling(**{**SAMPLING.to_dict(), "seed": seed})
    model.submit(SequenceJob(tokens, sampling, grammar=grammar), on_event)
    done.wait()
    if not isinstance(end[0], Finished):
        raise SystemExit(f"generation failed: {end[0]}")
    return end[0]


def main() -> int:
    decode_loop.GrammarSampler = _Counted  # type: ignore[misc]
    grammar = schema_to_grammar(SCHEMA)
    pool = ModelPool()
    ratios, free_rates, bound_rates = [], [], []
    try:
        model = pool.load("starter", str(starter_model()),
                          LoadSettings(n_ctx=2048, n_threads=default_threads()))
        tokens = model.text_tokens(PROMPT)
        started = time.perf_counter()
        _run(model, tokens, grammar, seed=0)  # warm-up; lists the unsafe tokens once
        print(f"warm-up (incl. listing unsafe tokens): {time.perf_counter() - started:.2f} s")
        for r in range(1, ROUNDS + 1):
            free = _run(model, tokens, None, seed=r)
            _Counted.made.clear()
            bound = _run(model, tokens, grammar, seed=r)
            rejected = _Counted.made[0].rejections
            ratio = bound.stats.tokens_per_second / free.stats.tokens_per_second
            ratios.append(ratio)
            free_rates.append(free.stats.tokens_per_second)
            bound_rates.append(bound.stats.tokens_per_second)
            print(f"round {r}: unconstrained {free.stats.tokens_per_second:.1f} tok/s "
                  f"({free.stats.generated_tokens} tokens, {free.reason}), constrained "
                  f"{bound.stats.tokens_per_second:.1f} tok/s ({bound.stats.generated_tokens} "
                  f"tokens, {bound.reason}, {rejected} first choices refused), "
                  f"ratio {ratio:.3f}", flush=True)
    finally:
        pool.shutdown()
    print(f"unconstrained median {median(free_rates):.1f} tok/s, "
          f"constrained median {median(bound_rates):.1f} tok/s")
    return verdict("grammar_ratio", median(ratios), 0.85, higher_is_better=True)


if __name__ == "__main__":
    raise SystemExit(main())
