"""What a caller asks a loaded model for, and what it hears back, one sequence at a time.

The window's chat, `hearth chat` and the API server all submit a `SequenceJob` to a
`LoadedModel` (see `pool.py`) and receive `SequenceEvent`s on the model's decode thread through
their callback. A callback must return quickly (queue the event; never block).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Literal

from app.engine.types import GenerationStats, Sampling
from app.engine.vision.prompt import ImageSpan

FinishReason = Literal["eos", "stop", "length", "context", "cancelled"]


@dataclass
class SequenceJob:
    tokens: list[int]  # the whole prompt; the longest prefix a slot already holds is reused
    sampling: Sampling  # max_tokens, seed (-1: random), temperature, top_k/p, min_p, ...
    stop: list[str] = field(default_factory=list)  # beside sampling.stop (e.g. the template's)
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: dict[int, float] = field(default_factory=dict)  # token id → added logit
    top_logprobs: int | None = None  # None: no logprobs; n: the chosen token's and the n likeliest
    interactive: bool = False  # the window's chat: a slot kept for it, never queued behind API work
    grammar: str | None = None  # GBNF (root rule "root") the reply must match, e.g. from a schema
    # Control tokens written out as text when theirs is one of these: tool-call markers such as
    # Llama's <|python_tag|> or Mistral's [TOOL_CALLS] are control tokens, and the reply's
    # parser must see them; any other control token still never shows.
    control_text: frozenset[str] = frozenset()
    # Where ``tokens`` holds images' placeholders (a vision model's prompt, see
    # `app.engine.vision.prompt`): the decode loop encodes and decodes each image there.
    images: tuple[ImageSpan, ...] = ()


@dataclass(frozen=True)
class TopLogprob:
    token: str
    logprob: float
    bytes: tuple[int, ...]


@dataclass(frozen=True)
class TokenLogprob:
    token: str
    logprob: float
    bytes: tuple[int, ...]
    top: tuple[TopLogprob, ...] = ()


@dataclass(frozen=True)
class Piece:
    """Text that can be shown now (stop strings are held back until they can't match)."""

    text: str
    logprobs: tuple[TokenLogprob, ...] = ()  # one per token whose text is (partly) in `text`


@dataclass(frozen=True)
class Finished:
    reason: FinishReason
    text: str  # the whole reply, without the stop string
    stats: GenerationStats  # prompt_tokens, cached_tokens, generated_tokens, TTFT, tok/s


@dataclass(frozen=True)
class SequenceFailed:
    message: str


SequenceEvent = Piece | Finished | SequenceFailed


class SequenceHandle:
    """A submitted sequence: cancel it from any thread; `wait` for its end."""

    def __init__(self) -> None:
        self._cancelled = threading.Event()
        self._ended = threading.Event()

    def cancel(self) -> None:
        """Stop it; its slot is free again within one decode step."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._ended.wait(timeout)

    def _end(self) -> None:
        self._ended.set()
