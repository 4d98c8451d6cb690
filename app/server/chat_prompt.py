"""OpenAI chat messages → the model's prompt, dropping the oldest turns only when asked to."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.engine.inference.context_window import (
    REPLY_MIN,
    ContextOverflow,
    fit_conversation,
    reply_reserve,
)
from app.engine.inference.prompt_format import PromptFormatError
from app.engine.serving.loaded_model import ChatPrompt, LoadedModel
from app.engine.tools.spec import parse_tool_call
from app.engine.types import ChatMessage, ToolCall
from app.server.errors import invalid
from app.server.generation import LATER, overflow_error
from app.server.schemas import ChatMessageIn

_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant",
          "tool": "tool"}


def chat_messages(messages: Sequence[ChatMessageIn]) -> list[ChatMessage]:
    """The turns, tool calls and results included; anything else is refused, naming the
    message (legacy "function" turns, non-text parts, a turn with no content)."""
    turns: list[ChatMessage] = []
    for i, message in enumerate(messages):
        if message.role not in _ROLES:
            raise invalid(f"messages[{i}].role", "Legacy 'function' messages are not supported; "
                          "send 'tool' messages with a tool_call_id.", "unsupported_parameter")
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
        calls = _tool_calls(message, i)
        if content is None and not calls:
            raise invalid(f"messages[{i}].content", "A message needs text content.")
        turns.append(ChatMessage(_ROLES[message.role], content or "",  # type: ignore[arg-type]
                                 tool_calls=calls, tool_call_id=message.tool_call_id or "",
                                 name=message.name or ""))
    return turns


def _tool_calls(message: ChatMessageIn, i: int) -> tuple[ToolCall, ...]:
    if not message.tool_calls:
        return ()
    if message.role != "assistant":
        raise invalid(f"messages[{i}].tool_calls", "Only assistant messages carry tool_calls.")
    try:
        return tuple(parse_tool_call(call, f"messages[{i}].tool_calls[{j}]")
                     for j, call in enumerate(message.tool_calls))
    except ValueError as exc:
        raise invalid(str(exc).split(":", 1)[0], str(exc)) from exc


def _render(model: LoadedModel, turns: Sequence[ChatMessage],
            tools: Sequence[dict[str, Any]] | None) -> ChatPrompt:
    try:
        return model.chat_prompt(turns, tools=tools)
    except PromptFormatError as exc:
        raise invalid("messages", str(exc), "prompt_format_error") from exc


def fit_chat(model: LoadedModel, turns: list[ChatMessage], rolling_window: bool,
             max_tokens: int | None = None,
             tools: Sequence[dict[str, Any]] | None = None) -> ChatPrompt:
    """The prompt for ``turns``; a 400 if it can't fit, unless ``rolling_window`` lets the
    oldest non-system turns go (the last turn always stays) to leave the reply its room.

    The engine's rule decides what fits (`fit_conversation`, as the window's chat does); each
    conversation is rendered once, so a prompt that fits, or one turn alone, renders once.
    """
    rendered: dict[int, ChatPrompt] = {}  # by number of turns: candidates are suffixes

    def tokens(kept: Sequence[ChatMessage]) -> list[int]:
        prompt = rendered[len(kept)] = _render(model, kept, tools)
        return prompt.tokens

    reserve = reply_reserve(model.n_ctx, max_tokens) if rolling_window else REPLY_MIN
    try:
        fitted = fit_conversation(turns, tokens, model.n_ctx, reserve,
                                  "truncate_oldest" if rolling_window else "stop")
    except ContextOverflow as exc:
        raise overflow_error(exc.prompt_tokens, model.n_ctx, model.key, "messages",
                             exc.reserve) from exc
    return rendered[len(fitted.messages)]
