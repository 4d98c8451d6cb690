"""The serving pool: several models, several sequences decoded together, loads and unloads."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import pytest

from app.engine.serving.jobs import Finished, Piece, SequenceFailed, SequenceJob
from app.engine.serving.pool import ContextOverflow, DoesNotFit, LoadError, ModelPool
from app.engine.types import ChatMessage, LoadSettings, Sampling

SETTINGS = LoadSettings(n_ctx=256, parallel=3)
# Other settings make another copy (the same settings share one: see the alias test).
OTHER = dataclasses.replace(SETTINGS, n_batch=256)


class Reply:
    """Collects one sequence's events (they arrive on the model's decode thread)."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.end: Finished | SequenceFailed | None = None
        self.done = threading.Event()
        self.logprobs: list = []

    def __call__(self, event) -> None:
        if isinstance(event, Piece):
            self.pieces.append(event.text)
            self.logprobs.extend(event.logprobs)
        else:
            self.end = event
            self.done.set()

    @property
    def text(self) -> str:
        return "".join(self.pieces)



def ask(model, prompt: str, seed: int = 1, max_tokens: int = 40, **job) -> tuple[Reply, object]:
    chat = model.chat_prompt([ChatMessage("user", prompt)])
    reply = Reply()
    handle = model.submit(SequenceJob(chat.tokens, Sampling(temperature=0.9, seed=seed,
                                                            max_tokens=max_tokens),
                                      stop=chat.stop, **job), reply)
    return reply, handle


def test_concurrent_sequences_each_get_the_reply_they_get_alone(pool, tiny_chat_model):
    model = pool.load("tiny", tiny_chat_model, SETTINGS)
    prompts = [f"question {i}: {'why ' * i}" for i in range(3)]
    alone = []
    for i, prompt in enumerate(prompts):
        reply, _ = ask(model, prompt, seed=i)
        assert reply.done.wait(30)
        alone.append(reply.text)
    model_b = pool.load("tiny-b", tiny_chat_model, OTHER)  # fresh slots: no reused prefixes
    together = [ask(model_b, prompt, seed=i)[0] for i, prompt in enumerate(prompts)]
    for reply in together:
        assert reply.done.wait(30)
    assert [r.text for r in together] == alone  # same seed, same text, beside others or not
    assert all(isinstance(r.end, Finished) and r.end.reason == "length" for r in together)
    assert all(r.end.stats.generated_tokens == 40 for r in together)
    assert len(set(alone)) == 3


def test_a_cancelled_sequence_frees_its_slot_at_once(pool, tiny_chat_model):
    model = pool.load("tiny", tiny_chat_model, SETTINGS)
    reply, handle = ask(model, "go on", max_tokens=100_000)
    while not reply.pieces:
        time.sleep(0.01)
    assert model.busy_slots() == 1
    handle.cancel()
    assert reply.done.wait(5) and reply.end.reason == "cancelled"
    assert model.busy_slots() == 0


def test_requests_beyond_the_slots_wait_and_the_window_never_does(pool, tiny_chat_model):
    model = pool.load("tiny", tiny_chat_model, SETTINGS)
    api = [ask(model, f"api {i}", max_tokens=100_000) for i in range(SETTINGS.parallel + 1)]
    while not all(r.pieces for r, _ in api[:-1]):
        time.sleep(0.01)
    assert api[-1][0].pieces == []  # all API slots busy: the fourth request queues
    window, _ = ask(model, "from the window", max_tokens=5, interactive=True)
    assert window.done.wait(10) and window.end.reason == "length"  # its own slot
    for _reply, handle in api:
        handle.cancel()
    for reply, _ in api:
        assert reply.done.wait(10)


def test_the_next_turn_reuses_its_slots_prefix(pool, tiny_chat_model):
    model = pool.load("tiny", tiny_chat_model, SETTINGS)
    first, _ = ask(model, "tell me a story", max_tokens=8)
    assert first.done.wait(30)
    turn = [ChatMessage("user", "tell me a story"), ChatMessage("assistant", first.text),
            ChatMessage("user", "and then?")]
    chat = model.chat_prompt(turn)
    second = Reply()
    model.submit(SequenceJob(chat.tokens, Sampling(max_tokens=4), stop=chat.stop), second)
    assert second.done.wait(30)
    assert second.end.stats.cached_tokens >= first.end.stats.prompt_tokens - 1


def test_a_prompt_longer_than_the_context_is_refused_before_it_starts(pool, tiny_chat_model):
    model = pool.load("tiny", tiny_chat_model, SETTINGS)
    with pytest.raises(ContextOverflow) as caught:
        model.submit(SequenceJob(list(range(1, 300)), Sampling()), Reply())
    assert "299 tokens" in str(caught.value) and "256" in str(caught.value)
    assert model.busy_slots() == 0


def test_logprobs_are_log_probabilities_of_the_chosen_and_likeliest_tokens(pool, tiny_chat_model):
    model = pool.load("tiny", tiny_chat_model, SETTINGS)
    reply, _ = ask(model, "hi", max_tokens=5, top_logprobs=3)
    assert reply.done.wait(30)
    assert len(reply.logprobs) == 5
    for entry in reply.logprobs:
        assert entry.logprob <= 0 and len(entry.top) == 3
        assert entry.top[0].logprob >= entry.top[1].logprob >= entry.top[2].logprob
        assert entry.top[0].logprob >= entry.logprob
        assert sum(2.718281828 ** t.logprob for t in entry.top) <= 1.0 + 1e-6


