"""Runtime on real tiny models: checks before the weights load, cleanup when loading fails
half-way, and the shared llama.cpp helpers (prompt chunks: see test_prompt_chunks.py)."""

from __future__ import annotations

from pathlib import Path

import llama_cpp
import pytest
from decode_support import complete
from test_prompt_format import STRICT_TEMPLATE

from app.engine.inference import runtime as runtime_mod
from app.engine.inference.prompt_format import PromptFormatter
from app.engine.inference.runtime import LoadError, Runtime
from app.engine.serving.pool import ModelPool
from app.engine.sizing.memory_estimate import effective_ctx
from app.engine.types import ChatMessage, LoadSettings
from app.testing.tiny_gguf import build_tiny_model


def _refuse_to_load(*_args, **_kwargs):
    raise AssertionError("the weights must not be loaded")


def test_broken_chat_template_fails_before_the_weights_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    model = build_tiny_model(tmp_path / "broken-template.gguf",
                             chat_template="{% for message in messages %}{{ message")
    monkeypatch.setattr(runtime_mod, "open_llama", _refuse_to_load)
    with pytest.raises(LoadError, match="chat template cannot be read"):
        Runtime(model, LoadSettings(n_ctx=256))


def test_unknown_kv_type_fails_before_the_weights_load(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(runtime_mod, "open_llama", _refuse_to_load)
    with pytest.raises(LoadError, match="Unknown KV-cache type 'q2'"):
        Runtime(tiny_model, LoadSettings(n_ctx=256, kv_cache_type="q2"))


def test_a_failure_after_the_weights_load_frees_them(
    tiny_chat_model: Path, monkeypatch: pytest.MonkeyPatch
):
    freed = []
    real_close = runtime_mod.close_llama

    def close_llama(model, ctx):
        freed.append((bool(model), bool(ctx)))
        real_close(model, ctx)

    def fail(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(runtime_mod, "close_llama", close_llama)
    monkeypatch.setattr(PromptFormatter, "set_special_tokens", fail)
    with pytest.raises(RuntimeError, match="boom"):
        Runtime(tiny_chat_model, LoadSettings(n_ctx=256))
    assert freed == [(True, True)]


def test_context_and_batch_sizes_are_the_ones_fit_estimates(tiny_model: Path):
    for settings in (LoadSettings(n_ctx=100_000, n_batch=4096), LoadSettings(n_ctx=256,
                                                                            n_batch=8)):
        rt = Runtime(tiny_model, settings)
        try:
            n_ctx, n_batch = effective_ctx(rt.info, settings)
            assert rt.n_ctx == n_ctx
            assert llama_cpp.llama_n_batch(rt._ctx) == n_batch
        finally:
            rt.close()


def test_open_llama_reports_a_bad_context_and_frees_the_model(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch
):
    freed = []
    real_free = llama_cpp.llama_model_free
    monkeypatch.setattr(llama_cpp, "llama_init_from_model", lambda *_a: None)
    monkeypatch.setattr(llama_cpp, "llama_model_free",
                        lambda m: (freed.append(True), real_free(m)))
    cparams = llama_cpp.llama_context_default_params()
    cparams.n_ctx = 256
    with pytest.raises(LoadError, match="create a context of 256 tokens"):
        runtime_mod.open_llama(str(tiny_model), llama_cpp.llama_model_default_params(), cparams)
    assert freed == [True]


# -- llama.cpp's log, shared by Runtime (llama_log) and the quantize worker ---------------------


def test_line_collector_assembles_fragments_with_their_level():
    from app.engine.inference.llama_log import CONT, ERROR, LineCollector

    lines: list[tuple[int, str]] = []
    collect = LineCollector(lambda level, line: lines.append((level, line)))
    collect.feed(2, b"[   1/  18]   token_embd.weight - [  256,  300], type =    f32, ")
    collect.feed(2, b"converting to q8_0 .. ")
    collect.feed(2, b"size =     0.29 MiB ->     0.16 MiB\n")
    collect.feed(ERROR, b"llama_model_load: error loading model: ")
    collect.feed(CONT, b"tensor data is not within the file bounds\n\n")
    collect.feed(ERROR, b"no newline at the end")
    assert lines == [
        (2, "[   1/  18]   token_embd.weight - [  256,  300], type =    f32, "
            "converting to q8_0 .. size =     0.29 MiB ->     0.16 MiB"),
        (ERROR, "llama_model_load: error loading model: tensor data is not within the file "
                "bounds"),
    ]
    collect.flush()
    assert lines[-1] == (ERROR, "no newline at the end")
    collect.flush()
    assert len(lines) == 3


def test_recent_errors_are_whole_lines():
    from app.engine.inference import llama_log

    llama_log.install()
    llama_log.take_recent_errors()
    llama_log._on_log(2, b"loaded meta data\n", None)
    llama_log._on_log(4, b"llama_model_load: error loading model: ", None)
    llama_log._on_log(5, b"bad magic\n", None)
    llama_log._on_log(4, b"last words", None)  # no newline: handed over when asked for
    assert llama_log.take_recent_errors() == [
        "llama_model_load: error loading model: bad magic", "last words"]


@pytest.fixture
def restore_llama_log():
    from app.engine.inference import llama_log

    yield
    llama_cpp.llama_log_set(llama_log._on_log, None)


def test_dry_run_builds_the_imatrix_array_once(
    quantizable_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    restore_llama_log: None,
):
    from app.engine.quantize import imatrix, quantize_worker
    from app.testing.tiny_gguf import build_test_imatrix

    source = quantizable_models["f32"]
    matrix = build_test_imatrix(source, tmp_path / "m.imatrix")
    built = []
    real = imatrix.to_c_array
    monkeypatch.setattr(imatrix, "to_c_array", lambda m: (built.append(1), real(m))[1])
    sent: list[dict] = []
    monkeypatch.setattr(quantize_worker, "_send", sent.append)
    quantize_worker._dry_run({
        "source": str(source), "source_size": source.stat().st_size, "imatrix": str(matrix),
        "targets": [{"type": "Q4_0", "ftype": "LLAMA_FTYPE_MOSTLY_Q4_0"},
                    {"type": "Q8_0", "ftype": "LLAMA_FTYPE_MOSTLY_Q8_0"},
                    {"type": "IQ2_XS", "ftype": "LLAMA_FTYPE_MOSTLY_IQ2_XS"}],
    })
    assert built == [1]
    assert [m["type"] for m in sent] == ["Q4_0", "Q8_0", "IQ2_XS"]
    sizes = [m.get("size") for m in sent]
    assert all(sizes), sent
    assert sizes[2] < sizes[0] < sizes[1] < source.stat().st_size


def test_a_strict_template_model_answers_after_two_user_turns(tmp_path: Path):
    model_path = build_tiny_model(tmp_path / "strict.gguf", chat_template=STRICT_TEMPLATE)
    # The first reply failed and was left out of history: the user spoke twice in a row.
    messages = [ChatMessage("system", "Be brief."), ChatMessage("user", "hello"),
                ChatMessage("user", "again")]
    rt = Runtime(model_path, LoadSettings(n_ctx=256))
    try:
        prompt, tokens = rt.render(messages)
        assert prompt.text.startswith("<s><start_of_turn>user\nBe brief.\n\nhello\n\nagain")
    finally:
        rt.close()
    pool = ModelPool()
    try:
        model = pool.load("strict", model_path, LoadSettings(n_ctx=256, parallel=1))
        chat = model.chat_prompt(messages)
        assert chat.tokens == tokens
        assert complete(model, chat.tokens, stop=chat.stop).finished().stats.generated_tokens > 0
    finally:
        pool.shutdown()
