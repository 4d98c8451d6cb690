"""Feeding one image of a prompt into a sequence, and where a cached prefix may end around
images. The decode loop's thread runs it; Stop (or the model unloading) cuts it short."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import llama_cpp

from app.engine.vision.projector import Projector
from app.engine.vision.prompt import ImageSpan


def feed_image(projector: Projector, ctx: Any, memory: Any, span: ImageSpan, start: int,
               seq: int, n_batch: int, cancelled: Callable[[], bool]) -> int | None:
    """Encode ``span``'s image and decode it into sequence ``seq`` from position ``start``;
    the position after it, or None when ``cancelled()`` turned true on the way. Then the
    sequence holds nothing from ``start`` on: no later request can take a half-fed image
    for a cached prefix. `ProjectorError` on failure."""
    end = projector.eval_image(ctx, span.chunk.handle, start, seq, n_batch, cancelled)
    if end is None:
        llama_cpp.llama_memory_seq_rm(memory, seq, start, -1)
    return end


def image_boundary(keep: int, images: tuple[ImageSpan, ...]) -> tuple[int, int]:
    """A reusable prefix of ``keep`` tokens cut back to the start of an image it would split
    (an image is decoded whole), and the position shift of the tokens before it."""
    shift = 0
    for span in images:
        if span.start < keep < span.end:
            keep = span.start
        if span.end <= keep:
            shift += span.n_pos - span.n_tokens
    return keep, shift
