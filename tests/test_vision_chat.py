"""A chat message with an image runs through a vision model: the image becomes embeddings,
is decoded with the text, and the reply streams, with the image's tokens counted."""

from __future__ import annotations

import queue
import threading

import pytest

from app.engine.inference.context_window import ContextOverflow
from app.engine.inference.events import Done, Failed, Loaded, PromptInfo, Token
from app.engine.serving.host import EngineHost
from app.engine.serving.jobs import Finished, Piece, SequenceJob
from app.engine.types import ChatMessage, DecodedImage, LoadSettings, Sampling
from app.engine.vision.prompt import NoVisionError
from app.testing.tiny_mmproj import build_tiny_mmproj

SETTINGS = LoadSettings(n_ctx=256, parallel=1, n_threads=1)
GREEDY = Sampling(temperature=0.0, max_tokens=8)


def _image(rgb: tuple[int, int, int], size: int = 48) -> DecodedImage:
    return DecodedImage(size, size, bytes(rgb) * (size * size))


RED, BLUE = _image((220, 20, 30)), _image((10, 40, 230))


class Reply:
    def __init__(self) -> None:
        self.pieces: list[Piece] = []
        self.end = None
        self.done = threading.Event()

    def __call__(self, event) -> None:
        if isinstance(event, Piece):
            self.pieces.append(event)
        else:
            self.end = event
            self.done.set()


def run(model, messages, sampling=GREEDY, **job) -> Reply:
    prompt = model.chat_prompt(messages)
    reply = Reply()
    model.submit(SequenceJob(prompt.tokens, sampling, stop=prompt.stop, images=prompt.images,
                             **job), reply)
    assert reply.done.wait(30)
    return reply



@pytest.fixture
def vision(pool, tiny_vision_model):
    return pool.load("vision", tiny_vision_model.model, SETTINGS,
                     projector=tiny_vision_model.mmproj)


def test_a_message_with_an_image_streams_a_reply_counting_the_image_tokens(
    vision, tiny_vision_model
):
    text_only = vision.chat_prompt([ChatMessage("user", "what is this")])
    prompt = vision.chat_prompt([ChatMessage("user", "what is this", images=(RED,))])
    assert prompt.image_tokens == tiny_vision_model.image_tokens == 16
    assert len(prompt.tokens) >= len(text_only.tokens) + 16

    reply = run(vision, [ChatMessage("user", "what is this", images=(RED,))])
    assert isinstance(reply.end, Finished), reply.end
    assert reply.pieces and reply.end.text == "".join(p.text for p in reply.pieces)
    stats = reply.end.stats
    assert stats.prompt_tokens == len(prompt.tokens)
    assert stats.image_tokens == 16 and stats.generated_tokens > 0


def test_the_reply_depends_on_the_image(vision):
    def first(image: DecodedImage) -> tuple[float, Finished]:
        reply = run(vision, [ChatMessage("user", "what is this", images=(image,))],
                    Sampling(temperature=0.0, max_tokens=1), top_logprobs=1)
        return reply.pieces[0].logprobs[0].logprob, reply.end

    red, _ = first(RED)
    again, end = first(RED)
    assert again == pytest.approx(red)  # the same image: the same answer, from the cache
    assert end.stats.cached_tokens == end.stats.prompt_tokens - 1
    blue, end = first(BLUE)
    assert blue != pytest.approx(red, abs=1e-6)
    # Only the text before the image came from the cache: the red image was not reused.
    [span] = vision.chat_prompt([ChatMessage("user", "what is this", images=(BLUE,))]).images
    assert end.stats.cached_tokens == span.start


def test_the_next_turn_reuses_the_decoded_image(vision):
    first = [ChatMessage("user", "what is this", images=(RED,))]
    reply = run(vision, first)
    second = [*first, ChatMessage("assistant", reply.end.text),
              ChatMessage("user", "and now")]
    again = run(vision, second)
    assert isinstance(again.end, Finished)
    # Everything up to the end of the first turn's image came from the cache.
    assert again.end.stats.cached_tokens > 16
    assert again.end.stats.image_tokens == 16


