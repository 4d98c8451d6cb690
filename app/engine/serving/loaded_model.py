"""A model loaded for serving: its decode loop, its chat template, its tokenizer."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import llama_cpp

from app.engine.inference.runtime import Runtime
from app.engine.serving.decode_loop import DecodeLoop
from app.engine.serving.jobs import SequenceEvent, SequenceHandle, SequenceJob
from app.engine.types import ChatMessage, LoadSettings, ModelInfo


class ContextOverflow(ValueError):
    """A prompt that cannot fit a sequence's context; the message says by how much."""

    def __init__(self, prompt_tokens: int, n_ctx: int) -> None:
        super().__init__(f"The prompt has {prompt_tokens} tokens, but this model's context "
                         f"holds {n_ctx} (and the reply needs at least one more).")
        self.prompt_tokens = prompt_tokens
        self.n_ctx = n_ctx


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
        self._loop = DecodeLoop(runtime, self.parallel, runtime.n_ctx,
                                llama_cpp.llama_n_batch(runtime._ctx))

    # -- prompts (any thread) ------------------------------------------------------------------
    def chat_prompt(self, messages: Sequence[ChatMessage],
                    cancelled: Callable[[], bool] | None = None) -> ChatPrompt:
        """The conversation through the model's template; `PromptFormatError` if it can't."""
        with self._template_lock:
            prompt, tokens = self._runtime.render(messages, cancelled)
        return ChatPrompt(tokens, list(prompt.stop), prompt.opens_thinking)

    def text_tokens(self, text: str) -> list[int]:
        """A raw completion prompt: the model's BOS, then the text as plain text."""
        return self._runtime.tokenize(text, add_special=True, parse_special=False)

    def token_text(self, token: int) -> str:
        return self._runtime._token_text(token)

    def vocab_size(self) -> int:
        return llama_cpp.llama_vocab_n_tokens(self._runtime._vocab)

    # -- generation ----------------------------------------------------------------------------
    def submit(self, job: SequenceJob, on_event: Callable[[SequenceEvent], None]
               ) -> SequenceHandle:
        if len(job.tokens) + 1 > self.n_ctx:
            raise ContextOverflow(len(job.tokens), self.n_ctx)
        self.last_used = time.monotonic()
        return self._loop.submit(job, on_event)

    def busy_slots(self) -> int:
        return self._loop.busy_slots()

    def idle_s(self) -> float:
        return 0.0 if self.busy_slots() else time.monotonic() - self.last_used

    def close(self) -> None:
        """Cancel what runs, stop the decode thread, free the model."""
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
