"""Hearth's decode loop puts an image in the sequence exactly where llama.cpp's own mtmd helper
puts it: the same tokens, positions and logits, for a LLaVA-style projector and for Qwen2-VL's,
whose images take fewer positions than tokens (M-RoPE)."""

from __future__ import annotations

import ctypes
import math
import threading

import llama_cpp
import numpy as np
import pytest
from llama_cpp import mtmd_cpp

from app.engine.inference.runtime import Runtime
from app.engine.serving.jobs import Finished, Piece, SequenceJob
from app.engine.serving.pool import ModelPool
from app.engine.types import ChatMessage, DecodedImage, LoadSettings, Sampling
from app.engine.vision.projector import Projector
from app.testing.tiny_qwen2vl import build_tiny_qwen2vl

SETTINGS = LoadSettings(n_ctx=256, parallel=1, n_threads=1)
QUESTION = "what is this"
IMAGE = DecodedImage(48, 48, bytes(np.random.default_rng(3).integers(0, 255, 48 * 48 * 3,
                                                                     dtype=np.uint8)))


@pytest.fixture(scope="module")
def qwen2vl(tmp_path_factory):
    return build_tiny_qwen2vl(tmp_path_factory.mktemp("qwen2vl"))


@pytest.fixture(params=["llava", "qwen2vl"])
def pair(request, tiny_vision_model):
    return tiny_vision_model if request.param == "llava" else request.getfixturevalue("qwen2vl")


def _reference(pair) -> tuple[list[int | str], int, np.ndarray]:
    """mtmd's own tokenization and evaluation of the same chat: (text tokens and "image"
    markers, the position after the prompt, the last position's log-probabilities)."""
    runtime = Runtime(pair.model, LoadSettings(n_ctx=256, n_threads=1))
    projector = Projector(pair.mmproj, runtime._model, n_threads=1, use_gpu=False)
    chunks = mtmd_cpp.mtmd_input_chunks_init()
    try:
        prompt = (f"<|im_start|>user\n{projector.marker}\n{QUESTION}<|im_end|>\n"
                  "<|im_start|>assistant\n").encode()
        text = mtmd_cpp.mtmd_input_text(prompt, len(prompt), False, True)
        data = (ctypes.c_uint8 * len(IMAGE.rgb)).from_buffer_copy(IMAGE.rgb)
        bitmap = mtmd_cpp.mtmd_bitmap_init(IMAGE.width, IMAGE.height, data)
        bitmaps = (mtmd_cpp.mtmd_bitmap_p_ctypes * 1)(bitmap)
        assert mtmd_cpp.mtmd_tokenize(projector.handle, chunks, ctypes.byref(text),
                                      bitmaps, 1) == 0
        mtmd_cpp.mtmd_bitmap_free(bitmap)
        shape: list[int | str] = []
        for i in range(mtmd_cpp.mtmd_input_chunks_size(chunks)):
            chunk = mtmd_cpp.mtmd_input_chunks_get(chunks, i)
            if mtmd_cpp.mtmd_input_chunk_get_type(chunk) == mtmd_cpp.MTMD_INPUT_CHUNK_TYPE_TEXT:
                n = ctypes.c_size_t(0)
                ids = mtmd_cpp.mtmd_input_chunk_get_tokens_text(chunk, ctypes.byref(n))
                shape += [int(ids[k]) for k in range(n.value)]
            else:
                shape += ["image"] * mtmd_cpp.mtmd_input_chunk_get_n_tokens(chunk)
        n_past = llama_cpp.llama_pos(0)
        assert mtmd_cpp.mtmd_helper_eval_chunks(projector.handle, runtime._ctx, chunks, 0, 0,
                                                512, True, ctypes.byref(n_past)) == 0
        n_vocab = llama_cpp.llama_vocab_n_tokens(runtime._vocab)
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(runtime._ctx, -1),
                                       shape=(n_vocab,)).astype(np.float64)
        logprobs = logits - logits.max() - math.log(np.exp(logits - logits.max()).sum())
        return shape, int(n_past.value), logprobs
    finally:
        mtmd_cpp.mtmd_input_chunks_free(chunks)
        projector.close()
        runtime.close()


def test_an_image_is_decoded_as_llama_cpps_own_helper_decodes_it(pair):
    shape, n_past, logprobs = _reference(pair)
    pool = ModelPool()
    try:
        model = pool.load("vision", pair.model, SETTINGS, projector=pair.mmproj)
        prompt = model.chat_prompt([ChatMessage("user", QUESTION, images=(IMAGE,))])
        assert ["image" if t < 0 else t for t in prompt.tokens] == shape
        assert prompt.image_tokens == pair.image_tokens
        [span] = prompt.images
        # Qwen2-VL: 36 embeddings on a 6 × 6 grid advance the sequence by 6 positions.
        assert n_past == len(shape) - span.n_tokens + span.n_pos
        pieces, done = [], threading.Event()

        def on_event(event) -> None:
            if isinstance(event, Piece):
                pieces.append(event)
            else:
                pieces.append(event)
                done.set()

        model.submit(SequenceJob(prompt.tokens, Sampling(temperature=0.0, max_tokens=1),
                                 images=prompt.images, top_logprobs=5), on_event)
        assert done.wait(30) and isinstance(pieces[-1], Finished), pieces[-1]
        [first] = pieces[0].logprobs
        # Equal to float rounding: a wrong position moves them by ~5e-4 even in this tiny
        # model, whose small random weights make attention nearly blind to position.
        assert first.logprob == pytest.approx(float(logprobs.max()), abs=2e-5)
        top = sorted(logprobs, reverse=True)[:5]
        assert [t.logprob for t in first.top] == pytest.approx(top, abs=2e-5)
    finally:
        pool.shutdown()


def _first_logprobs(model, messages) -> tuple[list[float], Finished]:
    prompt = model.chat_prompt(messages)
    events, done = [], threading.Event()

    def on_event(event) -> None:
        events.append(event)
        if not isinstance(event, Piece):
            done.set()

    model.submit(SequenceJob(prompt.tokens, Sampling(temperature=0.0, max_tokens=1),
                             images=prompt.images, top_logprobs=5), on_event)
    assert done.wait(30) and isinstance(events[-1], Finished), events[-1]
    return [t.logprob for t in events[0].logprobs[0].top], events[-1]


def test_a_turn_after_an_image_from_the_cache_equals_one_decoded_afresh(pair):
    first = [ChatMessage("user", QUESTION, images=(IMAGE,))]
    second = [*first, ChatMessage("assistant", "a picture"), ChatMessage("user", "and now")]
    pool = ModelPool()
    try:
        warm = pool.load("warm", pair.model, SETTINGS, projector=pair.mmproj)
        _first_logprobs(warm, first)
        cached, end = _first_logprobs(warm, second)
        assert end.stats.cached_tokens > pair.image_tokens  # the image came from the cache
        fresh = pool.load("fresh", pair.model, LoadSettings(n_ctx=256, parallel=1,
                                                            n_threads=1, n_batch=256),
                          projector=pair.mmproj)
        afresh, end = _first_logprobs(fresh, second)
        assert end.stats.cached_tokens == 0
        assert cached == pytest.approx(afresh, abs=2e-5)
    finally:
        pool.shutdown()
