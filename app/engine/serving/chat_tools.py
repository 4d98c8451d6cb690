"""The window's chat with tools offered: the grammar that forces a call, and the reply's reader.

The reply streams through a `ToolCallStream`, so only the text the user should see goes out as
tokens (call markup never shows, even split across pieces) and the calls come at the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from app.engine.structured.schema_grammar import schema_to_grammar
from app.engine.tools import (
    ContentDelta,
    ToolCallStream,
    ToolChoice,
    ToolSpec,
    call_schema,
    parse_tools,
)
from app.engine.types import ToolCall

# "auto": the model decides; "required": one call of any tool; any other value names the tool
# the reply must call.
WindowToolChoice = str
AUTO: Literal["auto"] = "auto"


def reply_plan(specs: Sequence[ToolSpec], choice: ToolChoice, parallel: bool,
               model_family: str) -> tuple[str, str | None]:
    """(parser family, grammar) for a reply offered ``specs``, for the window and the API
    alike. A required or named choice constrains the reply to valid calls (read as generic
    JSON); "auto" lets the model choose and reads its own template's markup. `ValueError` when
    the tools cannot be offered that way (a schema the grammar cannot follow, a name not
    offered)."""
    if choice.mode != "required":
        return model_family, None
    return "generic", schema_to_grammar(call_schema(specs, choice, parallel))


def tool_plan(tools: Sequence[dict[str, Any]], choice: WindowToolChoice,
              model_family: str) -> tuple[str, str | None]:
    """`reply_plan` for the window's offer: OpenAI tool dicts and "auto", "required" or the
    name of the one tool the reply must call (a single call)."""
    wanted = (ToolChoice("auto") if choice == AUTO else ToolChoice("required")
              if choice == "required" else ToolChoice("required", choice))
    return reply_plan(parse_tools(list(tools)), wanted, False, model_family)


class ReplyReader:
    """Splits a streamed reply into the visible text and its tool calls."""

    def __init__(self, family: str, starts_in_thinking: bool) -> None:
        self._stream = ToolCallStream(family, starts_in_thinking=starts_in_thinking)

    def feed(self, text: str) -> str:
        return _visible(self._stream.feed(text))

    def finish(self) -> str:
        return _visible(self._stream.finish())

    @property
    def content(self) -> str:
        return self._stream.content

    @property
    def control_text(self) -> frozenset[str]:
        return self._stream.control_text

    @property
    def calls(self) -> tuple[ToolCall, ...]:
        return tuple(self._stream.calls)


def _visible(events: list[Any]) -> str:
    return "".join(e.text for e in events if isinstance(e, ContentDelta))
