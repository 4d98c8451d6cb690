"""Perplexity and speed measurement (app/engine/quantize/perplexity.py).

The reference is llama-cpp-python's high-level `Llama` with logits for every position: it
decodes each window on its own, and the log-softmax and the choice of scored tokens are done
here by hand with numpy, so a mistake in Hearth's batching, windowing or scoring shows up as a
different number.
"""

from __future__ import annotations

import math
from pathlib import Path

import llama_cpp
import numpy as np
import pytest

from app.engine.gguf.info import GGUFError
from app.engine.inference.runtime import LoadError, default_threads
from app.engine.quantize.perplexity import (
    EvalModel,
    PerplexityResult,
    SpeedResult,
    measure_speed,
    perplexity,
    speed_prompt,
)
from app.engine.quantize.samples import DEFAULT_SAMPLE, sample_text
from app.testing.tiny_gguf import truncate_copy

# Ours agrees with the reference to ~1e-12 on the same backend settings; on the tiny model an
# off-by-one in the scored positions or a window without BOS moves the PPL by 5e-4 to 8e-4,
# scoring the whole window by ~1%.
REL = 2e-5


def _window_nll(path: Path, text: str, n_ctx: int, n_chunks: int, *, bos: bool = True,
                flash_attn: bool = True) -> np.ndarray:
    """-log p(token[j+1] | window[:j+1]) for j in 0..n_ctx-2, one row per window."""
    llm = llama_cpp.Llama(str(path), n_ctx=n_ctx, n_batch=n_ctx, logits_all=True,
                          flash_attn=flash_attn, n_threads=default_threads(), verbose=False)
    try:
        tokens = llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
        rows = []
        for i in range(n_chunks):
            original = tokens[i * n_ctx:(i + 1) * n_ctx]
            window = list(original)
            if bos:
                window[0] = llm.token_bos()
            llm.reset()
            llm.eval(window)
            # Row j of the logits predicts token j+1; the last row predicts nothing here.
            logits = np.asarray(llm.scores[:n_ctx - 1])
            top = logits.max(axis=1)
            log_z = top + np.log(np.exp(logits - top[:, None]).sum(axis=1, dtype=np.float64))
            rows.append(log_z - logits[np.arange(n_ctx - 1), original[1:]])
        return np.array(rows)
    finally:
        llm.close()


def _ppl(nll: np.ndarray) -> tuple[float, float]:
    """PPL and llama-perplexity's ± for a flat array of token NLLs."""
    mean = float(nll.mean())
    var = float((nll * nll).mean()) - mean * mean
    ppl = math.exp(mean)
    return ppl, ppl * math.sqrt(var / (len(nll) - 1))


@pytest.fixture(scope="module")
def tiny_eval(tiny_model: Path):
    with EvalModel(tiny_model, n_ctx=256, flash_attn=True) as model:
        yield model


def test_sample_text_is_the_shipped_prose():
    text = sample_text()
    assert text == sample_text(DEFAULT_SAMPLE)
    assert text.startswith("ALICE'S ADVENTURES IN WONDERLAND")
    assert "Down the Rabbit-Hole" in text and "The Pool of Tears" in text
    assert len(text.split()) > 2700
    with pytest.raises(FileNotFoundError):
        sample_text("no-such-sample.txt")


def test_matches_independent_reference(tiny_model: Path, tiny_eval: EvalModel):
    text = sample_text()
    seen: list[tuple[int, int]] = []
    result = perplexity(tiny_eval, text, max_chunks=3, progress=lambda i, n: seen.append((i, n)))

    n_ctx = 256
    first = n_ctx // 2
    assert isinstance(result, PerplexityResult)
    assert tiny_eval.n_ctx == result.n_ctx == n_ctx
    assert result.n_chunks == 3
    assert result.n_scored == 3 * (n_ctx - 1 - first)
    assert seen == [(1, 3), (2, 3), (3, 3)]

    nll = _window_nll(tiny_model, text, n_ctx, 3)
    ppl, stderr = _ppl(nll[:, first:].ravel())
    assert result.perplexity == pytest.approx(ppl, rel=REL)
    assert result.stderr == pytest.approx(stderr, rel=1e-3)


def test_scores_only_the_second_half_of_each_window(tiny_model: Path, tiny_eval: EvalModel):
    text = sample_text()
    n_ctx, first = 256, 128
    result = perplexity(tiny_eval, text, max_chunks=3)
    nll = _window_nll(tiny_model, text, n_ctx, 3)
    no_bos = _window_nll(tiny_model, text, n_ctx, 3, bos=False)
    assert result.perplexity == pytest.approx(_ppl(nll[:, first:].ravel())[0], rel=REL)
    wrong = {
        "whole window": nll.ravel(),
        "one position early": nll[:, first - 1:-1].ravel(),
        "one position late": nll[:, first + 1:].ravel(),
        "window not started with BOS": no_bos[:, first:].ravel(),
    }
    for name, values in wrong.items():
        ppl, _ = _ppl(values)
        assert result.perplexity != pytest.approx(ppl, rel=REL), name


