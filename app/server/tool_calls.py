"""Tools on /v1/chat/completions: what the model is offered, and its reply read back as calls.

The request's ``tools``, ``tool_choice`` and ``parallel_tool_calls`` are checked on arrival (a
400 naming the field). The model sees the tools through its own template when that reads
them, else described in the system turn. Its reply is read by the parser for its template's
markup (`app.engine.tools`), streamed or whole: calls go to ``tool_calls`` and never stay in
``content``; reasoning is never searched for calls. ``tool_choice`` "required" or a named
function constrains the reply with a grammar, so even a weak model writes a valid call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.engine.serving.chat_tools import reply_plan
from app.engine.serving.loaded_model import LoadedModel
from app.engine.structured.schema_grammar import (
    InvalidSchema,
    UnsupportedSchema,
)
from app.engine.tools import (
    ContentDelta,
    ToolCallArgs,
    ToolCallBegin,
    ToolCallStream,
    ToolChoice,
    ToolEvent,
    ToolSpec,
    parse_parallel_tool_calls,
    parse_tool_choice,
    parse_tools,
    parser_for,
)
from app.engine.types import ToolCall
from app.server.errors import ApiError, invalid
from app.server.schemas import ChatCompletionRequest


@dataclass(frozen=True)
class ToolRequest:
    tools: tuple[ToolSpec, ...]
    choice: ToolChoice
    parallel: bool

    def offered(self) -> list[dict[str, Any]]:
        return [tool.to_openai() for tool in self.tools]


def tool_request(req: ChatCompletionRequest) -> ToolRequest | None:
    """The request's tools, or None when it offers none (or ``tool_choice`` is "none")."""
    for legacy in ("functions", "function_call"):
        if getattr(req, legacy):
            raise invalid(legacy, f"'{legacy}' is deprecated and not supported; send 'tools' "
                          "and 'tool_choice'.", "unsupported_parameter")
    if not req.tools:
        if req.tool_choice not in (None, "none", "auto"):
            raise invalid("tool_choice", "'tool_choice' needs 'tools'.")
        return None
    try:
        tools = parse_tools(req.tools)
        choice = parse_tool_choice(req.tool_choice, tools)
        parallel = parse_parallel_tool_calls(req.parallel_tool_calls)
    except ValueError as exc:
        field = str(exc).split(":", 1)[0].split(" ", 1)[0] or "tools"
        raise invalid(field, str(exc)) from exc
    if choice.mode == "none":
        return None
    return ToolRequest(tools, choice, parallel)


@dataclass(frozen=True)
class ToolPlan:
    """How one request's reply is constrained and read."""

    request: ToolRequest
    family: str  # the parser for the reply's markup
    grammar: str | None  # "required" and named choices: the call's JSON, constrained

    @property
    def control_text(self) -> frozenset[str]:
        return parser_for(self.family).control_text


def tool_plan(model: LoadedModel, request: ToolRequest, response_grammar: str | None
              ) -> ToolPlan:
    if response_grammar is not None:
        raise invalid("response_format", "A 'response_format' constrains the whole reply, so "
                      "the model could never call a tool; send one or the other.")
    try:
        family, grammar = reply_plan(request.tools, request.choice, request.parallel,
                                     model.tool_family)
    except (UnsupportedSchema, InvalidSchema) as exc:
        raise ApiError(400, f"Invalid 'tools': a tool's parameters cannot constrain a call: {exc}",
                       param="tools", code="unsupported_schema") from exc
    return ToolPlan(request, family, grammar)


def reader(plan: ToolPlan, opens_thinking: bool) -> ToolCallStream:
    return ToolCallStream(plan.family, starts_in_thinking=opens_thinking)


def call_dicts(calls: list[ToolCall]) -> list[dict[str, Any]]:
    return [{"id": c.id, "type": "function",
             "function": {"name": c.name, "arguments": c.arguments}} for c in calls]


def delta(event: ToolEvent) -> dict[str, Any]:
    """One parser event as an OpenAI chat-completion chunk's ``delta``."""
    if isinstance(event, ContentDelta):
        return {"content": event.text}
    if isinstance(event, ToolCallBegin):
        return {"tool_calls": [{"index": event.index, "id": event.id, "type": "function",
                                "function": {"name": event.name, "arguments": ""}}]}
    assert isinstance(event, ToolCallArgs)
    return {"tool_calls": [{"index": event.index, "function": {"arguments": event.fragment}}]}
