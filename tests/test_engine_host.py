"""The engine host on real tiny models and the real starter model: load, stream, cancel, fail."""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import pytest

from app.engine.inference.events import (
    Done,
    Failed,
    Loaded,
    LoadProgress,
    PromptInfo,
    Token,
    Unloaded,
)
from app.engine.serving.host import EngineHost
from app.engine.types import ChatMessage, LoadSettings, Sampling
from app.testing.tiny_gguf import truncate_copy

GREEDY = Sampling(temperature=0.0, max_tokens=24, repeat_penalty=1.0)


class Recorder:
    def __init__(self) -> None:
        self.events: queue.Queue = queue.Queue()
        self.host = EngineHost(self.events.put)

    def wait_for(self, job_id: int, kinds: tuple[type, ...], timeout: float = 60.0):
        """Return (final event, every event of that job before it)."""
        seen = []
        while True:
            event = self.events.get(timeout=timeout)
            if event.job_id != job_id:
                continue
            if isinstance(event, kinds):
                return event, seen
            seen.append(event)


@pytest.fixture
def rec():
    r = Recorder()
    yield r
    r.host.shutdown()


def load(rec: Recorder, path: Path, **settings) -> Loaded:
    job = rec.host.load(path, LoadSettings(**settings))
    event, _ = rec.wait_for(job, (Loaded, Failed))
    assert isinstance(event, Loaded), event
    return event


def ask(rec: Recorder, text: str, sampling: Sampling = GREEDY, history=(),
        policy="truncate_oldest"):
    messages = [*history, ChatMessage("user", text)]
    job = rec.host.chat(messages, sampling, policy)
    return rec.wait_for(job, (Done, Failed))


def test_load_reports_progress_and_model_info(rec, tiny_model):
    job = rec.host.load(tiny_model, LoadSettings(n_ctx=256))
    loaded, before = rec.wait_for(job, (Loaded, Failed))
    assert isinstance(loaded, Loaded)
    assert loaded.info.architecture == "llama" and loaded.n_ctx == 256
    fractions = [e.fraction for e in before if isinstance(e, LoadProgress)]
    assert fractions and fractions[-1] == pytest.approx(1.0)


def test_reply_streams_tokens_that_add_up_to_the_answer(rec, tiny_model):
    load(rec, tiny_model, n_ctx=256)
    done, before = ask(rec, "hello the model")
    assert isinstance(done, Done)
    streamed = "".join(e.text for e in before if isinstance(e, Token))
    assert streamed == done.text and done.text
    info = [e for e in before if isinstance(e, PromptInfo)]
    assert info and info[0].prompt_tokens == done.stats.prompt_tokens > 0
    assert done.stats.generated_tokens == 24 and done.stats.stop_reason == "length"
    assert done.stats.tokens_per_second > 0 and done.stats.time_to_first_token > 0


def test_same_prompt_and_seed_give_the_same_reply(rec, tiny_model):
    load(rec, tiny_model, n_ctx=256)
    sampling = Sampling(temperature=0.9, seed=7, max_tokens=16)
    first, _ = ask(rec, "the answer", sampling)
    second, _ = ask(rec, "the answer", sampling)
    assert first.text == second.text


def test_cancel_stops_a_reply_within_one_token(rec, tiny_model):
    load(rec, tiny_model, n_ctx=512)
    job = rec.host.chat([ChatMessage("user", "go")], Sampling(temperature=0, max_tokens=400))
    first_token = threading.Event()
    while not first_token.is_set():
        event = rec.events.get(timeout=30)
        if isinstance(event, Token) and event.job_id == job:
            rec.host.cancel(job)
            first_token.set()
    done, _ = rec.wait_for(job, (Done, Failed))
    assert isinstance(done, Done)
    assert done.stats.stop_reason == "cancelled"
    assert done.stats.generated_tokens < 400
    assert done.text  # the partial reply is kept


def test_second_turn_reuses_the_cached_prefix(rec, tiny_chat_model):
    load(rec, tiny_chat_model, n_ctx=512)
    first, _ = ask(rec, "hello")
    history = [ChatMessage("user", "hello"), ChatMessage("assistant", first.text)]
    second, _ = ask(rec, "and the world", history=history)
    assert second.stats.cached_tokens >= first.stats.prompt_tokens - 1
    assert second.stats.prompt_tokens > first.stats.prompt_tokens


def test_not_a_gguf_file_fails_to_load_and_keeps_the_loaded_model(rec, tiny_model, tmp_path):
    load(rec, tiny_model, n_ctx=256)
    junk = tmp_path / "notes.gguf"
    junk.write_text("these are my notes, not a model")
    job = rec.host.load(junk)
    failed, _ = rec.wait_for(job, (Loaded, Failed))
    assert isinstance(failed, Failed) and failed.kind == "load"
    assert "not a GGUF model file" in failed.message
    assert rec.host.loaded_path == str(tiny_model)
    done, _ = ask(rec, "still there")
    assert isinstance(done, Done) and done.text


