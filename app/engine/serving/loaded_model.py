"""A model loaded for serving: its decode loop, its chat template, its tokenizer."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import llama_cpp

from app.engine.inference.context_window import ContextOverflow, fits, too_long
from app.engine.inference.runtime import ModelUnloaded, Runtime
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

__all__ = ["ChatPrompt", "ContextOverflow", "LoadedModel", "load_llm"]


@dataclass(frozen=True)
class ChatPrompt:
    tokens: list[int]
    stop: list[str] = field(default_factory=list)  # the template's own end-of-turn strings
    opens_thinking: bool = False  # the reply starts inside "<think>"


class LoadedModel:
    def __init__(self, key: str, runtime: Runtime, *, jit: bool, ttl_s: float | None,
                 memory_bytes: int) -> None:
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
                                llama_cpp.llama_n_batch(runtime._ctx))

    # -- prompts (any thread) ------------------------------------------------------------------
    def chat_prompt(self, messages: Sequence[ChatMessage],
                    cancelled: Callable[[], bool] | None = None,
                    tools: Sequence[dict[str, Any]] | None = None) -> ChatPrompt:
        """The conversation through the model's template; `PromptFormatError` if it can't.
        ``tools`` (OpenAI function tools) go to a template that reads them, else into the
        system turn."""
        with self._template_lock:
            prompt, tokens = self._runtime.render(messages, cancelled, tools)
        return ChatPrompt(tokens, list(prompt.stop), prompt.opens_thinking)

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
        self._runtime.close()


def load_llm(key: str, path: str, settings: LoadSettings, *, jit: bool, ttl_s: float | None,
             memory_bytes: int, progress: Callable[[float], bool] | None = None,
             cancelled: Callable[[], bool] | None = None) -> LoadedModel:
    runtime: Any = Runtime(path, settings, progress=progress, cancelled=cancelled,
                           sequences=settings.parallel + 1)
    try:
        return LoadedModel(key, runtime, jit=jit, ttl_s=ttl_s, memory_bytes=memory_bytes)
    except BaseException:
        runtime.close()
        raise
