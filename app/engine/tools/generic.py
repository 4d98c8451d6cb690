"""The fallback for templates with no tool support of their own: the answer is JSON, either
``{"tool_calls": [{"name": ..., "arguments": {...}}, ...]}`` or one ``{"name": ...,
"arguments": {...}}`` (what `tool_system_prompt` asks for and `call_schema` constrains to)."""

from __future__ import annotations

from app.engine.tools.parser_base import FamilyParser


class GenericParser(FamilyParser):
    name = "generic"
    leading_json = True
    leading_keys = ("tool_calls", "name", "function", "type")
    arg_keys = ("arguments", "parameters")
