"""A seeded request gives the same text alone or beside others, on the real (quantized) starter.

A tiny F16 model hides this: the starter's quantized weights and its prompts' chunking are where
llama.cpp's kernels round differently with the shape of the batch.
"""

from __future__ import annotations

import threading

import pytest

from app.engine.serving.jobs import Finished, Piece, SequenceJob
from app.engine.serving.pool import ModelPool
from app.engine.types import ChatMessage, LoadSettings, Sampling

PROMPTS = ["Write a poem about the sea.", "Explain how rain forms.",
           "List ten fruits and their colors.", "Tell a story about a dragon."]
SETTINGS = LoadSettings(n_ctx=1024, parallel=4)


def _ask(model, index: int, replies: dict[int, str]) -> threading.Event:
    chat = model.chat_prompt([ChatMessage("user", PROMPTS[index])])
    pieces: list[str] = []
    done = threading.Event()

    def on_event(event) -> None:
        if isinstance(event, Piece):
            pieces.append(event.text)
        elif isinstance(event, Finished):
            replies[index] = "".join(pieces)
            done.set()

    sampling = Sampling(temperature=0.9, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.1,
                        max_tokens=80, seed=index + 1)
    model.submit(SequenceJob(chat.tokens, sampling, stop=chat.stop), on_event)
    return done


@pytest.mark.starter
def test_seeded_requests_give_the_same_text_alone_and_beside_others(starter_model):
    alone: dict[int, str] = {}
    for index in range(len(PROMPTS)):
        pool = ModelPool()  # a fresh model each time: no slot holds a reused prefix
        try:
            model = pool.load("starter", starter_model, SETTINGS)
            assert _ask(model, index, alone).wait(120)
        finally:
            pool.shutdown()
    together: dict[int, str] = {}
    pool = ModelPool()
    try:
        model = pool.load("starter", starter_model, SETTINGS)
        events = [_ask(model, index, together) for index in range(len(PROMPTS))]
        assert all(event.wait(120) for event in events)
    finally:
        pool.shutdown()
    assert len(set(alone.values())) == len(PROMPTS)  # four different replies, none empty
    assert all(alone.values())
    assert together == alone
