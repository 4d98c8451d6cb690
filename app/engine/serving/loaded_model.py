"""A model loaded for serving: its decode loop, its chat template, its tokenizer."""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import llama_cpp

from app.engine.inference.context_window import ContextOverflow, fits, too_long
from app.engine.inference.runtime import ModelUnloaded, Runtime, default_threads, token_piece
from app.engine.serving.decode_loop import DecodeLoop
from app.engine.serving.jobs import (
    Finished,
    SequenceEvent,
    SequenceFailed,
    SequenceHandle,
    SequenceJob,
)
from app.engine.tools.families import detect_family
from app.engine.types import ChatMessage, LoadSettings, ModelInfo
from app.engine.vision.projector import Projector
from app.engine.vision.prompt import ImageSpan, image_overflow, vision_prompt

__all__ = ["ChatPrompt", "ContextOverflow", "LoadedModel", "load_llm"]


@dataclass(frozen=True)
class ChatPrompt:
    tokens: list[int]
    stop: list[str] = field(default_factory=list)  # the template's own end-of-turn strings
    opens_thinking: bool = False  # the reply starts inside "<think>"
    images: tuple[ImageSpan, ...] = ()  # where ``tokens`` holds images (a vision model's)

    @property
    def image_tokens(self) -> int:
        return sum(span.n_tokens for span in self.images)


class LoadedModel:
    def __init__(self, key: str, runtime: Runtime, *, jit: bool, ttl_s: float | None,
                 memory_bytes: int, projector: Projector | None = None) -> None:
        self.key = key
        self.kind = "llm"
        self.path = runtime.path
        self.info: ModelInfo = runtime.info
        self.settings: LoadSettings = runtime.settings
        self.n_ctx = runtime.n_ctx
        self.parallel = runtime.sequences - 1
        self.jit = jit
        self.ttl_s = ttl_s
        self.memory_bytes = memory_bytes
        self.last_used = time.monotonic()
        self._runtime = runtime
        self.projector = projector  # a vision model's; its context is the decode loop's too
        self.projector_path = projector.path if projector is not None else None
        # The template runs in one child process per model: one render at a time.
        self._template_lock = threading.Lock()
        # Held by `submit` and `close`: no request lands on a decode loop that has stopped.
        self._open_lock = threading.Lock()
        self._closed = False
        # Read once while loaded: after an unload the vocabulary is freed memory.
        vocab = runtime._vocab
        bos = llama_cpp.llama_vocab_bos(vocab)
        self._bos = bos if bos >= 0 and llama_cpp.llama_vocab_get_add_bos(vocab) else None
        self._n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
        formatter = runtime.formatter
        # How this model writes tool calls: its template's own markup, else the generic JSON
        # that the system-turn description of the tools asks for.
        self.tool_family = (detect_family(formatter.template, self.info.architecture)
                            if formatter.supports_tools else "generic")
        self._loop = DecodeLoop(runtime, self.parallel, runtime.n_ctx,
                                llama_cpp.llama_n_batch(runtime._ctx), projector)

    # -- prompts (any thread) ------------------------------------------------------------------
    def chat_prompt(self, messages: Sequence[ChatMessage],
                    cancelled: Callable[[], bool] | None = None,
                    tools: Sequence[dict[str, Any]] | None = None) -> ChatPrompt:
        """The conversation through the model's template; `PromptFormatError` if it can't.
        ``tools`` (OpenAI function tools) go to a template that reads them, else into the
        system turn. Messages with images need a projector (`NoVisionError` without);
        `ContextOverflow` when the last message's images alone leave no room."""
        if any(message.images for message in messages):
            return self._image_prompt(messages, cancelled, tools)
        with self._template_lock:
            prompt, tokens = self._runtime.render(messages, cancelled, tools)
        return ChatPrompt(tokens, list(prompt.stop), prompt.opens_thinking)

    def _image_prompt(self, messages: Sequence[ChatMessage],
                      cancelled: Callable[[], bool] | None,
                      tools: Sequence[dict[str, Any]] | None) -> ChatPrompt:
        runtime = self._runtime
        assert runtime.formatter is not None

        def tokenize(piece: Any, first: bool) -> list[int]:
            if first or piece.uses_template:
                return runtime.prompt_tokens(piece)
            # A plain transcript's later pieces: its users' text, without another BOS.
            return runtime.tokenize(piece.text, add_special=False, parse_special=False)

        with self._template_lock:
            built = vision_prompt(
                messages, self.projector,
                lambda marked: runtime.formatter.render(marked, cancelled, tools=tools),
                tokenize)
        newest = len(messages[-1].images)
        first_new = sum(len(m.images) for m in messages) - newest
        newest_tokens = sum(s.n_tokens for s in built.images if s.image >= first_new)
        if newest and not fits(newest_tokens, self.n_ctx):
            raise image_overflow(newest_tokens, newest_tokens, newest, self.n_ctx)
        return ChatPrompt(built.tokens, list(built.rendered.stop),
                          built.rendered.opens_thinking, built.images)

    def continuation_tokens(self, prompt: list[int], text: str) -> list[int]:
        """A stopped reply's ``text`` as tokens to follow ``prompt``: the tokens the model
        wrote, where the decode loop still holds them after that prompt and they spell the
        start of ``text`` (so all of it is a cached prefix), then the rest as plain text
        (never control tokens)."""
        data = text.encode("utf-8")
        own = self._loop.cached_after(prompt)
        used = upto = at = 0
        buf = ctypes.create_string_buffer(256)
        for count, token in enumerate(own, 1):
            with self._runtime._open_lock:  # the vocabulary lives as long as the model
                if self._runtime._model is None:
                    raise ModelUnloaded(self.path)
                piece = token_piece(self._runtime._vocab, token, buf)
            if data[at:at + len(piece)] != piece:
                break
            at += len(piece)
            if at == len(data) or data[at] & 0xC0 != 0x80:  # not inside a UTF-8 character
                used, upto = count, at
        return own[:used] + self.plain_tokens(data[upto:].decode("utf-8"))

    def plain_tokens(self, text: str) -> list[int]:
        """``text`` as plain text tokens, with no BOS (a reply's start, after its prompt)."""
        return self._runtime.tokenize(text, add_special=False, parse_special=False)

    def text_tokens(self, text: str) -> list[int]:
        """A raw completion prompt: the model's BOS, then the text as plain text."""
        return self._runtime.tokenize(text, add_special=True, parse_special=False)

    def bos_token(self) -> int | None:
        """The token the model starts every text with, or None when it adds none."""
        return self._bos

    def token_text(self, token: int) -> str:
        return self._runtime._token_text(token)

    def vocab_size(self) -> int:
        return self._n_vocab

    # -- generation ----------------------------------------------------------------------------
    def submit(self, job: SequenceJob, on_event: Callable[[SequenceEvent], None]
               ) -> SequenceHandle:
        """`ModelUnloaded` once the model is closed."""
        if not fits(len(job.tokens), self.n_ctx):
            if job.images:
                raise image_overflow(len(job.tokens), sum(s.n_tokens for s in job.images),
                                     len(job.images), self.n_ctx)
            raise too_long(len(job.tokens), self.n_ctx)

        def relay(event: SequenceEvent) -> None:
            if isinstance(event, Finished | SequenceFailed):
                self.last_used = time.monotonic()  # idle from the end of the last reply
            on_event(event)

        with self._open_lock:
            if self._closed:
                raise ModelUnloaded(self.path)
            self.last_used = time.monotonic()
            return self._loop.submit(job, relay)

    def busy_slots(self) -> int:
        return self._loop.busy_slots()

    def idle_s(self) -> float:
        return 0.0 if self.busy_slots() else time.monotonic() - self.last_used

    def close(self) -> None:
        """Cancel what runs, stop the decode thread, free the model."""
        with self._open_lock:
            self._closed = True
        self._loop.stop()
        if self.projector is not None:
            self.projector.close()  # before the text model it was opened on
        self._runtime.close()


def load_llm(key: str, path: str, settings: LoadSettings, *, jit: bool, ttl_s: float | None,
             memory_bytes: int, progress: Callable[[float], bool] | None = None,
             cancelled: Callable[[], bool] | None = None,
             projector: str | None = None) -> LoadedModel:
    """``projector``: a vision projector (mmproj) to open on the model (`ProjectorError`, a
    `LoadError`, if mtmd refuses it)."""
    runtime: Any = Runtime(path, settings, progress=progress, cancelled=cancelled,
                           sequences=settings.parallel + 1)
    vision = None
    try:
        if projector is not None:
            vision = Projector(projector, runtime._model,
                               n_threads=settings.n_threads or default_threads(),
                               use_gpu=settings.n_gpu_layers != 0)
        return LoadedModel(key, runtime, jit=jit, ttl_s=ttl_s, memory_bytes=memory_bytes,
                           projector=vision)
    except BaseException:
        if vision is not None:
            vision.close()
        runtime.close()
        raise