def test_two_first_requests_for_one_model_load_one_copy(pool, tiny_chat_model, monkeypatch):
    from app.engine.serving import pool as pool_module

    loads = []
    real = pool_module.load_llm

    def counting(*args, **kwargs):
        loads.append(args[0])
        time.sleep(0.3)  # both callers arrive while the first load runs
        return real(*args, **kwargs)

    monkeypatch.setattr(pool_module, "load_llm", counting)
    got = []
    threads = [threading.Thread(target=lambda: got.append(
        pool.load("tiny", tiny_chat_model, SETTINGS, jit=True))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert loads == ["tiny"] and got[0] is got[1]


def test_idle_jit_models_unload_after_their_ttl_and_explicit_ones_stay(pool, tiny_chat_model):
    pool.load("kept", tiny_chat_model, SETTINGS)
    jit = pool.load("jit", tiny_chat_model, OTHER, jit=True, ttl_s=0.2)
    reply, _ = ask(jit, "hello", max_tokens=3)
    assert reply.done.wait(30)
    assert pool.unload_expired() == []  # just used: idle counts from the end of its reply
    time.sleep(0.3)
    assert pool.unload_expired() == ["jit"]
    assert [m.key for m in pool.models()] == ["kept"]


def test_a_model_that_does_not_fit_evicts_idle_jit_models_then_is_refused(tiny_chat_model):
    free = {"bytes": 10 << 30}
    pool = ModelPool(ram_available=lambda: free["bytes"])
    try:
        pool.load("jit", tiny_chat_model, SETTINGS, jit=True)
        pool.load("pinned", tiny_chat_model, OTHER)
        free["bytes"] = 1 << 20  # almost nothing left
        with pytest.raises(DoesNotFit) as caught:
            pool.load("big", tiny_chat_model, dataclasses.replace(SETTINGS, n_batch=128))
        assert "needs about" in str(caught.value) and "free" in str(caught.value)
        # The idle just-in-time model went first; the one loaded on purpose stayed.
        assert [m.key for m in pool.models()] == ["pinned"]
    finally:
        pool.shutdown()


def test_two_models_loaded_at_once_answer_at_once(pool, tiny_chat_model, tiny_model):
    chat = pool.load("chat", tiny_chat_model, SETTINGS)
    plain = pool.load("plain", tiny_model, SETTINGS)
    replies = [ask(chat, "one")[0], ask(plain, "two")[0]]
    for reply in replies:
        assert reply.done.wait(30) and reply.end.reason == "length" and reply.text
    served = {m.key: m for m in pool.models()}
    assert set(served) == {"chat", "plain"} and all(m.memory_bytes > 0 for m in served.values())


def test_a_corrupt_file_is_refused_and_leaves_the_pool_as_it_was(pool, tiny_chat_model,
                                                                 tmp_path: Path):
    pool.load("tiny", tiny_chat_model, SETTINGS)
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"GGUF" + b"\xff" * 64)
    with pytest.raises(LoadError, match="junk.gguf"):
        pool.load("junk", junk, SETTINGS)
    assert [m.key for m in pool.models()] == ["tiny"]
    assert pool.load("junk2", tiny_chat_model, OTHER).key == "junk2"  # loading still works


def test_embedding_models_serve_vectors_from_the_pool(pool, embedding_model):
    model = pool.load("minilm", embedding_model, LoadSettings(n_ctx=256), kind="embeddings")
    cat, kitten, stocks = model.embed(["a cat sits on the mat", "a kitten lies on a rug",
                                       "stock markets fell"]).vectors

    def cosine(a, b):
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert cosine(cat, kitten) > cosine(cat, stocks)
    assert [m.kind for m in pool.models()] == ["embeddings"]


def test_the_same_file_and_settings_under_two_keys_is_one_copy(pool, tiny_chat_model):
    window = pool.load(str(tiny_chat_model), tiny_chat_model, SETTINGS)
    api = pool.load("tiny-chatml", tiny_chat_model, SETTINGS, jit=True)
    assert api is window and len(pool.models()) == 1
    other = pool.load("longer", tiny_chat_model, LoadSettings(n_ctx=512, parallel=1))
    assert other is not window and len(pool.models()) == 2  # other settings: its own copy
    assert pool.unload("tiny-chatml") and pool.get(str(tiny_chat_model)) is window


def test_a_request_to_a_model_unloaded_under_it_is_refused_not_left_waiting(pool,
                                                                           tiny_chat_model):
    from app.engine.inference.runtime import ModelUnloaded

    model = pool.load("tiny", tiny_chat_model, SETTINGS)
    tokens = model.chat_prompt([ChatMessage("user", "hi")]).tokens
    pool.unload("tiny")  # the API or a TTL unloads it while the window still holds it
    with pytest.raises(ModelUnloaded, match="was unloaded"):
        model.submit(SequenceJob(tokens, Sampling(max_tokens=2)), Reply())
    assert model.bos_token() == model.bos_token() and model.vocab_size() > 0  # no freed reads
