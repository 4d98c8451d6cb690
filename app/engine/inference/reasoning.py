"""Separate a reasoning model's `<think>…</think>` text from its answer.

Reasoning models (DeepSeek-R1, Qwen3, …) write their chain of thought between think tags before
the answer. The chat shows that part as a collapsible "Thinking" block, so it has to be split off
the reply on every repaint, including while the reply is still streaming and the block is open.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from app.engine.types import ChatMessage

OPEN_TAG = "<think>"
CLOSE_TAG = "</think>"


@dataclass(frozen=True)
class ThinkingSplit:
    thinking: str  # all think blocks, joined by blank lines
    answer: str  # everything outside the blocks
    thinking_open: bool  # a block has started and not yet ended (still streaming)


def prompt_opens_thinking(prompt_text: str) -> bool:
    """True when a rendered prompt ends inside an open think block (DeepSeek-R1 distills' and
    some Qwen3 templates end the generation prompt with "<think>\n"), so the reply starts as
    reasoning; pass it to `split_thinking` as ``starts_in_thinking``."""
    _head, tag, tail = prompt_text.rpartition(OPEN_TAG)
    return bool(tag) and not tail.strip() and CLOSE_TAG not in tail


def split_thinking(text: str, *, starts_in_thinking: bool = False) -> ThinkingSplit:
    """Split ``text`` into its think blocks and its answer.

    ``starts_in_thinking``: the prompt already opened the block (see `prompt_opens_thinking`),
    so the text is reasoning until "</think>", and shows as an open block while it streams.
    """
    if starts_in_thinking and not text.lstrip().startswith(OPEN_TAG):
        text = OPEN_TAG + text
    thoughts: list[str] = []
    answer: list[str] = []
    rest = text
    first_open = rest.find(OPEN_TAG)
    first_close = rest.find(CLOSE_TAG)
    if first_close != -1 and (first_open == -1 or first_close < first_open):
        # Some chat templates put the opening tag in the prompt, so the reply starts inside
        # the block and only its closing tag appears.
        thoughts.append(rest[:first_close])
        rest = rest[first_close + len(CLOSE_TAG):]
    is_open = False
    while rest:
        start = rest.find(OPEN_TAG)
        if start == -1:
            answer.append(rest)
            break
        answer.append(rest[:start])
        rest = rest[start + len(OPEN_TAG):]
        end = rest.find(CLOSE_TAG)
        if end == -1:
            thoughts.append(_without_partial_close(rest))
            is_open = True
            break
        thoughts.append(rest[:end])
        rest = rest[end + len(CLOSE_TAG):]
    thinking = "\n\n".join(t.strip() for t in thoughts if t.strip())
    return ThinkingSplit(thinking, "".join(answer).strip(), is_open)


def without_reasoning(text: str) -> str:
    """A reply as it goes back to the model in the history: its think blocks removed, including
    the template-opened form whose reasoning is ended by "</think>" alone. A reply stopped
    inside its thinking has no answer and comes back empty."""
    if OPEN_TAG not in text and CLOSE_TAG not in text:
        return text
    return split_thinking(text).answer


def template_keeps_reasoning(chat_template: str | None) -> bool:
    """True when a chat template reads earlier replies' reasoning itself: it looks at a message's
    ``reasoning_content`` or splits replies at "</think>". Such a template decides which turns
    keep their reasoning (Qwen3 keeps it for the turn still calling tools and drops it from
    older ones), so it is given the replies as written; any other template would paste the
    reasoning into the prompt verbatim, so it gets the answers alone."""
    if not chat_template:
        return False
    return "reasoning_content" in chat_template or CLOSE_TAG in chat_template


def _without_partial_close(text: str) -> str:
    # While streaming, the end of an open block may hold the first characters of "</think>";
    # showing them would make "</thi" flicker in the thinking text.
    for size in range(len(CLOSE_TAG) - 1, 0, -1):
        if text.endswith(CLOSE_TAG[:size]):
            return text[:-size]
    return text


class ThinkingClock:
    """Times a streaming reply's reasoning, for "Thought for 3.4 s": from its first token to
    its last "</think>", or to the end when the reply stops still thinking. Fed piece by piece,
    with tags split across pieces found (only a tag's length of text is kept)."""

    def __init__(self, *, starts_in_thinking: bool = False) -> None:
        self._open = self._seen = starts_in_thinking
        self._tail = ""
        self._first: float | None = None
        self._ended: float | None = None

    def feed(self, text: str, now: float) -> None:
        if self._first is None:
            self._first = now
        buf = self._tail + text
        pos = 0
        while (found := buf.find(CLOSE_TAG if self._open else OPEN_TAG, pos)) != -1:
            pos = found + len(CLOSE_TAG if self._open else OPEN_TAG)
            self._open = not self._open
            self._seen = True
            if not self._open:
                self._ended = now
        self._tail = buf[max(pos, len(buf) - len(CLOSE_TAG) + 1):]

    def seconds(self, now: float) -> float:
        """How long the reply reasoned (0.0 for a reply without reasoning)."""
        if not self._seen or self._first is None:
            return 0.0
        end = now if self._open or self._ended is None else self._ended
        return max(0.0, end - self._first)


def reasoning_apart(text: str, *, starts_in_thinking: bool = False) -> tuple[str, str]:
    """A finished reply as (answer, reasoning) for storing them apart. A reply without think
    tags (and not opened by its template) comes back exactly as written, with no reasoning."""
    if not starts_in_thinking and OPEN_TAG not in text and CLOSE_TAG not in text:
        return text, ""
    split = split_thinking(text, starts_in_thinking=starts_in_thinking)
    return split.answer, split.thinking


def reasoning_joined(answer: str, reasoning: str) -> str:
    """A stored answer and reasoning as one reply text again, the reasoning in think tags (for
    a template that reads it after "</think>", and for Continue)."""
    if not reasoning:
        return answer
    return f"{OPEN_TAG}\n{reasoning}\n{CLOSE_TAG}\n\n{answer}"


def thinking_open(partial: str, starts_in_thinking: bool) -> bool:
    """Whether a reply whose text so far is ``partial`` is still inside its reasoning (a
    continued reply goes on inside the block it stopped in)."""
    if not partial:
        return starts_in_thinking
    return split_thinking(partial, starts_in_thinking=starts_in_thinking).thinking_open


def reasoning_for_template(turns: list[ChatMessage], chat_template: str | None
                           ) -> list[ChatMessage]:
    """Turns as a template reads their reasoning: as ``reasoning_content`` where it reads that
    field, else joined back in think tags before the answer (a template that splits at
    "</think>"); without a template, left out."""
    if not any(t.reasoning_content for t in turns):
        return turns
    if not chat_template:
        return [replace(t, reasoning_content="") for t in turns]
    if "reasoning_content" in chat_template:
        return turns
    return [replace(t, content=reasoning_joined(t.content, t.reasoning_content),
                    reasoning_content="") if t.reasoning_content else t for t in turns]
