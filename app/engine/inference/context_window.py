"""Fit a conversation into the context window according to the chat's overflow policy."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from app.engine.types import ChatMessage

OverflowPolicy = Literal["stop", "truncate_oldest"]


class ContextOverflow(Exception):
    """The conversation does not fit; the message says what the user can do."""


@dataclass(frozen=True)
class FittedPrompt:
    messages: list[ChatMessage]
    tokens: list[int]
    dropped: int  # oldest non-system messages left out


def reply_reserve(n_ctx: int, max_tokens: int) -> int:
    """Room kept free for the reply, so a turn never starts with no space left to answer."""
    return max(16, min(max_tokens, n_ctx // 4))


def fit_conversation(
    messages: Sequence[ChatMessage],
    tokenize: Callable[[Sequence[ChatMessage]], list[int]],
    n_ctx: int,
    reserve: int,
    policy: OverflowPolicy,
) -> FittedPrompt:
    budget = n_ctx - reserve
    tokens = tokenize(messages)
    if len(tokens) <= budget:
        return FittedPrompt(list(messages), tokens, 0)
    if policy == "stop":
        raise ContextOverflow(
            f"This chat needs {len(tokens)} tokens plus {reserve} for the reply, but the context "
            f"holds {n_ctx}. Start a new chat, load the model with a longer context, or let this "
            "chat drop its oldest turns."
        )
    system = [m for m in messages if m.role == "system"]
    turns = [m for m in messages if m.role != "system"]
    # Fewer dropped turns means more tokens, so binary search the smallest drop that fits.
    lo, hi = 1, len(turns) - 1
    best: FittedPrompt | None = None
    while lo <= hi:
        mid = (lo + hi) // 2
        kept = system + _start_at_user(turns[mid:])
        candidate = tokenize(kept)
        if len(candidate) <= budget:
            best = FittedPrompt(kept, candidate, len(messages) - len(kept))
            hi = mid - 1
        else:
            lo = mid + 1
    if best is None:
        raise ContextOverflow(
            f"Even the last message alone needs more than the {budget} tokens the context can give "
            f"it ({n_ctx} in all, {reserve} kept for the reply). Load the model with a longer "
            "context or shorten the message."
        )
    return best


def _start_at_user(turns: Sequence[ChatMessage]) -> list[ChatMessage]:
    # Templates expect the first non-system turn to be the user's.
    rest = list(turns)
    while len(rest) > 1 and rest[0].role != "user":
        rest.pop(0)
    return rest
