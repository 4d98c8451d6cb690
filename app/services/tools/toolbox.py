"""The tools enabled for one chat, from every source, and the one safe way to run them."""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from typing import Any, Protocol

import jsonschema
from jsonschema.exceptions import SchemaError, best_match
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

from app.services.tools.values import BUILTIN, Tool, ToolResult, bound_text, plain_text

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MAX_OUTPUT_BYTES = 32 * 1024
MAX_ARGUMENTS_BYTES = 256 * 1024
MAX_DESCRIPTION_CHARS = 2000
_NAME_OK = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_NAME_BAD_CHARS = re.compile(r"[^A-Za-z0-9_-]")


class ToolSource(Protocol):
    """Where tools come from: the built-ins, or one connected MCP server."""

    name: str

    def list_tools(self) -> list[Tool]: ...

    def call(self, name: str, arguments: dict[str, Any], timeout_s: float) -> ToolResult:
        """Run the tool called ``name`` at this source; errors come back as results."""
        ...


def _safe_name(name: str) -> str:
    if _NAME_OK.match(name):
        return name
    return (_NAME_BAD_CHARS.sub("_", name) or "tool")[:64]


def _validator(schema: dict[str, Any]) -> Validator:
    cls = validator_for(schema, default=jsonschema.Draft202012Validator)
    cls.check_schema(schema)
    return cls(schema)


class ToolBox:
    """The tools offered to the model in one chat, under names unique across all sources.

    A built-in keeps its name; an MCP tool keeps its own name unless another source offers
    the same one, in which case it becomes ``<server>__<name>`` (and ``_2``… if that still
    clashes). Names outside OpenAI's ``[A-Za-z0-9_-]{1,64}`` are made to fit. A tool whose
    parameter schema is not valid JSON Schema is left out and named in ``problems``.
    """

    def __init__(
        self,
        sources: Iterable[ToolSource],
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
    ) -> None:
        self.timeout_s = timeout_s
        self.max_output_bytes = max_output_bytes
        self.problems: list[str] = []
        self._entries: dict[str, tuple[Tool, ToolSource, Validator]] = {}
        listed: list[tuple[ToolSource, Tool]] = []
        for source in sources:
            listed.extend((source, tool) for tool in source.list_tools())
        counts = Counter(_safe_name(tool.remote_name) for _, tool in listed)
        for source, tool in listed:
            self._add(source, tool, counts[_safe_name(tool.remote_name)] > 1)

    def _add(self, source: ToolSource, tool: Tool, clashes: bool) -> None:
        try:
            validator = _validator(tool.parameters)
        except SchemaError as exc:
            self.problems.append(f"{tool.source}: tool {tool.remote_name!r} left out, its "
                                 f"parameter schema is invalid ({exc.message[:200]})")
            return
        name = _safe_name(tool.remote_name)
        if clashes and tool.source != BUILTIN:
            name = _safe_name(f"{tool.source}__{tool.remote_name}")
        base, n = name, 2
        while name in self._entries:
            suffix = f"_{n}"
            name, n = base[: 64 - len(suffix)] + suffix, n + 1
        public = replace(tool, name=name, description=tool.description[:MAX_DESCRIPTION_CHARS])
        self._entries[name] = (public, source, validator)

    @property
    def tools(self) -> list[Tool]:
        return [entry[0] for entry in self._entries.values()]

    def tool(self, name: str) -> Tool | None:
        entry = self._entries.get(name)
        return entry[0] if entry else None

    def openai_tools(self) -> list[dict[str, Any]]:
        """The `tools` list for a chat request (OpenAI function-tool dicts)."""
        return [tool.openai() for tool in self.tools]

    def parse_arguments(self, name: str, arguments_json: str) -> dict[str, Any] | ToolResult:
        """The call's arguments as a dict, or the error result the model should see."""
        entry = self._entries.get(name)
        if entry is None:
            known = ", ".join(self._entries) or "none"
            return ToolResult.error(f"unknown tool {name[:100]!r}; available tools: {known}")
        if len(arguments_json) > MAX_ARGUMENTS_BYTES:
            return ToolResult.error(f"the arguments are longer than {MAX_ARGUMENTS_BYTES} bytes")
        try:
            arguments = json.loads(arguments_json) if arguments_json.strip() else {}
        except (json.JSONDecodeError, RecursionError) as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
            return ToolResult.error(f"the arguments are not valid JSON ({reason}); send a JSON "
                                    f"object matching the tool's parameters")
        if not isinstance(arguments, dict):
            return ToolResult.error("the arguments must be a JSON object")
        try:
            error = best_match(entry[2].iter_errors(arguments))
        except Exception as exc:  # e.g. a `$ref` the schema can't resolve (nothing is fetched)
            return ToolResult.error(f"the tool's parameter schema cannot be checked: {exc}"[:500])
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "arguments"
            return ToolResult.error(f"invalid arguments for {name}: {where}: "
                                    f"{error.message[:300]}")
        return arguments

    def run(self, name: str, arguments_json: str) -> ToolResult:
        """Run one call: never raises; bad input, failures and timeouts are error results.

        The text is plain (control characters removed) and at most ``max_output_bytes``
        (plus a visible truncation note). It is data for the model, never acted on here.
        """
        parsed = self.parse_arguments(name, arguments_json)
        if isinstance(parsed, ToolResult):
            return parsed
        tool, source, _ = self._entries[name]
        try:
            result = source.call(tool.remote_name, parsed, self.timeout_s)
        except Exception as exc:  # a source's bug must reach the model as text, not a crash
            log.exception("tool %s from %s failed", tool.remote_name, tool.source)
            result = ToolResult.error(f"{name} failed: {type(exc).__name__}: {exc}"[:1000])
        text, cut = bound_text(plain_text(result.text), self.max_output_bytes)
        return ToolResult(text, result.is_error, cut)