def test_an_image_that_overflows_the_context_is_refused_with_the_numbers(
    pool, tiny_vision_model, tmp_path
):
    # 64 px images in 2 px patches: 1024 tokens, four times this context.
    fine = build_tiny_mmproj(tmp_path / "mmproj-fine-f32.gguf", image_size=64, patch_size=2)
    model = pool.load("fine", tiny_vision_model.model, SETTINGS, projector=fine)
    with pytest.raises(ContextOverflow,
                       match=r"1024 tokens, 1024 of them for 1 image.*holds 256") as info:
        model.chat_prompt([ChatMessage("user", "hi", images=(RED,))])
    assert (info.value.prompt_tokens, info.value.n_ctx) == (1024, 256)


def test_text_and_image_together_too_long_are_refused_before_decoding(vision):
    prompt = vision.chat_prompt([ChatMessage("user", "what is this " * 80, images=(RED,))])
    assert len(prompt.tokens) > vision.n_ctx
    with pytest.raises(ContextOverflow, match=r"16 of them for 1 image.*holds 256") as info:
        vision.submit(SequenceJob(prompt.tokens, GREEDY, images=prompt.images), Reply())
    assert info.value.prompt_tokens == len(prompt.tokens)


def test_a_model_without_a_projector_says_it_cannot_read_images(pool, tiny_vision_model):
    text_only = pool.load("text", tiny_vision_model.model, SETTINGS)
    with pytest.raises(NoVisionError, match="cannot read images"):
        text_only.chat_prompt([ChatMessage("user", "what is this", images=(RED,))])


def _until(events: queue.Queue, job: int, kinds: tuple[type, ...]) -> tuple[object, list]:
    seen = []
    while True:
        event = events.get(timeout=60)
        if event.job_id != job:
            continue
        if isinstance(event, kinds):
            return event, seen
        seen.append(event)


def test_the_window_host_streams_a_reply_to_an_image_on_its_own_thread(tiny_vision_model):
    events: queue.Queue = queue.Queue()
    host = EngineHost(events.put)
    try:
        loaded, _ = _until(events, host.load(tiny_vision_model.model, SETTINGS,
                                             projector=tiny_vision_model.mmproj),
                           (Loaded, Failed))
        assert isinstance(loaded, Loaded), loaded
        job = host.chat([ChatMessage("user", "what is this", images=(BLUE,))], GREEDY)
        done, seen = _until(events, job, (Done, Failed))
        assert isinstance(done, Done), done
        [info] = [e for e in seen if isinstance(e, PromptInfo)]
        assert info.prompt_tokens == done.stats.prompt_tokens
        assert done.stats.image_tokens == 16 and info.prompt_tokens > 16
        assert "".join(e.text for e in seen if isinstance(e, Token)) == done.text != ""

        # The same file without its projector: images are refused, the host keeps working.
        loaded, _ = _until(events, host.load(tiny_vision_model.model, SETTINGS),
                           (Loaded, Failed))
        assert isinstance(loaded, Loaded)
        job = host.chat([ChatMessage("user", "what is this", images=(BLUE,))], GREEDY)
        failed, _ = _until(events, job, (Done, Failed))
        assert isinstance(failed, Failed) and "cannot read images" in failed.message
    finally:
        host.shutdown()


def test_an_image_is_prepared_once_for_every_turn_that_shows_it(vision):
    first = [ChatMessage("user", "what is this", images=(RED,))]
    later = [*first, ChatMessage("assistant", "red"), ChatMessage("user", "and now")]
    [a] = vision.chat_prompt(first).images
    [b] = vision.chat_prompt(later).images
    assert a.chunk is b.chunk
    [c] = vision.chat_prompt([ChatMessage("user", "what is this", images=(BLUE,))]).images
    assert c.chunk is not a.chunk
