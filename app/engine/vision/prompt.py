"""Chat prompts with images: where each image goes, and what it becomes in the sequence.

A user turn's images are put before its text as stand-ins (private-use characters with a
per-prompt random nonce, so no message text can forge one) and the conversation is rendered by
the model's template as usual. The rendered prompt is cut at the stand-ins: the text between
them is tokenized the way every prompt is (`PromptTokenizer`: the messages' text never becomes
control tokens), and each image is tokenized by mtmd on its own (``mtmd_tokenize`` with just the
default marker: the model's image-start/end tokens, if it has any, and the image chunk). Text
tokenized by mtmd as a whole prompt would parse control tokens in the users' text.

In the prompt's token list an image holds ``n_tokens`` placeholder ids: negative numbers derived
from the image's pixels, so a slot that already decoded the same image (the next turn of the
chat) reuses it like any cached prefix, and a different image never matches. The `ImageSpan`s
say where the placeholders are; the decode loop encodes and decodes the image there.
"""

from __future__ import annotations

import ctypes
import hashlib
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from llama_cpp import mtmd_cpp

from app.engine.inference.context_window import ContextOverflow
from app.engine.inference.prompt_format import PromptFormatError, RenderedPrompt
from app.engine.inference.prompt_spans import TextSpan
from app.engine.types import ChatMessage, DecodedImage
from app.engine.vision.projector import Projector

__all__ = ["ImageChunk", "ImagePromptError", "ImageSpan", "NoVisionError", "VisionPrompt",
           "image_overflow", "is_placeholder", "vision_prompt"]

_PLACEHOLDER_SPACE = 1 << 60
PREPARED_IMAGES = 32  # prepared images kept per projector (a chat's worth)


class NoVisionError(PromptFormatError):
    """Images were sent to a model loaded without a vision projector."""


class ImagePromptError(PromptFormatError):
    """mtmd could not turn an image into tokens; the message is for the user."""


class ImageChunk:
    """An image as mtmd prepared it (resized, normalised, split into tiles if the model does
    that), ready to encode. Owns its ``mtmd_input_chunk*``, freed with the object."""

    def __init__(self, chunk: Any) -> None:
        self._chunk = chunk
        self.n_tokens = int(mtmd_cpp.mtmd_input_chunk_get_n_tokens(chunk))
        self.n_pos = int(mtmd_cpp.mtmd_input_chunk_get_n_pos(chunk))

    @property
    def handle(self) -> Any:
        return self._chunk

    def __del__(self) -> None:
        chunk, self._chunk = getattr(self, "_chunk", None), None
        if chunk and mtmd_cpp is not None:  # the module may be gone at interpreter exit
            mtmd_cpp.mtmd_input_chunk_free(chunk)


@dataclass(frozen=True)
class ImageSpan:
    """An image's place in a prompt's tokens: ``tokens[start:start + n_tokens]`` are its
    placeholders; it advances the sequence's position by ``n_pos`` (== n_tokens except for
    M-RoPE models such as Qwen2-VL)."""

    start: int
    chunk: ImageChunk
    image: int = 0  # which of the conversation's images (in order) it is part of

    @property
    def n_tokens(self) -> int:
        return self.chunk.n_tokens

    @property
    def n_pos(self) -> int:
        return self.chunk.n_pos

    @property
    def end(self) -> int:
        return self.start + self.chunk.n_tokens


@dataclass(frozen=True)
class VisionPrompt:
    rendered: RenderedPrompt  # the text, with the stand-ins where the images are
    tokens: list[int]  # images as placeholders (see `is_placeholder`)
    images: tuple[ImageSpan, ...]

    @property
    def image_tokens(self) -> int:
        return sum(span.n_tokens for span in self.images)


def is_placeholder(token: int) -> bool:
    return token < 0


def _digest(image: DecodedImage) -> bytes:
    return hashlib.blake2b(image.rgb, digest_size=16,
                           person=f"{image.width}x{image.height}".encode()[:16]).digest()


def _placeholders(digest: bytes, n: int) -> list[int]:
    base = int.from_bytes(digest[:8], "little") % _PLACEHOLDER_SPACE
    return [-1 - ((base + i) % _PLACEHOLDER_SPACE) for i in range(n)]


def _with_stand_ins(messages: Sequence[ChatMessage], nonce: str
                    ) -> tuple[list[ChatMessage], list[DecodedImage]]:
    marked: list[ChatMessage] = []
    images: list[DecodedImage] = []
    for message in messages:
        if not message.images:
            marked.append(message)
            continue
        stand_ins = ""
        for image in message.images:
            stand_ins += f"\ue002{nonce}:{len(images)}\ue003\n"
            images.append(image)
        marked.append(replace(message, content=stand_ins + message.content, images=()))
    return marked, images


def _piece(prompt: RenderedPrompt, start: int, end: int) -> RenderedPrompt:
    """The part ``start:end`` of ``prompt``, with the messages' spans that fall in it."""
    contents = prompt.contents
    if contents is not None:
        contents = tuple(TextSpan(max(s.start, start) - start, min(s.end, end) - start)
                         for s in contents if s.start < end and s.end > start)
    return replace(prompt, text=prompt.text[start:end], contents=contents)