def test_uses_every_full_window_by_default(tiny_eval: EvalModel):
    text = sample_text()
    n_tokens = len(tiny_eval.tokenize(text))
    result = perplexity(tiny_eval, text)
    assert result.n_chunks == n_tokens // 256 > 3
    assert result.n_scored == result.n_chunks * (256 - 1 - 128)
    assert math.isfinite(result.perplexity) and result.stderr > 0


def test_tokenize_adds_bos(tiny_eval: EvalModel):
    tokens = tiny_eval.tokenize("hello world")
    assert tokens[0] == 1  # the tiny vocabulary's <s>
    assert len(tokens) == 3


def test_too_short_text_is_a_clear_error(tiny_eval: EvalModel):
    with pytest.raises(ValueError, match="too short.*at least 512"):
        perplexity(tiny_eval, "hello world " * 50)


def test_n_ctx_is_rounded_up_like_llama_cpp(tiny_model: Path):
    with EvalModel(tiny_model, n_ctx=300) as model:
        assert model.n_ctx == 512


@pytest.mark.parametrize("kind", ["not-gguf", "missing", "truncated"])
def test_bad_model_file_is_a_clear_error(tmp_path: Path, tiny_model: Path, kind: str):
    if kind == "not-gguf":
        path = tmp_path / "notes.gguf"
        path.write_text("these are my notes, not a model\n" * 40)
    elif kind == "missing":
        path = tmp_path / "gone.gguf"
    else:
        path = truncate_copy(tiny_model, tmp_path / "half.gguf")
    with pytest.raises((GGUFError, LoadError)) as info:
        EvalModel(path)
    assert path.name in str(info.value)


def test_measure_speed_on_tiny_model(tiny_eval: EvalModel):
    speed = measure_speed(tiny_eval, n_prompt=64, n_gen=8)
    assert isinstance(speed, SpeedResult)
    assert (speed.n_prompt, speed.n_gen) == (64, 8)
    assert speed.prompt_tps > 0 and speed.gen_tps > 0
    with pytest.raises(ValueError, match="fit in the context"):
        measure_speed(tiny_eval, n_prompt=250, n_gen=32)
    # The context is left empty and usable: perplexity afterwards is unchanged.
    before = perplexity(tiny_eval, sample_text(), max_chunks=1)
    measure_speed(tiny_eval, n_prompt=32, n_gen=4)
    assert perplexity(tiny_eval, sample_text(), max_chunks=1) == before


def test_measure_speed_reuses_a_tokenized_prompt(
    tiny_eval: EvalModel, monkeypatch: pytest.MonkeyPatch
):
    prompt = speed_prompt(tiny_eval, 64)
    assert len(prompt) == 64
    assert prompt == tiny_eval.tokenize(sample_text())[:64]

    def no_tokenizing(_text: str) -> list[int]:
        raise AssertionError("measure_speed tokenized the sample again")

    monkeypatch.setattr(tiny_eval, "tokenize", no_tokenizing)
    for _ in range(3):
        speed = measure_speed(tiny_eval, n_prompt=32, n_gen=4, prompt=prompt)
        assert (speed.n_prompt, speed.n_gen) == (32, 4)
    with pytest.raises(ValueError, match="64 tokens; 128 are needed"):
        measure_speed(tiny_eval, n_prompt=128, n_gen=4, prompt=prompt)


def test_speed_prompt_repeats_a_short_text(tiny_eval: EvalModel):
    prompt = speed_prompt(tiny_eval, 100, text="hello world")
    assert len(prompt) == 100


@pytest.mark.starter
def test_starter_model_perplexity_and_speed(starter_model: Path):
    text = sample_text()
    with EvalModel(starter_model, n_ctx=512) as model:
        assert model.n_vocab == 262144
        assert len(model.tokenize(text)) >= 3500
        result = perplexity(model, text, max_chunks=2)
        assert (result.n_ctx, result.n_chunks, result.n_scored) == (512, 2, 2 * 255)
        assert 2 < result.perplexity < 200
        assert 0 < result.stderr < result.perplexity
        speed = measure_speed(model, n_prompt=128, n_gen=8)
        assert speed.prompt_tps > 0 and speed.gen_tps > 0


@pytest.mark.starter
def test_starter_model_matches_reference(starter_model: Path):
    # A real model with a real tokenizer; flash attention off on both sides, since it changes
    # a quantized model's logits slightly.
    text = sample_text()
    with EvalModel(starter_model, n_ctx=256, flash_attn=False) as model:
        result = perplexity(model, text, max_chunks=1)
    nll = _window_nll(starter_model, text, 256, 1, flash_attn=False)
    ppl, stderr = _ppl(nll[:, 128:].ravel())
    assert result.perplexity == pytest.approx(ppl, rel=1e-4)
    assert result.stderr == pytest.approx(stderr, rel=1e-3)
