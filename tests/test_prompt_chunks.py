"""A long prompt decodes in n_batch chunks on the decode loop: Stop is honoured between two
chunks, and the chunks already decoded are reused by the next request."""

from __future__ import annotations

import threading
from pathlib import Path

import llama_cpp
import pytest
from decode_support import Reply, complete, submit

from app.engine.serving.jobs import Piece
from app.engine.serving.pool import ModelPool
from app.engine.types import ChatMessage, LoadSettings

SETTINGS = LoadSettings(n_ctx=512, n_batch=32, n_threads=2, parallel=1)
LONG_TEXT = " ".join(["the model will answer the question and then close the chat"] * 12)


class StopAfterChunks:
    """Presses Stop on a sequence once llama.cpp has decoded ``chunks`` of its prompt, as a user
    does while a long prompt is processed (None: only watch). The real decode runs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, chunks: int | None) -> None:
        self.decoded: list[int] = []  # tokens per llama_decode call
        self._handle = None
        self._submitted = threading.Event()
        real = llama_cpp.llama_decode

        def decode(ctx, batch):
            rc = real(ctx, batch)
            self.decoded.append(batch.n_tokens)
            if len(self.decoded) == chunks:
                self._submitted.wait(5)
                self._handle.cancel()
            return rc

        monkeypatch.setattr(llama_cpp, "llama_decode", decode)

    def submit(self, model, tokens: list[int]) -> Reply:
        reply, self._handle = submit(model, tokens)
        self._submitted.set()
        return reply



def _long_prompt(model) -> list[int]:
    tokens = model.chat_prompt([ChatMessage("user", LONG_TEXT)]).tokens
    assert len(tokens) > 3 * 32
    return tokens


def test_stop_is_honoured_between_prompt_chunks(pool, tiny_model: Path,
                                                 monkeypatch: pytest.MonkeyPatch):
    model = pool.load("tiny", tiny_model, SETTINGS)
    tokens = _long_prompt(model)
    stop = StopAfterChunks(monkeypatch, chunks=1)  # Stop pressed during the first chunk
    reply = stop.submit(model, tokens)
    end = reply.finished()
    assert end.reason == end.stats.stop_reason == "cancelled"
    assert (end.text, reply.pieces, end.stats.generated_tokens) == ("", [], 0)
    assert stop.decoded == [32]  # the chunk under way finished; no other was started
    assert end.stats.context_used == 32
    assert model.busy_slots() == 0

    # The next request reuses the chunk that was decoded and finishes normally.
    monkeypatch.undo()
    again = complete(model, tokens).finished()
    assert again.stats.cached_tokens == 32
    assert again.reason in ("eos", "length")
    assert again.stats.context_used >= len(tokens)


def test_a_cancelled_prompt_gives_the_same_reply_afterwards(tiny_model: Path,
                                                            monkeypatch: pytest.MonkeyPatch):
    fresh_pool, reused_pool = ModelPool(), ModelPool()  # two copies: no shared slots
    try:
        fresh = fresh_pool.load("tiny", tiny_model, SETTINGS)
        tokens = _long_prompt(fresh)
        expected = complete(fresh, tokens)
        assert expected.text and expected.finished().stats.cached_tokens == 0
        reused = reused_pool.load("tiny", tiny_model, SETTINGS)
        stop = StopAfterChunks(monkeypatch, chunks=2)
        assert stop.submit(reused, tokens).finished().stats.context_used == 64
        monkeypatch.undo()
        again = complete(reused, tokens)
        assert again.finished().stats.cached_tokens == 64
        assert again.text == expected.text
    finally:
        fresh_pool.shutdown()
        reused_pool.shutdown()


class HeldReply(Reply):
    """Holds the decode thread at its first piece until released, so its slot stays taken."""

    def __init__(self) -> None:
        super().__init__()
        self.holding = threading.Event()
        self.release = threading.Event()

    def __call__(self, event: object) -> None:
        super().__call__(event)
        if isinstance(event, Piece) and not self.holding.is_set():
            self.holding.set()
            self.release.wait(10)


def test_a_request_cancelled_while_it_waits_decodes_nothing(pool, tiny_model: Path,
                                                            monkeypatch: pytest.MonkeyPatch):
    model = pool.load("tiny", tiny_model, SETTINGS)  # one API slot, one for the window
    busy, busy_handle = submit(model, model.text_tokens("go on"), interactive=False,
                               reply=HeldReply())
    assert busy.holding.wait(10)
    decoded = StopAfterChunks(monkeypatch, chunks=None).decoded  # every llama_decode call
    waiting, handle = submit(model, _long_prompt(model), interactive=False)
    assert model.busy_slots() == 2  # the API slot is taken: it queues
    handle.cancel()
    busy.release.set()
    end = waiting.finished(5)
    assert (end.reason, end.text, waiting.pieces) == ("cancelled", "", [])
    assert (end.stats.context_used, end.stats.generated_tokens) == (0, 0)
    assert all(n == 1 for n in decoded)  # only the running reply's tokens: no prompt chunk
    busy_handle.cancel()
    assert busy.finished(5).reason in ("cancelled", "eos", "length", "context")
