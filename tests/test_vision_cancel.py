"""Stop while an image is fed: the image's encoding and the decoding of its embeddings are cut
short, the reply ends as cancelled, and the model answers the next request as a fresh one does.

The Stop is pressed at a known moment without timing: from mtmd's own log line, which it writes
on the decode thread just before the encoder's graph runs ("clip_encode: ...") or just before a
batch of embeddings is decoded ("decoding image batch 1/N").
"""

from __future__ import annotations

import dataclasses
import logging
import threading

import pytest

from app.engine.serving.jobs import Finished, Piece, SequenceHandle, SequenceJob
from app.engine.types import ChatMessage, DecodedImage, LoadSettings, Sampling
from app.engine.vision.projector import CHECK_EVERY_NODES
from app.testing.tiny_mmproj import build_tiny_mmproj

# 64 px images in 4 px patches: 256 image tokens, decoded in four batches of 64.
SETTINGS = LoadSettings(n_ctx=1024, parallel=1, n_threads=1, n_batch=64)
GREEDY = Sampling(temperature=0.0, max_tokens=6)
IMAGE = DecodedImage(64, 64, bytes((220, 20, 30)) * (64 * 64))
ASK = [ChatMessage("user", "what is this", images=(IMAGE,))]


class Reply:
    def __init__(self) -> None:
        self.pieces: list[Piece] = []
        self.end: object = None
        self.done = threading.Event()

    def __call__(self, event: object) -> None:
        if isinstance(event, Piece):
            self.pieces.append(event)
        else:
            self.end = event
            self.done.set()


class StopAtLogLine(logging.Handler):
    """Presses Stop on the job (from the decode thread) when mtmd logs a line starting so."""

    def __init__(self, prefix: str) -> None:
        super().__init__(logging.DEBUG)
        self.prefix = prefix
        self.job: SequenceHandle | None = None
        self.submitted = threading.Event()
        self.pressed = False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.pressed and record.getMessage().startswith(self.prefix):
            self.submitted.wait(10)  # the job may start before `submit` has returned
            assert self.job is not None
            self.job.cancel()
            self.pressed = True


@pytest.fixture
def stop_at():
    logger = logging.getLogger("hearth.mtmd")
    level, handlers = logger.level, []

    def install(prefix: str) -> StopAtLogLine:
        handler = StopAtLogLine(prefix)
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
        handlers.append(handler)
        return handler

    yield install
    for handler in handlers:
        logger.removeHandler(handler)
    logger.setLevel(level)



@pytest.fixture(scope="module")
def mmproj(tmp_path_factory):
    return build_tiny_mmproj(tmp_path_factory.mktemp("cancel") / "mmproj-tiny-vl-chat-f32.gguf",
                             text_n_embd=64, image_size=64, patch_size=4)


def _load(pool, tiny_vision_model, mmproj):
    return pool.load("vision", tiny_vision_model.model, SETTINGS, projector=mmproj)


def _send(model, stop: StopAtLogLine | None = None) -> Reply:
    prompt = model.chat_prompt(ASK)
    reply = Reply()
    handle = model.submit(SequenceJob(prompt.tokens, GREEDY, stop=prompt.stop,
                                      images=prompt.images, top_logprobs=1), reply)
    if stop is not None:
        stop.job = handle
        stop.submitted.set()
    assert reply.done.wait(60)
    return reply


def _answer(reply: Reply) -> tuple[str, float]:
    assert isinstance(reply.end, Finished) and reply.end.reason != "cancelled", reply.end
    assert reply.end.stats.generated_tokens > 0
    return reply.end.text, reply.pieces[0].logprobs[0].logprob


def _fresh_answer(pool, tiny_vision_model, mmproj) -> tuple[str, float]:
    pool.unload("vision")
    return _answer(_send(_load(pool, tiny_vision_model, mmproj)))


@pytest.mark.parametrize("where", ["encoding", "decoding"])
def test_stop_while_an_image_is_fed_cuts_it_short_and_the_next_request_is_unharmed(
    pool, tiny_vision_model, mmproj, stop_at, where
):
    model = _load(pool, tiny_vision_model, mmproj)
    [span] = model.chat_prompt(ASK).images
    assert span.n_tokens == 256

    stop = stop_at("clip_encode" if where == "encoding" else "decoding image batch 1/")
    cancelled = _send(model, stop)
    assert stop.pressed
    assert isinstance(cancelled.end, Finished)
    assert cancelled.end.reason == "cancelled" and cancelled.end.text == ""
    assert cancelled.pieces == []
    cut = dataclasses.replace(model.projector.last_feed)
    assert cut.cancelled

    # The same request again: fed whole, and only the text before the image came from the
    # cache (the half-fed image was not kept as a prefix).
    again = _send(model)
    answer = _answer(again)
    assert again.end.stats.cached_tokens == span.start
    whole = model.projector.last_feed
    assert not whole.cancelled and whole.decoded_batches == 4
    if where == "encoding":
        # Stopped at the first check in the encoder's graph: nothing of the image decoded.
        assert cut.encoder_nodes == CHECK_EVERY_NODES < whole.encoder_nodes
        assert cut.decoded_batches == 0
    else:
        # Encoded whole; the decoding of its first batch was aborted, the others never ran.
        assert cut.encoder_nodes == whole.encoder_nodes
        assert cut.decoded_batches == 0

    assert answer == pytest.approx(_fresh_answer(pool, tiny_vision_model, mmproj))

