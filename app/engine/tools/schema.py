"""The JSON schema a constrained tool call must follow (for `schema_to_grammar`).

Used when ``tool_choice`` is "required" or names a function, and for the generic fallback: the
model's output under the grammar is read by the generic family parser
(``ToolCallStream("generic")``), which accepts exactly these shapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.engine.tools.spec import ToolChoice, ToolSpec

MAX_PARALLEL_CALLS = 8


def call_schema(tools: Sequence[ToolSpec], choice: ToolChoice, parallel: bool = True,
                max_calls: int = MAX_PARALLEL_CALLS) -> dict[str, Any]:
    """One call ``{"name": ..., "arguments": {...}}`` of any of ``tools`` (or of the named
    one), each tool's own parameter schema inlined as its ``arguments``; with ``parallel``,
    ``{"tool_calls": [call, ...]}`` holding 1 to ``max_calls`` of them.

    `ValueError` when the choice allows no call (mode "none", or a name not in ``tools``).
    """
    if choice.mode == "none":
        raise ValueError("tool_choice: 'none' allows no call to constrain")
    chosen = [t for t in tools if not choice.name or t.name == choice.name]
    if not chosen:
        raise ValueError(f"tool_choice.function.name: {choice.name!r} is not among tools"
                         if choice.name else "tools: there is no tool to call")
    options = [_one_call(t) for t in chosen]
    call = options[0] if len(options) == 1 else {"anyOf": options}
    if not parallel:
        return call
    return {
        "type": "object",
        "properties": {"tool_calls": {"type": "array", "items": call, "minItems": 1,
                                      "maxItems": max(1, max_calls)}},
        "required": ["tool_calls"],
        "additionalProperties": False,
    }


def _one_call(tool: ToolSpec) -> dict[str, Any]:
    parameters = dict(tool.parameters)
    return {
        "type": "object",
        "properties": {"name": {"const": tool.name}, "arguments": parameters},
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }
