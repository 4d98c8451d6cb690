"""Tools offered to a model, and the OpenAI request fields that offer them.

Everything here comes from an API client or an MCP server: untrusted. Request values are
checked and bounded, and a bad one raises `ValueError` naming the field, which the server turns
into a 400.
"""

from __future__ import annotations

import json
import re
import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from app.engine.types import ToolCall

MAX_TOOLS = 128
MAX_NAME_CHARS = 64
MAX_DESCRIPTION_CHARS = 8_192
MAX_PARAMETERS_CHARS = 64 * 1024  # one tool's parameter schema, as JSON
MAX_TOOLS_CHARS = 512 * 1024  # all tools together, as JSON
MAX_SCHEMA_DEPTH = 32
# OpenAI's rule for function names; it also keeps names free of markup and control characters.
_NAME = re.compile(r"[A-Za-z0-9_\-.]{1,64}")
_ID_ALPHABET = string.ascii_letters + string.digits
NO_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}


@dataclass(frozen=True)
class ToolSpec:
    """One OpenAI function tool: its name, what it does, and a JSON schema of its arguments."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: dict(NO_PARAMETERS))

    def to_openai(self) -> dict[str, Any]:
        """The ``{"type": "function", "function": {...}}`` dict chat templates expect."""
        return {"type": "function", "function": {
            "name": self.name, "description": self.description,
            "parameters": self.parameters}}


@dataclass(frozen=True)
class ToolChoice:
    """``tool_choice``: ``mode`` "none", "auto" or "required"; ``name`` set for a named
    function (then ``mode`` is "required": that call must be made)."""

    mode: Literal["none", "auto", "required"] = "auto"
    name: str = ""


def new_call_id() -> str:
    """A fresh call id, ``call_`` and 24 random letters and digits."""
    return "call_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(24))


def valid_name(name: object) -> bool:
    return isinstance(name, str) and bool(_NAME.fullmatch(name))


def parse_tools(value: object) -> tuple[ToolSpec, ...]:
    """The request's ``tools`` (None or a list of OpenAI function tools) as `ToolSpec`s."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValueError("tools: must be a list of function tools")
    if len(value) > MAX_TOOLS:
        raise ValueError(f"tools: at most {MAX_TOOLS} tools are accepted, got {len(value)}")
    if _json_size(value, "tools") > MAX_TOOLS_CHARS:
        raise ValueError(f"tools: more than {MAX_TOOLS_CHARS:,} characters of JSON")
    specs: list[ToolSpec] = []
    seen: set[str] = set()
    for i, item in enumerate(value):
        where = f"tools[{i}]"
        if not isinstance(item, dict) or item.get("type", "function") != "function":
            raise ValueError(f"{where}: must be {{\"type\": \"function\", \"function\": {{...}}}}")
        function = item.get("function")
        if not isinstance(function, dict):
            raise ValueError(f"{where}.function: must be an object")
        name = function.get("name")
        if not valid_name(name):
            raise ValueError(f"{where}.function.name: must be 1-{MAX_NAME_CHARS} letters, "
                             "digits, '_', '-' or '.'")
        assert isinstance(name, str)
        if name in seen:
            raise ValueError(f"{where}.function.name: {name!r} is given twice")
        seen.add(name)
        description = function.get("description", "")
        if description is None:
            description = ""
        if not isinstance(description, str):
            raise ValueError(f"{where}.function.description: must be a string")
        if len(description) > MAX_DESCRIPTION_CHARS:
            raise ValueError(f"{where}.function.description: longer than "
                             f"{MAX_DESCRIPTION_CHARS:,} characters")
        parameters = function.get("parameters")
        if parameters is not None:
            if not isinstance(parameters, dict):
                raise ValueError(f"{where}.function.parameters: must be a JSON schema object")
            if _json_size(parameters, where) > MAX_PARAMETERS_CHARS:
                raise ValueError(f"{where}.function.parameters: more than "
                                 f"{MAX_PARAMETERS_CHARS:,} characters of JSON")
            if _depth(parameters) > MAX_SCHEMA_DEPTH:
                raise ValueError(f"{where}.function.parameters: nested deeper than "
                                 f"{MAX_SCHEMA_DEPTH} levels")
        specs.append(ToolSpec(name, description,
                              parameters if parameters is not None else dict(NO_PARAMETERS)))
    return tuple(specs)


def parse_tool_choice(value: object, tools: Sequence[ToolSpec]) -> ToolChoice:
    """The request's ``tool_choice``: None (auto when tools are given, else none), "none",
    "auto", "required" or ``{"type": "function", "function": {"name": ...}}``."""
    if value is None:
        return ToolChoice("auto" if tools else "none")
    if isinstance(value, str):
        if value not in ("none", "auto", "required"):
            raise ValueError("tool_choice: must be 'none', 'auto', 'required' or a named "
                             "function")
        if value == "required" and not tools:
            raise ValueError("tool_choice: 'required' needs at least one tool in tools")
        return ToolChoice(value)  # type: ignore[arg-type]
    if isinstance(value, dict) and value.get("type") == "function":
        function = value.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if not valid_name(name):
            raise ValueError("tool_choice.function.name: must name a function")
        if not any(t.name == name for t in tools):
            raise ValueError(f"tool_choice.function.name: {name!r} is not among tools")
        assert isinstance(name, str)
        return ToolChoice("required", name)
    raise ValueError("tool_choice: must be 'none', 'auto', 'required' or "
                     "{\"type\": \"function\", \"function\": {\"name\": ...}}")


def parse_parallel_tool_calls(value: object) -> bool:
    """The request's ``parallel_tool_calls`` (default true)."""
    if value is None:
        return True
    if not isinstance(value, bool):
        raise ValueError("parallel_tool_calls: must be true or false")
    return value


def parse_tool_call(value: object, where: str) -> ToolCall:
    """One entry of an assistant message's ``tool_calls`` sent back by a client."""
    if not isinstance(value, dict):
        raise ValueError(f"{where}: must be an object")
    function = value.get("function")
    if value.get("type", "function") != "function" or not isinstance(function, dict):
        raise ValueError(f"{where}: must be {{\"type\": \"function\", \"function\": {{...}}}}")
    name = function.get("name")
    if not valid_name(name):
        raise ValueError(f"{where}.function.name: must be 1-{MAX_NAME_CHARS} letters, digits, "
                         "'_', '-' or '.'")
    arguments = function.get("arguments", "{}")
    if isinstance(arguments, dict):
        arguments = json.dumps(arguments, ensure_ascii=False)
    if not isinstance(arguments, str) or len(arguments) > MAX_PARAMETERS_CHARS:
        raise ValueError(f"{where}.function.arguments: must be a JSON string of at most "
                         f"{MAX_PARAMETERS_CHARS:,} characters")
    call_id = value.get("id")
    if call_id is None or call_id == "":
        call_id = new_call_id()
    if not isinstance(call_id, str) or len(call_id) > 128:
        raise ValueError(f"{where}.id: must be a string of at most 128 characters")
    assert isinstance(name, str)
    return ToolCall(call_id, name, arguments)


def _json_size(value: object, where: str) -> int:
    try:
        return len(json.dumps(value, ensure_ascii=False))
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValueError(f"{where}: not plain JSON ({exc})") from exc


def _depth(value: object) -> int:
    stack: list[tuple[object, int]] = [(value, 1)]
    deepest = 0
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest
