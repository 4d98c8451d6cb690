"""OpenAI chat messages → the model's prompt, dropping the oldest turns only when asked to."""

from __future__ import annotations

from collections.abc import Sequence

from app.engine.inference.prompt_format import PromptFormatError
from app.engine.serving.loaded_model import ChatPrompt, LoadedModel
from app.engine.types import ChatMessage
from app.server.errors import invalid
from app.server.generation import LATER, overflow_error
from app.server.schemas import ChatMessageIn

_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


def chat_messages(messages: Sequence[ChatMessageIn]) -> list[ChatMessage]:
    """Plain-text turns; tool turns and non-text parts are refused, naming the message."""
    turns: list[ChatMessage] = []
    for i, message in enumerate(messages):
        if message.role not in _ROLES or message.tool_calls:
            raise invalid(f"messages[{i}].role", f"Tool messages and tool calls {LATER}.",
                          "unsupported_parameter")
        content = message.content
        if isinstance(content, list):
            texts = []
            for part in content:
                if part.type != "text" or part.text is None:
                    raise invalid(f"messages[{i}].content",
                                  f"Content parts of type '{part.type[:40]}' (images, audio, "
                                  f"files) {LATER}; send text.", "unsupported_parameter")
                texts.append(part.text)
            content = "\n".join(texts)
        if content is None:
            raise invalid(f"messages[{i}].content", "A message needs text content.")
        turns.append(ChatMessage(_ROLES[message.role], content))  # type: ignore[arg-type]
    return turns


def _render(model: LoadedModel, turns: Sequence[ChatMessage]) -> ChatPrompt:
    try:
        return model.chat_prompt(turns)
    except PromptFormatError as exc:
        raise invalid("messages", str(exc), "prompt_format_error") from exc


def fit_chat(model: LoadedModel, turns: list[ChatMessage], rolling_window: bool) -> ChatPrompt:
    """The prompt for ``turns``; a 400 if it can't fit, unless ``rolling_window`` lets the
    oldest non-system turns go (the last turn always stays)."""
    prompt = _render(model, turns)
    if len(prompt.tokens) + 1 <= model.n_ctx:
        return prompt
    if not rolling_window:
        raise overflow_error(len(prompt.tokens), model.n_ctx, model.key, "messages")
    system = [t for t in turns[:1] if t.role == "system"]
    rest = turns[len(system):]
    # The fewest turns dropped that fit, by bisection: each render runs the template.
    low, high, best = 1, len(rest) - 1, None
    while low <= high:
        drop = (low + high) // 2
        kept = rest[drop:]
        while kept and kept[0].role == "assistant" and len(kept) > 1:  # start at a user turn
            kept = kept[1:]
        candidate = _render(model, system + kept)
        if len(candidate.tokens) + 1 <= model.n_ctx:
            best, high = candidate, drop - 1
        else:
            low = drop + 1
    if best is None:
        last = _render(model, system + rest[-1:])
        raise overflow_error(len(last.tokens), model.n_ctx, model.key, "messages")
    return best
