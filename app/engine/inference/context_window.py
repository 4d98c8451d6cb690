"""The one rule for fitting a prompt into a sequence's context, and the two ways to make a
prompt fit when it does not: drop a conversation's oldest turns, or a raw text's oldest tokens.

A prompt fits when it leaves ``reserve`` tokens (at least one) for the reply. Everything that
checks or fits a prompt — the window's chat, the server's routes, the serving model itself —
uses `fits` and these functions, so they cannot disagree on what fits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from app.engine.types import ChatMessage

OverflowPolicy = Literal["stop", "truncate_oldest"]
REPLY_MIN = 1  # a prompt must leave room for at least one token of reply


class ContextOverflow(ValueError):
    """A prompt that does not fit; the message says by how much and what the user can do."""

    def __init__(self, message: str, prompt_tokens: int, n_ctx: int,
                 reserve: int = REPLY_MIN) -> None:
        super().__init__(message)
        self.prompt_tokens = prompt_tokens  # the shortest prompt that was tried
        self.n_ctx = n_ctx
        self.reserve = reserve


def fits(prompt_tokens: int, n_ctx: int, reserve: int = REPLY_MIN) -> bool:
    """Whether a prompt of this length leaves ``reserve`` tokens (at least one) for the reply."""
    return prompt_tokens + max(reserve, REPLY_MIN) <= n_ctx


def too_long(prompt_tokens: int, n_ctx: int) -> ContextOverflow:
    """The overflow of a prompt that leaves no room for even one token of reply."""
    return ContextOverflow(f"The prompt has {prompt_tokens} tokens, but this model's context "
                           f"holds {n_ctx} (and the reply needs at least one more).",
                           prompt_tokens, n_ctx)


@dataclass(frozen=True)
class FittedPrompt:
    messages: list[ChatMessage]
    tokens: list[int]
    dropped: int  # oldest non-system messages left out


def reply_reserve(n_ctx: int, max_tokens: int | None) -> int:
    """Room kept free for the reply when turns or tokens are dropped to make room, so a reply
    never starts with no space left: the reply's limit, within 16 and a quarter of the
    context (no limit: a quarter), and never more than half the context."""
    wanted = n_ctx // 4 if max_tokens is None else min(max_tokens, n_ctx // 4)
    return max(REPLY_MIN, min(max(16, wanted), n_ctx // 2))


def fit_conversation(
    messages: Sequence[ChatMessage],
    tokenize: Callable[[Sequence[ChatMessage]], list[int]],
    n_ctx: int,
    reserve: int,
    policy: OverflowPolicy,
) -> FittedPrompt:
    """``messages`` if they fit; else, with "truncate_oldest", the fewest oldest turns dropped
    (the leading system messages and the last turn always stay). ``tokenize`` renders a
    conversation; it is called once per candidate, so callers may keep what it renders."""
    tokens = tokenize(messages)
    if fits(len(tokens), n_ctx, reserve):
        return FittedPrompt(list(messages), tokens, 0)
    if policy == "stop":
        raise ContextOverflow(
            f"This chat needs {len(tokens)} tokens plus {reserve} for the reply, but the context "
            f"holds {n_ctx}. Start a new chat, load the model with a longer context, or let this "
            "chat drop its oldest turns.", len(tokens), n_ctx, reserve)
    lead = 0  # system prompts before the first turn stay; later ones age out with their turns
    while lead < len(messages) and messages[lead].role == "system":
        lead += 1
    system, turns = list(messages[:lead]), list(messages[lead:])
    # Fewer dropped turns means more tokens, so binary search the smallest drop that fits.
    lo, hi = 1, len(turns) - 1
    best: FittedPrompt | None = None
    shortest = len(tokens)
    while lo <= hi:
        mid = (lo + hi) // 2
        kept = system + _start_at_user(turns[mid:])
        candidate = tokenize(kept)
        shortest = min(shortest, len(candidate))
        if fits(len(candidate), n_ctx, reserve):
            best = FittedPrompt(kept, candidate, len(messages) - len(kept))
            hi = mid - 1
        else:
            lo = mid + 1
    if best is None:  # the last candidate tried was the last turn alone
        raise ContextOverflow(
            f"Even the last message alone needs {shortest} tokens, more than the "
            f"{n_ctx - reserve} the context can give it ({n_ctx} in all, {reserve} kept for the "
            "reply). Load the model with a longer context or shorten the message.",
            shortest, n_ctx, reserve)
    return best


def fit_text(tokens: Sequence[int], n_ctx: int, reserve: int, bos: int | None) -> list[int]:
    """A raw prompt's rolling window: its newest tokens, leaving ``reserve`` for the reply.

    ``bos``: the token the model puts at the start of every text, or None when it adds none.
    A prompt starting with it keeps it, since the model expects every text to start there;
    otherwise the first token is text like any other and may be dropped.
    """
    if fits(len(tokens), n_ctx, reserve):
        return list(tokens)
    head = list(tokens[:1]) if bos is not None and tokens[:1] == [bos] else []
    room = n_ctx - max(reserve, REPLY_MIN) - len(head)
    if room <= 0:
        raise too_long(len(tokens), n_ctx)
    return head + list(tokens[len(tokens) - room:])


def _start_at_user(turns: Sequence[ChatMessage]) -> list[ChatMessage]:
    # Templates expect the first non-system turn to be the user's.
    rest = list(turns)
    while len(rest) > 1 and rest[0].role != "user":
        rest.pop(0)
    return rest