def test_truncated_model_fails_with_a_clear_message(rec, tiny_model, tmp_path):
    cut = truncate_copy(tiny_model, tmp_path / "cut.gguf", keep_fraction=0.6)
    failed, _ = rec.wait_for(rec.host.load(cut), (Loaded, Failed))
    assert isinstance(failed, Failed) and "truncated or corrupt" in failed.message
    assert rec.host.loaded_path is None


def test_chat_without_a_model_fails_with_a_hint(rec):
    failed, _ = ask(rec, "anyone?")
    assert isinstance(failed, Failed) and "No model is loaded" in failed.message


def test_overflow_policy_stop_refuses_and_says_why(rec, tiny_model):
    loaded = load(rec, tiny_model, n_ctx=128)  # llama.cpp rounds the context up to 256
    failed, _ = ask(rec, "the " * 400, policy="stop")
    assert isinstance(failed, Failed) and failed.kind == "context"
    assert "context" in failed.message and str(loaded.n_ctx) in failed.message


def test_overflow_policy_truncate_drops_oldest_turns_but_keeps_the_system_prompt(rec, tiny_model):
    loaded = load(rec, tiny_model, n_ctx=128)
    history = [ChatMessage("system", "be brief")]
    for _ in range(12):
        history += [ChatMessage("user", "the model " * 8), ChatMessage("assistant", "a " * 8)]
    done, before = ask(rec, "last", Sampling(temperature=0, max_tokens=8), history=history)
    assert isinstance(done, Done)
    info = next(e for e in before if isinstance(e, PromptInfo))
    assert info.dropped_messages > 0 and info.prompt_tokens <= loaded.n_ctx


def test_unload_frees_the_model(rec, tiny_model):
    load(rec, tiny_model, n_ctx=256)
    event, _ = rec.wait_for(rec.host.unload(), (Unloaded,))
    assert event.path == str(tiny_model) and rec.host.loaded_path is None


@pytest.mark.starter
def test_starter_model_answers_in_plain_format(rec, starter_model):
    loaded = load(rec, starter_model, n_ctx=1024)
    assert not loaded.info.has_chat_template
    done, _ = ask(rec, "What is the capital of France?",
                  Sampling(temperature=0, max_tokens=32))
    assert isinstance(done, Done) and done.text.strip()
    # The plain format's stop strings keep the model from writing the user's next turn.
    assert "\nUser:" not in done.text


def test_the_models_load_seed_makes_random_seed_replies_repeatable(rec, tiny_model):
    load(rec, tiny_model, n_ctx=256, seed=7)
    random_seed = Sampling(temperature=1.5, top_k=0, top_p=1.0, min_p=0.0, seed=-1,
                           max_tokens=24)
    first, _ = ask(rec, "the answer", random_seed)
    second, _ = ask(rec, "the answer", random_seed)
    assert first.text == second.text
    # Without a load seed the same request draws differently (24 tokens at temperature 1.5).
    load(rec, tiny_model, n_ctx=256)
    replies = {ask(rec, "the answer", random_seed)[0].text for _ in range(3)}
    assert len(replies) > 1


class _Broken(RuntimeError):
    """Not a LoadError: a failure the loader did not foresee."""


def test_an_unexpected_load_error_fails_as_a_load_and_the_host_keeps_working(
        rec, tiny_model, monkeypatch):
    from app.engine.serving import loaded_model

    real_runtime = loaded_model.Runtime

    def broken(*_args, **_kwargs):
        raise _Broken("boom")

    monkeypatch.setattr(loaded_model, "Runtime", broken)
    job = rec.host.load(tiny_model, LoadSettings(n_ctx=256))
    failed, _ = rec.wait_for(job, (Loaded, Failed))
    assert isinstance(failed, Failed) and failed.kind == "load" and "boom" in failed.message

    monkeypatch.setattr(loaded_model, "Runtime", real_runtime)
    load(rec, tiny_model, n_ctx=256)
    done, _ = ask(rec, "Hello")
    assert isinstance(done, Done)


def test_a_template_that_cannot_render_a_chat_fails_that_reply_clearly(
    tmp_path, monkeypatch
):
    import queue

    from app.engine.inference.events import Failed
    from app.engine.inference.prompt_format import PromptFormatError
    from app.engine.serving import host as host_module
    from app.testing.tiny_gguf import CHATML_TEMPLATE, build_tiny_model

    model = build_tiny_model(tmp_path / "m.gguf", chat_template=CHATML_TEMPLATE)
    events: queue.Queue = queue.Queue()
    engine = host_module.EngineHost(events.put)
    try:
        load = engine.load(str(model), LoadSettings(n_ctx=256))
        while getattr(events.get(timeout=30), "job_id", None) != load:
            pass

        def refuse(*_args, **_kwargs):
            raise PromptFormatError("This model's chat template cannot render this conversation.")

        monkeypatch.setattr(host_module, "fit_conversation", refuse)
        job = engine.chat([ChatMessage("user", "hello")], Sampling(max_tokens=4))
        while True:
            event = events.get(timeout=30)
            if getattr(event, "job_id", None) == job:
                break
        assert isinstance(event, Failed)
        assert event.message.startswith("This model's chat template")
        assert "Unexpected" not in event.message
    finally:
        engine.shutdown()
