"""Tool calling: what the engine understands of tools and of the calls models write.

Entry points (for the server, the services and the window):

- Request values: `parse_tools(body["tools"])` -> ``tuple[ToolSpec, ...]``,
  `parse_tool_choice(body["tool_choice"], tools)` -> `ToolChoice`,
  `parse_parallel_tool_calls(body["parallel_tool_calls"])` -> bool,
  `parse_tool_call(item, where)` -> `ToolCall` for an assistant message's ``tool_calls`` sent
  back. Each raises `ValueError` naming the field (a 400).
- Prompt: ``formatter.render(messages, cancelled, tools=[t.to_openai() for t in specs])``
  (`app.engine.inference.prompt_format.PromptFormatter`). `ChatMessage` carries
  ``tool_calls`` (assistant) and ``tool_call_id``/``name`` (role "tool"). The template gets
  the tools when it supports them (``formatter.supports_tools``); otherwise
  `tool_system_prompt` is merged into the system turn, and calls/results become plain turns.
- Which markup: `detect_family(chat_template, architecture)` -> a family name.
- Reading the reply: ``stream = ToolCallStream(family, starts_in_thinking=prompt.opens_thinking)``;
  ``stream.feed(piece)`` per decoded piece and ``stream.finish()`` at the end give
  `ContentDelta` / `ToolCallBegin` / `ToolCallArgs` events (OpenAI delta order);
  ``stream.calls`` holds the complete `ToolCall`s (``finish_reason`` is "tool_calls" when it is
  not empty). `parse_reply(family, text)` for a whole reply.
- Constrained calls (``tool_choice`` "required" or named, and the generic fallback):
  ``schema_to_grammar(call_schema(tools, choice, parallel))`` constrains the output, which is
  then read with ``ToolCallStream("generic")``.

The detokenizer must write out the family's special tokens (`FamilyParser.marker_tokens`,
e.g. Llama's ``<|python_tag|>``, Mistral's ``[TOOL_CALLS]``), or the parser never sees them.
"""

from app.engine.inference.tool_messages import template_supports_tools, tool_system_prompt
from app.engine.tools.events import ContentDelta, ToolCallArgs, ToolCallBegin, ToolEvent
from app.engine.tools.families import FAMILIES, Family, detect_family, parser_for
from app.engine.tools.parser_base import FamilyParser
from app.engine.tools.schema import call_schema
from app.engine.tools.spec import (
    ToolChoice,
    ToolSpec,
    new_call_id,
    parse_parallel_tool_calls,
    parse_tool_call,
    parse_tool_choice,
    parse_tools,
)
from app.engine.tools.stream import ToolCallStream, parse_reply
from app.engine.types import ToolCall

__all__ = [
    "FAMILIES", "ContentDelta", "Family", "FamilyParser", "ToolCall", "ToolCallArgs",
    "ToolCallBegin", "ToolCallStream", "ToolChoice", "ToolEvent", "ToolSpec", "call_schema",
    "detect_family", "new_call_id", "parse_parallel_tool_calls", "parse_reply",
    "parse_tool_call", "parse_tool_choice", "parse_tools", "parser_for",
    "template_supports_tools", "tool_system_prompt",
]