def _prepared(projector: Projector, image: DecodedImage, digest: bytes
              ) -> list[int | ImageChunk]:
    """`_image_parts`, remembered for the projector's recent images: fitting a chat to the
    context renders it several times, and every turn renders the earlier turns' images again."""
    cache = projector.prepared
    with projector.lock:
        parts = cache.get(digest)
        if parts is not None:
            cache.move_to_end(digest)
            return parts
    parts = _image_parts(projector, image)
    with projector.lock:
        cache[digest] = parts
        while len(cache) > PREPARED_IMAGES:
            cache.popitem(last=False)
    return parts


def _image_parts(projector: Projector, image: DecodedImage) -> list[int | ImageChunk]:
    """What mtmd makes of one image: its text tokens (image start/end markers) and chunks."""
    data = (ctypes.c_uint8 * len(image.rgb)).from_buffer_copy(image.rgb)
    bitmap = mtmd_cpp.mtmd_bitmap_init(image.width, image.height, data)
    if not bitmap:
        raise ImagePromptError("The vision projector could not take this image.")
    chunks = mtmd_cpp.mtmd_input_chunks_init()
    try:
        marker = projector.marker.encode()
        text = mtmd_cpp.mtmd_input_text(marker, len(marker), False, True)
        bitmaps = (mtmd_cpp.mtmd_bitmap_p_ctypes * 1)(bitmap)
        with projector.lock:
            rc = mtmd_cpp.mtmd_tokenize(projector.handle, chunks, ctypes.byref(text), bitmaps, 1)
        if rc != 0:
            raise ImagePromptError(f"The vision projector could not prepare this image "
                                   f"(mtmd code {rc}).")
        parts: list[int | ImageChunk] = []
        for i in range(mtmd_cpp.mtmd_input_chunks_size(chunks)):
            chunk = mtmd_cpp.mtmd_input_chunks_get(chunks, i)
            kind = mtmd_cpp.mtmd_input_chunk_get_type(chunk)
            if kind == mtmd_cpp.MTMD_INPUT_CHUNK_TYPE_TEXT:
                n = ctypes.c_size_t(0)
                ids = mtmd_cpp.mtmd_input_chunk_get_tokens_text(chunk, ctypes.byref(n))
                parts.extend(int(ids[k]) for k in range(n.value))
            elif kind == mtmd_cpp.MTMD_INPUT_CHUNK_TYPE_IMAGE:
                parts.append(ImageChunk(mtmd_cpp.mtmd_input_chunk_copy(chunk)))
            else:
                raise ImagePromptError("The vision projector turned an image into audio.")
        return parts
    finally:
        mtmd_cpp.mtmd_input_chunks_free(chunks)
        mtmd_cpp.mtmd_bitmap_free(bitmap)


def vision_prompt(
    messages: Sequence[ChatMessage], projector: Projector | None,
    render: Callable[[Sequence[ChatMessage]], RenderedPrompt],
    tokenize: Callable[[RenderedPrompt, bool], list[int]],
) -> VisionPrompt:
    """The conversation's prompt with its images (`NoVisionError` without a projector).

    ``render`` is the model's template; ``tokenize(piece, first)`` tokenizes a piece of the
    rendered prompt as the model tokenizes whole prompts (``first``: it may begin with BOS).
    """
    if projector is None or not projector.supports_vision:
        raise NoVisionError("This model cannot read images: it was loaded without a vision "
                            "projector (mmproj). Pick a vision model, or remove the images.")
    nonce = secrets.token_hex(8)
    marked, images = _with_stand_ins(messages, nonce)
    rendered = render(marked)
    stand_in = re.compile("\ue002" + nonce + r":(\d+)\ue003")
    tokens: list[int] = []
    spans: list[ImageSpan] = []
    pos = 0
    placed: set[int] = set()
    for match in stand_in.finditer(rendered.text):
        tokens += tokenize(_piece(rendered, pos, match.start()), pos == 0)
        placed.add(int(match.group(1)))
        image = images[int(match.group(1))]
        digest = _digest(image)
        for part in _prepared(projector, image, digest):
            if isinstance(part, ImageChunk):
                spans.append(ImageSpan(len(tokens), part, int(match.group(1))))
                tokens += _placeholders(digest, part.n_tokens)
            else:
                tokens.append(part)
        pos = match.end()
    tokens += tokenize(_piece(rendered, pos, len(rendered.text)), pos == 0)
    if len(placed) != len(images):
        raise ImagePromptError("This model's chat template left out a message that has "
                               "images, so they cannot be shown to it.")
    if tokens and is_placeholder(tokens[-1]):
        # The reply's first token comes from the logits of the prompt's last token.
        raise ImagePromptError("This chat template ends its prompt with an image, which "
                               "Hearth cannot decode from.")
    return VisionPrompt(rendered, tokens, tuple(spans))


def image_overflow(prompt_tokens: int, image_tokens: int, n_images: int,
                   n_ctx: int) -> ContextOverflow:
    """The overflow of a prompt whose images leave no room, with the numbers."""
    images = "1 image" if n_images == 1 else f"{n_images} images"
    return ContextOverflow(
        f"The prompt has {prompt_tokens} tokens, {image_tokens} of them for {images}, but this "
        f"model's context holds {n_ctx} (and the reply needs at least one more). Load the "
        "model with a longer context, or send fewer or smaller images.",
        prompt_tokens, n_ctx)
